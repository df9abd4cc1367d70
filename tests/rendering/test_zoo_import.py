"""Every registry model, and one torchvision model by name, imports and renders a layer.

Random-init weights at tiny sizes (layers measured at a small input, two optimization steps at
32 px), so the whole zoo fits in the suite. The engine work is the same on both databases, so
this runs on the PostgreSQL pass only.
"""

from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from neurons.models import Layer, NetworkModel
from neurons.services import model_import
from rendering.engine.zoo import ENTRIES, WeightsSpec
from rendering.models import Render
from rendering.services import render_job_run, render_jobs_create

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor == "sqlite", reason="engine-heavy: runs once, on the PostgreSQL pass"
    ),
]

# The smallest input each architecture runs at: CLIP's attention pool has a fixed 7x7 grid.
IMPORT_SIZE = {"clip_rn50": 224, "inceptionv3": 96, "inceptionv4": 96}


@pytest.mark.parametrize("key", [*sorted(ENTRIES), "torchvision:mobilenet_v3_small"])
def test_import_and_render_one_layer(key: str, small_renders: dict[str, Any], media: Path) -> None:
    model = model_import(
        registry_key=key, weights=WeightsSpec("random"), input_size=IMPORT_SIZE.get(key, 64)
    )
    assert model.status == NetworkModel.Status.READY
    trained = key in ENTRIES and ENTRIES[key].train is not None  # no download to name
    assert (bool(model.weights_url) or trained) and model.licence
    assert model.citation_bibtex.startswith("@")
    layers = list(model.layers.order_by("order"))
    assert [layer.name for layer in layers] == [
        spec.name for spec in (ENTRIES[key].layers if key in ENTRIES else layers_of(key))
    ]
    layer = next(layer for layer in layers if layer.spatial)
    technique = layer.grid_techniques[0]
    (job,) = render_jobs_create(
        layer=layer, technique=technique, units=[0, 1], params=small_renders, enqueue=False
    )
    done = render_job_run(job_id=job.pk)
    assert done is not None and done.status == "succeeded", done.error if done else "no job"
    renders = Render.objects.filter(unit__layer=layer)
    assert renders.count() == 2
    assert all((media / render.image.name).is_file() for render in renders)


def layers_of(key: str) -> list[Any]:
    from rendering.engine.zoo import get_entry

    return list(get_entry(key).layers)


def test_a_non_spatial_layer_offers_the_neuron_techniques(media: Path) -> None:
    model = model_import(registry_key="clip_rn50", weights=WeightsSpec("random"), input_size=224)
    attnpool = model.layers.get(name="attnpool")
    assert attnpool.kind == Layer.Kind.ATTENTION and not attnpool.spatial
    assert "channel" not in attnpool.grid_techniques
    assert model.layers.get(name="layer4.2").grid_techniques[0] == "channel"


def test_a_torchvision_model_keeps_a_url_safe_slug() -> None:
    model = model_import(registry_key="torchvision:mobilenet_v3_small", weights=WeightsSpec("random"), input_size=64)  # fmt: skip
    assert model.slug == "mobilenet-v3-small"
    assert model.registry_key == "torchvision:mobilenet_v3_small"
    assert model.get_absolute_url() == "/models/mobilenet-v3-small/"
