"""The weight matrix in a real browser: hovering a cell names both units, the stored
strength and the kernel; clicking opens the unit; no console errors or CSP violations."""

from pathlib import Path

import numpy as np
import pytest

from neurons.services import model_import
from rendering.connections import connection_jobs_create, strength_matrix
from rendering.engine.zoo import WeightsSpec
from rendering.models import Connection, LayerConnection
from rendering.services import render_job_run

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_hover_names_the_cell_and_click_opens_the_unit(
    live_server, browser, media, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    model = model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))
    jobs = connection_jobs_create(model=model, top=10, enqueue=False)
    (job,) = [j for j in jobs if j.layer.name == "conv2d2"]
    render_job_run(job_id=job.pk)
    pair = LayerConnection.objects.get(target__name="conv2d2", target__model=model)
    matrix = strength_matrix(pair)
    rows = np.argsort(-np.abs(matrix).sum(axis=1), kind="stable")
    cols = np.argsort(-np.abs(matrix).sum(axis=0), kind="stable")

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(live_server.url + "/models/inceptionv1/conv2d2/weights/?sort=strength")
    cells = page.locator("svg.weights .cells")
    box = cells.bounding_box()
    assert box is not None
    x, y = 3, 7  # position in the drawn (sorted) order
    page.mouse.move(
        box["x"] + (x + 0.5) * box["width"] / 64, box["y"] + (y + 0.5) * box["height"] / 192
    )
    tip = page.locator("#weights-tip")
    source, target = int(cols[x]), int(rows[y])
    tip.get_by_text(f"conv2d1:{source} → conv2d2:{target}").wait_for()
    page.wait_for_function(
        "() => !document.querySelector('#weights-tip').textContent.includes('loading')"
    )
    assert f"strength {matrix[target, source]:.4f}" in tip.inner_text()
    stored = Connection.objects.get(pair=pair, direction="in", unit__index=target)
    if source in stored.other_indices:
        tip.locator("canvas").wait_for()
    else:
        tip.get_by_text("Kernel not stored").wait_for()
    # The strongest input of the first-drawn row always has its kernel stored.
    strongest = Connection.objects.get(pair=pair, direction="in", unit__index=int(rows[0]))
    column = int(np.where(cols == strongest.other_indices[0])[0][0])
    page.mouse.move(
        box["x"] + (column + 0.5) * box["width"] / 64, box["y"] + 0.5 * box["height"] / 192
    )
    tip.locator("canvas").wait_for()
    page.screenshot(path=tmp_path / "weights-hover.png")
    page.mouse.click(
        box["x"] + (x + 0.5) * box["width"] / 64, box["y"] + (y + 0.5) * box["height"] / 192
    )
    page.wait_for_url(f"**/models/inceptionv1/conv2d2/{target}/")
    assert not problems, problems
    context.close()
