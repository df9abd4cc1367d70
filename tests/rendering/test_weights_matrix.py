"""The weight-matrix page names its units: labelled ticks in the order drawn, the numbers as
.npy and through the API, each row's stored kernels for the hover."""

import io
import json
from typing import Any

import numpy as np
import pytest
from django.test import Client
from rest_framework.test import APIClient

from rendering.connections import connection_jobs_create, strength_matrix
from rendering.models import Connection, LayerConnection
from rendering.services import render_job_run
from rendering.views_weights import tick_positions

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(inceptionv1: Any, media: Any) -> LayerConnection:
    jobs = connection_jobs_create(model=inceptionv1, top=10, enqueue=False)
    (job,) = [j for j in jobs if j.layer.name == "conv2d2"]
    done = render_job_run(job_id=job.pk)
    assert done is not None and done.status == "succeeded", done and done.error
    return LayerConnection.objects.get(target__name="conv2d2", target__model=inceptionv1)


def _data(html: str) -> dict[str, Any]:
    raw = html.split('<script id="weights-data" type="application/json">')[1].split("</script>")[0]
    return json.loads(raw)


def _ticks(html: str, axis: str) -> list[tuple[int, int]]:
    group = html.split(f'<g class="{axis}-ticks">')[1].split("</g>")[0]
    return [
        (int(part.split('"')[0]), int(part.split(">")[1].split("<")[0]))
        for part in group.split('data-position="')[1:]
    ]


def test_ticks_label_the_unit_at_each_position_in_index_order(client: Client, pair) -> None:
    html = client.get("/models/inceptionv1/conv2d2/weights/").content.decode()
    x, y = _ticks(html, "x"), _ticks(html, "y")
    assert x and all(position == index for position, index in x)
    assert [p for p, _ in x] == list(range(0, 64, x[1][0]))
    assert y[0] == (0, 0) and all(position == index for position, index in y)
    assert 'href="/models/inceptionv1/conv2d2/weights.npy"' in html


def test_sorting_by_strength_keeps_which_unit_is_which(client: Client, pair) -> None:
    stored = strength_matrix(pair)
    rows = np.argsort(-np.abs(stored).sum(axis=1), kind="stable").tolist()
    cols = np.argsort(-np.abs(stored).sum(axis=0), kind="stable").tolist()
    assert rows != list(range(192))  # random weights: the order really changes
    html = client.get("/models/inceptionv1/conv2d2/weights/?sort=strength").content.decode()
    data = _data(html)
    assert data["rows"] == rows and data["cols"] == cols
    assert data["shape"] == [192, 64] and (data["source"], data["target"]) == ("conv2d1", "conv2d2")
    assert (
        _ticks(html, "y")[0] == (0, rows[0])
        and _ticks(html, "x")[1][1] == cols[_ticks(html, "x")[1][0]]
    )
    assert data["target_url"].replace(data["sentinel"], "7") == "/models/inceptionv1/conv2d2/7/"
    assert data["source_url"].replace(data["sentinel"], "7") == "/models/inceptionv1/conv2d1/7/"


def test_the_numbers_download_as_npy(client: Client, pair) -> None:
    response = client.get("/models/inceptionv1/conv2d2/weights.npy")
    assert response.status_code == 200
    assert 'attachment; filename="inceptionv1-' in response["Content-Disposition"]
    downloaded = np.load(io.BytesIO(response.content))
    assert downloaded.shape == (192, 64) and downloaded.dtype == np.float16
    assert np.array_equal(downloaded.astype(np.float32), strength_matrix(pair))


def test_a_rows_stored_kernels_for_the_hover(client: Client, pair) -> None:
    row = Connection.objects.get(pair=pair, direction="in", unit__index=5)
    body = client.get("/models/inceptionv1/conv2d2/weights/5.json").json()
    assert body["sources"] == row.other_indices and body["strengths"] == row.strengths
    kernels = np.frombuffer(bytes(row.kernels), dtype=np.float16).reshape(-1, 3, 3)
    assert np.allclose(body["kernels"], kernels.astype(float), atol=1e-5)
    assert client.get("/models/inceptionv1/conv2d2/weights/192.json").status_code == 404


def test_the_api_serves_the_matrix(pair) -> None:
    body = APIClient().get(f"/api/v1/layers/{pair.target_id}/weights/").json()
    assert body["shape"] == [192, 64] and body["source"] == "conv2d1"
    assert np.allclose(np.array(body["strength"]), strength_matrix(pair), atol=1e-6)
    assert body["npy_url"].endswith(
        f"/models/{body['layer'] and pair.target.model.slug}@"
        f"{pair.target.model.version}/conv2d2/weights.npy"
    )
    missing = APIClient().get(f"/api/v1/layers/{pair.source_id}/weights/")
    assert missing.status_code == 404


def test_tick_spacing_leaves_room_for_labels() -> None:
    assert tick_positions(64, 384, spacing=36) == list(range(0, 64, 10))
    assert tick_positions(480, 480, spacing=36) == list(range(0, 480, 50))
    assert tick_positions(3, 600, spacing=36) == [0, 1, 2]
