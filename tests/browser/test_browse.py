"""A real browser (Debian's Chromium driven by Playwright) browses the site like a reader."""

from pathlib import Path

import pytest

from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.services import render_job_run, render_jobs_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_reader_browses_from_the_zoo_to_a_unit_and_on_by_keyboard(
    live_server, page, small_renders, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    model = model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))
    layer = model.layers.get(name="conv2d2")
    (job,) = render_jobs_create(
        layer=layer, technique="channel", units=[4, 5], params=small_renders, enqueue=False
    )
    render_job_run(job_id=job.pk)
    shots = tmp_path / "screenshots"
    shots.mkdir()

    page.goto(live_server.url + "/")
    page.screenshot(path=shots / "home.png")
    page.get_by_role("link", name="InceptionV1").first.click()
    page.wait_for_url("**/models/inceptionv1/")
    assert "untrained weights" in page.content()
    page.get_by_role("link", name="conv2d2", exact=True).click()
    page.wait_for_url("**/models/inceptionv1/conv2d2/")
    page.screenshot(path=shots / "layer.png")
    page.get_by_role("link", name="negative", exact=True).click()
    page.wait_for_url("**/models/inceptionv1/conv2d2/?technique=negative")
    assert page.locator('nav.techniques a[aria-current="page"]').inner_text() == "negative"
    page.get_by_role("link", name="channel", exact=True).click()
    page.wait_for_url("**/models/inceptionv1/conv2d2/?technique=channel")
    image = page.get_by_alt_text("channel visualization of conv2d2:4")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 96
    image.click()
    page.wait_for_url("**/models/inceptionv1/conv2d2/4/")
    assert page.get_by_alt_text("Channel visualization of conv2d2:4").is_visible()
    page.screenshot(path=shots / "unit.png", full_page=True)

    page.keyboard.press("j")
    page.wait_for_url("**/models/inceptionv1/conv2d2/5/")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url("**/models/inceptionv1/conv2d2/4/")

    page.get_by_text("BibTeX, APA, CSL-JSON").click()
    bibtex = page.locator("#bibtex")
    assert bibtex.is_visible() and f"inceptionv1@{model.version}" in bibtex.inner_text()
    page.get_by_role("button", name="Copy BibTeX").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == bibtex.inner_text()

    page.goto(live_server.url + f"/embed/models/inceptionv1@{model.version}/conv2d2/4/")
    card = page.get_by_alt_text("Channel visualization of conv2d2:4")
    assert card.evaluate("img => img.complete && img.naturalWidth") > 0
    page.screenshot(path=shots / "embed.png")

    page.goto(live_server.url + "/inceptionv1/conv2d2:5")
    page.wait_for_url("**/models/inceptionv1/conv2d2/5/")
    page.screenshot(path=shots / "shorthand.png")
