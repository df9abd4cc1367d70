import base64
import io
import re

import numpy as np
import pytest
from django.test import Client
from PIL import Image

from rendering.connections import connection_jobs_create, layer_pairs
from rendering.models import Connection, LayerConnection, RenderJob
from rendering.services import render_job_run

pytestmark = pytest.mark.django_db


def _compute(model, target: str) -> LayerConnection:
    jobs = connection_jobs_create(model=model, top=10, enqueue=False)
    (job,) = [j for j in jobs if j.layer.name == target]
    done = render_job_run(job_id=job.pk)
    assert done is not None and done.status == "succeeded", done and done.error
    return LayerConnection.objects.get(target__name=target, target__model=model)


def test_one_job_per_consecutive_layer_pair(inceptionv1) -> None:
    pairs = [(a.name, b.name) for a, b in layer_pairs(inceptionv1)]
    assert pairs[:3] == [("conv2d0", "conv2d1"), ("conv2d1", "conv2d2"), ("conv2d2", "mixed3a")]
    # Eleven pairs of consecutive spatial layers, then the last one into the logits layer.
    assert len(pairs) == 12 and pairs[-1] == ("mixed5b", "softmax2_pre_activation")
    connection_jobs_create(model=inceptionv1, enqueue=False)
    assert RenderJob.objects.filter(technique__slug="connections").count() == 12
    assert connection_jobs_create(model=inceptionv1, enqueue=False) == []  # already queued


def test_a_pair_stores_every_units_strongest_inputs_and_outputs(inceptionv1, media) -> None:
    pair = _compute(inceptionv1, "conv2d2")
    assert pair.source.name == "conv2d1" and pair.method == "direct" and pair.kernel_size == 3
    incoming = Connection.objects.filter(pair=pair, direction="in")
    outgoing = Connection.objects.filter(pair=pair, direction="out")
    assert incoming.count() == 192 and outgoing.count() == 64
    row = incoming.get(unit__index=5)
    assert len(row.other_indices) == len(row.strengths) == 10
    magnitudes = [abs(s) for s in row.strengths]
    assert magnitudes == sorted(magnitudes, reverse=True)
    kernels = np.frombuffer(bytes(row.kernels), dtype=np.float16).reshape(10, 3, 3)
    assert np.allclose(np.linalg.norm(kernels.reshape(10, -1), axis=1), magnitudes, rtol=2e-2)


def test_unit_pages_show_inputs_and_outputs_with_kernels(
    client: Client, inceptionv1, media
) -> None:
    pair = _compute(inceptionv1, "conv2d2")
    row = Connection.objects.get(pair=pair, direction="in", unit__index=5)
    html = client.get("/models/inceptionv1/conv2d2/5/?technique=connections").content.decode()
    assert "Inputs" in html
    link = f"/models/inceptionv1/conv2d1/{row.other_indices[0]}/?technique=connections"
    assert f'href="{link}"' in html
    assert 'class="kernel" src="data:image/png;base64,' in html
    uri = html.split('class="kernel" src="data:image/png;base64,')[1].split('"')[0]
    kernel = Image.open(io.BytesIO(base64.b64decode(uri)))
    assert kernel.size == (3, 3)  # one pixel per position of conv2d1 → conv2d2's 3x3 kernel
    # Every input as stored, strongest first: its name, strength (3 places) and tone.
    inputs = html.split("<h3>Inputs</h3>")[1].split("</ol>")[0]
    shown = re.findall(
        r'<span>(conv2d1:\d+)</span></a>\s*<span class="strength (pos|neg|mixed)">(-?[\d.]+)'
        r'.*?alt="3×3 kernel of (conv2d1:\d+), strength (-?[\d.]+)"',
        inputs,
        re.S,
    )
    assert [name for name, *_ in shown] == [f"conv2d1:{i}" for i in row.other_indices]
    for (_, _, value, _, _), strength in zip(shown, row.strengths, strict=True):
        assert len(value.split(".")[1]) == 3 and abs(float(value) - strength) <= 0.0005 + 1e-9
    for name, tone, value, alt_name, alt_value in shown:
        assert (alt_name, alt_value) == (name, value)
        assert tone == "mixed" or tone == ("neg" if float(value) < 0 else "pos")
    outputs = client.get("/models/inceptionv1/conv2d1/0/?technique=connections").content.decode()
    assert "Outputs" in outputs and 'href="/models/inceptionv1/conv2d2/' in outputs


def test_the_layer_pair_view_draws_the_matrix_sortable(client: Client, inceptionv1, media) -> None:
    _compute(inceptionv1, "conv2d2")
    page = client.get("/models/inceptionv1/conv2d2/weights/")
    assert page.status_code == 200 and b"conv2d1 \xe2\x86\x92 conv2d2" in page.content
    for sort in ("index", "strength"):
        png = client.get(f"/models/inceptionv1/conv2d2/weights.png?sort={sort}")
        assert png.status_code == 200 and png["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(png.content)).size == (64, 192)
    assert client.get("/models/inceptionv1/mixed3a/weights/").status_code == 404  # not computed
