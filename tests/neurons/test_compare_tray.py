"""The comparison tray: any units of any models, named in the URL, side by side with every
technique and their tuning curves overlaid."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from django.test import Client

from neurons.models import NetworkModel, Technique, Unit
from neurons.services import model_import
from neurons.tray import TRAY_MAX
from rendering.engine.zoo import WeightsSpec
from rendering.models import Render, TuningCurve
from rendering.services import render_job_run
from rendering.tuning import tuning_jobs_create

pytestmark = pytest.mark.django_db
COMPARE = "/models/compare/"


@pytest.fixture
def tiny(tinynet: Any, small_renders: Any, settings: Any) -> NetworkModel:
    settings.EXAMPLES_LOADER_WORKERS = 0
    return model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))


def _key(unit: Unit) -> str:
    model = unit.layer.model
    return f"{model.slug}@{model.version}/{unit.layer.name}/{unit.index}"


def _unit(model: NetworkModel, layer: str, index: int) -> Unit:
    return Unit.objects.select_related("layer__model").get(
        layer__model=model, layer__name=layer, index=index
    )


def _columns(html: str) -> list[str]:
    return [part.split("</section>")[0] for part in html.split('<section class="tray-column"')[1:]]


def test_a_tray_shows_units_of_two_models_in_url_order(
    client: Client, inceptionv1: NetworkModel, tiny: NetworkModel
) -> None:
    a, b = _unit(tiny, "logits", 3), _unit(inceptionv1, "mixed4c", 447)
    Unit.objects.filter(pk=a.pk).update(class_name="stored class three")
    Render.objects.create(
        unit=b,
        layer=b.layer,
        technique=Technique.objects.get(slug="negative"),
        params={"steps": 2, "size": 32, "seed": 0, "lr": 0.05},
        params_hash="p1",
        image="renders/neg-447.png",
        thumbnail="renders/neg-447-thumb.png",
        image_sha256="0" * 64,
        objective=1.0,
    )
    response = client.get(COMPARE, {"units": f"{_key(a)},{_key(b)}"})
    assert response.status_code == 200
    html = response.content.decode()
    first, second = _columns(html)
    assert f'data-unit-key="{_key(a)}"' in first and "TinyNet logits:3" in first
    assert '<span class="class-name">stored class three</span>' in first
    assert "InceptionV1 mixed4c:447" in second
    # Every technique the layer offers has its place; the stored render is shown in its own.
    negative = second.split("<h3>negative</h3>")[1].split("</div>")[0]
    assert 'src="/media/renders/neg-447.png"' in negative
    assert "No channel render yet." in second and "No dataset examples yet." in second
    assert "<h3>channel</h3>" not in first  # a layer of neurons has no channel objective
    # Removing a unit is a link to the same tray without it.
    remove = first.split('class="tray-remove" href="')[1].split('"')[0]
    assert parse_qs(urlsplit(remove.replace("&amp;", "&")).query) == {"units": [_key(b)]}
    assert f'data-tray-keys="{_key(a)},{_key(b)}"' in html


def test_tuning_curves_are_overlaid_across_the_tray(client: Client, tiny: NetworkModel) -> None:
    for job in tuning_jobs_create(model=tiny, layers=["conv2"], enqueue=False):
        assert render_job_run(job_id=job.pk) is not None
    a, b = _unit(tiny, "conv2", 1), _unit(tiny, "conv2", 4)
    html = client.get(COMPARE, {"units": f"{_key(a)},{_key(b)}"}).content.decode()
    tuning = html.split('id="tray-tuning-h"')[1]
    families = sorted(set(TuningCurve.objects.filter(unit=a).values_list("family", flat=True)))
    assert families and tuning.count("<figure>") == len(families)
    for family in families:
        assert f"{family}: 2 of 2 units measured" in tuning
    colour = tuning.split("<title>colour tuning, 2 units overlaid</title>")[1].split("</svg>")[0]
    assert colour.count("<polyline") == 2
    assert "TinyNet conv2:1 (peak" in colour and "TinyNet conv2:4 (peak" in colour
    stored = TuningCurve.objects.get(unit=a, family="colour")
    peak = float(np.abs(np.asarray(stored.responses)).max())
    assert f"TinyNet conv2:1 (peak {peak:.3g})" in colour
    if peak == 0:  # a unit that never answers is said to, not drawn as if it peaked
        assert "TinyNet conv2:1: no response to any stimulus" in colour


def test_add_resolves_a_shorthand_and_redirects_to_the_longer_tray(
    client: Client, inceptionv1: NetworkModel, tiny: NetworkModel
) -> None:
    a = _unit(tiny, "conv1", 0)
    response = client.get(COMPARE, {"units": _key(a), "add": "InceptionV1 4c:447"})
    assert response.status_code == 302
    target = _key(_unit(inceptionv1, "mixed4c", 447))
    assert parse_qs(urlsplit(response["Location"]).query) == {"units": [f"{_key(a)},{target}"]}
    missing = client.get(COMPARE, {"units": _key(a), "add": "nonsense 9:9"})
    assert missing.status_code == 404 and "No unit is called" in missing.content.decode()


@pytest.mark.parametrize(
    ("units", "status", "message"),
    [
        ("inceptionv1/mixed4c", 400, "Not a unit key"),
        ("<script>/x/1", 400, "Not a unit key"),
        (",".join(f"inceptionv1/mixed4c/{i}" for i in range(TRAY_MAX + 1)), 400, "at most"),
        ("inceptionv1/mixed4c/99999", 404, "No unit at inceptionv1/mixed4c/99999"),
    ],
)
def test_bad_trays_are_refused_with_a_reason(
    client: Client, inceptionv1: NetworkModel, units: str, status: int, message: str
) -> None:
    response = client.get(COMPARE, {"units": units})
    assert response.status_code == status
    html = response.content.decode()
    assert message in html and "<script>/x" not in html


def test_unit_pages_offer_to_add_themselves(client: Client, inceptionv1: NetworkModel) -> None:
    unit = _unit(inceptionv1, "mixed4c", 447)
    html = client.get("/models/inceptionv1/mixed4c/447/").content.decode()
    assert f'data-unit-key="{_key(unit)}"' in html
    assert f'class="tray-add" href="{COMPARE}?units={_key(unit)}"' in html
    assert client.get(COMPARE, {"units": _key(unit)}).status_code == 200


def test_the_compare_page_starts_a_tray_from_a_shorthand(
    client: Client, inceptionv1: NetworkModel
) -> None:
    page = client.get(COMPARE).content.decode()
    assert 'name="add"' in page and "Start a tray" in page
    response = client.get(COMPARE, {"add": "mixed4c 447"})
    target = _key(_unit(inceptionv1, "mixed4c", 447))
    assert response.status_code == 302 and response["Location"] == f"{COMPARE}?units={target}"
