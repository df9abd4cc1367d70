"""A real browser (Debian's Chromium driven by Playwright) browses the site like a reader, at a
desktop's width and a phone's, and checks what each page shows."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.services import render_job_run, render_jobs_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def tiny_site(tinynet: Any, small_renders: dict[str, Any], settings: Any, tmp_path: Path) -> Any:
    """TinyNet with channel renders of conv2:4 and :5, dataset examples and tuning curves of
    conv2 (computed here, as a worker would)."""
    from rendering.datasets import dataset_register
    from rendering.examples import examples_jobs_create
    from rendering.tuning import tuning_jobs_create

    settings.EXAMPLES_LOADER_WORKERS = 0
    model = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            folder / f"img{i}.png"
        )
    dataset = dataset_register(slug="pets", name="Pets", location=str(folder))
    layer = model.layers.get(name="conv2")
    jobs = render_jobs_create(
        layer=layer, technique="channel", units=[4, 5], params=small_renders, enqueue=False
    )
    jobs += examples_jobs_create(model=model, dataset=dataset, layers=["conv2"], k=3, enqueue=False)
    jobs += tuning_jobs_create(model=model, layers=["conv2"], enqueue=False)
    for job in jobs:
        done = render_job_run(job_id=job.pk)
        assert done is not None and done.status == "succeeded", done and done.error
    return model


def _no_overflow(page: Any, where: str) -> None:
    assert page.evaluate(OVERFLOW) <= 0, f"{where} scrolls sideways"


def _current_layer(page: Any) -> str:
    return page.locator("nav.modelnav ol [aria-current]").inner_text()


def _current_tab(page: Any) -> str:
    return page.locator('main nav.tabs a[aria-current="page"]').inner_text()


@pytest.mark.parametrize("device", list(WIDTHS))
def test_a_reader_walks_from_home_to_a_unit_through_its_tabs_and_sees_true_numbers(
    live_server: Any, browser: Any, tiny_site: Any, tmp_path: Path, device: str
) -> None:
    from rendering.models import UnitExamples

    width, height = WIDTHS[device]
    context = browser.new_context(
        viewport={"width": width, "height": height}, has_touch=device == "phone"
    )
    context.add_init_script(WATCH)
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console", lambda m: m.type == "error" and errors.append(f"{m.location['url']} {m.text}")
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    shots = tmp_path / f"screenshots-{device}"
    shots.mkdir()
    base = live_server.url

    page.goto(base + "/")
    _no_overflow(page, "home")
    page.get_by_role("link", name="TinyNet").first.click()
    page.wait_for_url("**/models/tinynet/")
    _no_overflow(page, "the model page")
    assert page.locator("nav.modelnav").is_visible()
    assert page.locator('nav.modelnav a[aria-current="page"]').inner_text() == "TinyNet"
    page.screenshot(path=shots / "model.png", full_page=True)

    page.locator("nav.modelnav").get_by_role("link", name="conv2", exact=True).click()
    page.wait_for_url("**/models/tinynet/conv2/")
    assert _current_layer(page) == "conv2" and _current_tab(page) == "Channel"
    _no_overflow(page, "the layer page")
    page.screenshot(path=shots / "layer.png", full_page=True)

    page.get_by_alt_text("channel visualization of conv2:4").click()
    page.wait_for_url("**/models/tinynet/conv2/4/?technique=channel")
    assert page.locator("main h1").inner_text() == "conv2:4"
    assert _current_layer(page) == "conv2" and _current_tab(page) == "Channel"
    image = page.get_by_alt_text("Channel visualization of conv2:4")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 32
    assert image.bounding_box()["width"] >= min(384, width - 48)  # shown large
    _no_overflow(page, "the unit page")
    page.screenshot(path=shots / "unit.png", full_page=True)

    page.keyboard.press("j")
    page.wait_for_url("**/models/tinynet/conv2/5/?technique=channel")
    page.locator("main h1", has_text="conv2:5").wait_for()
    assert _current_tab(page) == "Channel"  # the reader stays on the same technique
    assert page.get_by_alt_text("Channel visualization of conv2:5").is_visible()

    page.locator("main nav.tabs").get_by_role("link", name="Dataset examples").click()
    page.wait_for_url("**/models/tinynet/conv2/5/?technique=examples")
    page.locator("dl.stats").wait_for()
    assert _current_tab(page) == "Dataset examples"
    stats = UnitExamples.objects.get(unit__layer__model=tiny_site, unit__index=5).stats
    for key in ("mean", "max_mean", "max_std", "maximum", "minimum"):
        shown = page.locator(f'dd[data-stat="{key}"]').inner_text()
        assert shown == f"{stats[key]:.3f}", key
    assert page.locator("h3", has_text=f"Statistics over {stats['count']} images").is_visible()
    histogram = page.locator("figure.histogram svg")
    assert histogram.bounding_box()["width"] <= 420  # not stretched to the column
    title = histogram.locator("text").first
    assert title.text_content() == "Per-image maximum of conv2:5"
    assert title.bounding_box()["x"] + title.bounding_box()["width"] <= (
        histogram.bounding_box()["x"] + histogram.bounding_box()["width"]
    )  # not clipped
    _no_overflow(page, "the examples tab")
    crop = page.locator("ol.crops a").first
    if device == "phone":
        crop.tap()  # a first tap opens the preview, without leaving the page
        assert crop.locator(".full").is_visible()
        assert "technique=examples" in page.url
    else:
        crop.hover()
        assert crop.locator(".full").is_visible()
    page.screenshot(path=shots / "examples.png", full_page=True)

    page.locator("main nav.tabs").get_by_role("link", name="Tuning curves").click()
    page.wait_for_url("**/models/tinynet/conv2/5/?technique=tuning")
    assert page.locator(".tuning svg").count() >= 3
    page.keyboard.press("k")
    page.wait_for_url("**/models/tinynet/conv2/4/?technique=tuning")
    page.locator("main h1", has_text="conv2:4").wait_for()
    assert _current_tab(page) == "Tuning curves" and page.locator(".tuning svg").count() >= 3
    page.go_back()
    page.wait_for_url("**/models/tinynet/conv2/5/?technique=tuning")
    page.locator("main h1", has_text="conv2:5").wait_for()
    page.keyboard.press("]")
    page.wait_for_url("**/models/tinynet/logits/")
    assert _current_layer(page) == "logits"
    _no_overflow(page, "the next layer")
    page.screenshot(path=shots / "next-layer.png", full_page=True)

    violations = page.evaluate("window.__violations")
    # The browser asks for /favicon.ico by itself (no page links it yet): its 404 is the only
    # console error allowed here.
    assert [e for e in errors if not e.startswith(f"{base}/favicon.ico ")] == []
    assert violations == []


def test_without_javascript_every_step_is_a_plain_link(
    live_server: Any, browser: Any, tiny_site: Any
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server.url + "/models/tinynet/conv2/4/")
    page.locator('nav.steps a[rel="next"]').click()
    page.wait_for_url("**/models/tinynet/conv2/5/?technique=channel")
    page.locator("main nav.tabs").get_by_role("link", name="Tuning curves").click()
    page.wait_for_url("**/models/tinynet/conv2/5/?technique=tuning")
    assert page.locator(".tuning svg").count() >= 3
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
    page.locator("table.layers").get_by_role("link", name="conv2d2", exact=True).click()
    page.wait_for_url("**/models/inceptionv1/conv2d2/")
    page.screenshot(path=shots / "layer.png")
    page.locator("main nav.tabs").get_by_role("link", name="Negative", exact=True).click()
    page.wait_for_url("**/models/inceptionv1/conv2d2/?technique=negative")
    assert page.locator('nav.tabs a[aria-current="page"]').inner_text() == "Negative"
    assert "No negative for any unit of conv2d2 yet." in page.locator("main").inner_text()
    page.locator("main nav.tabs").get_by_role("link", name="Channel", exact=True).click()
    page.wait_for_url("**/models/inceptionv1/conv2d2/?technique=channel")
    image = page.get_by_alt_text("channel visualization of conv2d2:4")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 96
    image.click()
    page.wait_for_url("**/models/inceptionv1/conv2d2/4/?technique=channel")
    assert page.get_by_alt_text("Channel visualization of conv2d2:4").is_visible()
    page.screenshot(path=shots / "unit.png", full_page=True)

    page.keyboard.press("j")
    page.wait_for_url("**/models/inceptionv1/conv2d2/5/?technique=channel")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url("**/models/inceptionv1/conv2d2/4/?technique=channel")
    page.locator("main h1", has_text="conv2d2:4").wait_for()

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


def test_the_next_units_page_and_images_are_fetched_before_the_reader_asks(
    live_server: Any, browser: Any, tiny_site: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    base = live_server.url
    next_page = f"{base}/models/tinynet/conv2/5/?technique=channel"
    render = tiny_site.layers.get(name="conv2").renders.get(unit__index=5)
    image_asked = page.expect_request(lambda request: request.url.endswith(render.image.url))
    with image_asked, page.expect_request(next_page):
        page.goto(base + "/models/tinynet/conv2/4/?technique=channel")
    before = len(asked)
    page.keyboard.press("j")
    page.wait_for_url(next_page)
    page.get_by_alt_text("Channel visualization of conv2:5").wait_for()
    assert page.get_by_alt_text("Channel visualization of conv2:5").evaluate(
        "img => img.complete && img.naturalWidth"
    )
    assert [url for url in asked[before:] if url in (next_page, base + render.image.url)] == []
    context.close()
