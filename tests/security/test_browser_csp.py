"""A real browser (Debian's Chromium) loads every kind of page under the Content-Security-Policy:
nothing is blocked, nothing is fetched from another host, and the scripted parts still work
(keyboard navigation on unit pages, the Swagger UI and Redoc API docs, the admin)."""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

# Runs before any script of the page; the policy does not apply to Playwright's own scripts.
# A violation for an inline or same-origin resource means the policy broke one of our pages;
# one for another host means the policy stopped a load from the internet (Redoc's footer logo
# from cdn.redoc.ly): that is the policy working, listed apart.
RECORD_VIOLATIONS = """
window.__csp = {ours: [], foreign: []};
document.addEventListener("securitypolicyviolation", (event) => {
  const uri = event.blockedURI;
  const foreign = /^https?:/.test(uri) && new URL(uri).origin !== location.origin;
  window.__csp[foreign ? "foreign" : "ours"].push(`${event.effectiveDirective} blocked ${uri || "inline"}`);
});
"""


@pytest.fixture
def site(tinynet: Any, small_renders: dict[str, Any], settings: Any, tmp_path: Path) -> Any:
    """TinyNet with a render, dataset examples (sprites placed by style attributes) and tuning
    curves (inline SVG), a note, and staff."""
    from django.contrib.auth import get_user_model

    from annotations.notes import note_create
    from annotations.people import user_signup
    from neurons.services import model_import
    from rendering.datasets import dataset_register
    from rendering.engine.zoo import WeightsSpec
    from rendering.examples import examples_jobs_create
    from rendering.services import render_job_run, render_jobs_create
    from rendering.tuning import tuning_jobs_create

    settings.EXAMPLES_LOADER_WORKERS = 0
    model = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    dataset = dataset_register(slug="pets", name="Pets", location=str(folder))
    layer = model.layers.get(name="conv2")
    jobs = render_jobs_create(
        layer=layer, technique="channel", units=[3], params=small_renders, enqueue=False
    )
    jobs += examples_jobs_create(model=model, dataset=dataset, layers=["conv2"], k=3, enqueue=False)
    jobs += tuning_jobs_create(model=model, layers=["conv2"], enqueue=False)
    for job in jobs:
        done = render_job_run(job_id=job.pk)
        assert done is not None and done.status == "succeeded", done and done.error
    author = user_signup(username="alice", email="alice@example.org", password="pw-12345!")
    note = note_create(
        author=author,
        visibility="public",
        publish=True,
        title="Curves",
        body="Two **units**.",
        units="tinynet/conv2/3\ntinynet/conv2/4",
        edges="1 -> 2",
    )
    get_user_model().objects.create_superuser("staff", "staff@example.org", "pw-12345!")
    return {"model": model, "note": note}


class Requests:
    """Every request a page made, less those the policy blocked before they left."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self.blocked: set[str] = set()

    def failed(self, request: Any) -> None:
        # Chromium's reason for a load the policy refused ("csp"; "net::ERR_BLOCKED_BY_CSP"
        # for some kinds of request).
        if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP"):
            self.blocked.add(request.url)

    def foreign_hosts(self) -> set[str]:
        hosts = {urlsplit(url).hostname for url in self.made if url not in self.blocked}
        return {host for host in hosts if host not in ("localhost", "127.0.0.1", None, "")}


def _watched_page(browser: Any, requests: Requests) -> Any:  # noqa: F811 - the fixture's name
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.on("request", lambda request: requests.made.append(request.url))
    page.on("requestfailed", requests.failed)
    return page


def _violations(page: Any) -> list[str]:
    """What the policy blocked of this site's own page (inline or same-origin)."""
    return list(page.evaluate("window.__csp.ours"))


def test_every_page_works_under_the_policy(
    live_server: Any,
    browser: Any,  # noqa: F811 - the fixture
    site: dict[str, Any],
) -> None:
    base = live_server.url
    requests = Requests()
    page = _watched_page(browser, requests)
    model = site["model"]
    pages = [
        "/",
        f"/models/{model}/",
        "/models/tinynet/conv2/",
        "/models/tinynet/conv2/?technique=examples",
        "/models/tinynet/conv2/3/",
        "/models/tinynet/conv2/3/?technique=examples",
        "/models/tinynet/conv2/3/?technique=tuning",
        f"/embed/models/{model}/conv2/3/",
        site["note"].get_absolute_url(),
        "/notes/",
        "/search/?q=curves",
        "/accounts/login/",
        "/accounts/signup/",
    ]
    blocked = {}
    for url in pages:
        response = page.goto(base + url)
        assert response is not None and response.status == 200, url
        if _violations(page):
            blocked[url] = _violations(page)

    # The unit page's script runs: the sprites are placed and j goes to the next unit.
    page.goto(base + "/models/tinynet/conv2/3/?technique=examples")
    sprite = page.locator("img.sprite").first
    assert "object-position" in (sprite.get_attribute("style") or "")
    assert sprite.evaluate("img => getComputedStyle(img).objectPosition") != "50% 50%"
    page.keyboard.press("j")
    page.wait_for_url("**/models/tinynet/conv2/4/?technique=examples")

    # The admin, signed in as staff.
    page.goto(base + "/admin/login/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill("pw-12345!")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/admin/")
    for url in ("/admin/", "/admin/neurons/unit/", "/admin/neurons/importjob/import/"):
        page.goto(base + url)
        if _violations(page):
            blocked[url] = _violations(page)

    assert blocked == {}
    assert requests.foreign_hosts() == set()


def test_the_api_docs_work_under_the_policy(
    live_server: Any,
    browser: Any,  # noqa: F811 - the fixture
) -> None:
    base = live_server.url
    requests = Requests()
    page = _watched_page(browser, requests)

    page.goto(base + "/api/v1/docs/")
    page.locator(".swagger-ui .info .title", has_text="Microscope API").wait_for()
    page.locator(".opblock-tag", has_text="models").first.wait_for()
    swagger = _violations(page)

    page.goto(base + "/api/v1/redoc/")
    page.get_by_role("heading", name=re.compile("Microscope API")).wait_for()
    redoc = _violations(page)

    assert (swagger, redoc) == ([], [])
    assert requests.foreign_hosts() == set()
