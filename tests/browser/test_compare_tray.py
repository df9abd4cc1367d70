"""The comparison tray in a real browser, at desktop and phone widths: units of two models
are added from their pages, the tray page shows them side by side, the URL is the tray."""

import re
from pathlib import Path
from typing import Any

import pytest

from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.mark.parametrize("width", [1200, 390])
def test_units_of_two_models_go_into_the_tray_and_side_by_side(
    live_server: Any, browser: Any, tinynet: Any, tmp_path: Path, width: int
) -> None:
    inception = model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))
    tiny = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(live_server.url + "/models/inceptionv1/mixed4c/447/")
    page.get_by_role("link", name="Add to comparison").click()
    page.get_by_role("link", name="In the comparison tray").wait_for()
    page.get_by_role("link", name="Compare the tray (1 unit)").wait_for()
    page.goto(live_server.url + "/models/tinynet/logits/3/")
    page.get_by_role("link", name="Add to comparison").click()
    page.get_by_role("link", name="Compare the tray (2 units)").click()
    page.wait_for_url(re.compile(r"/models/compare/\?units=inceptionv1"))
    columns = page.locator("section.tray-column")
    columns.nth(1).wait_for()
    assert columns.count() == 2
    assert (
        columns.nth(0).get_attribute("data-unit-key")
        == f"inceptionv1@{inception.version}/mixed4c/447"
    )
    assert columns.nth(1).get_attribute("data-unit-key") == f"tinynet@{tiny.version}/logits/3"
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, overflow
    page.screenshot(path=tmp_path / f"tray-{width}.png", full_page=True)

    # The URL is the tray: removing a unit is following a link; the browser's tray follows it.
    columns.nth(0).get_by_role("link", name="remove").click()
    page.wait_for_url(re.compile(r"/models/compare/\?units=tinynet"))
    page.locator("section.tray-column").first.wait_for()
    assert page.locator("section.tray-column").count() == 1
    page.goto(live_server.url + "/models/inceptionv1/mixed4c/447/")
    page.get_by_role("link", name="Compare the tray (1 unit)").wait_for()
    assert not errors, errors
    context.close()
