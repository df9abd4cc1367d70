"""`make demo`'s first part: the model organism trained, imported and filled in, end to end."""

from pathlib import Path

import pytest

from microscope_site.management.commands.demo_setup import Command
from neurons.models import NetworkModel
from rendering.engine.zoo import training as training_module
from rendering.engine.zoo.training import TrainingConfig
from rendering.models import Dataset, LayerConnection, Render, TuningCurve, UnitExamples

pytestmark = pytest.mark.django_db


def test_demo_trains_the_organism_and_fills_in_every_technique(
    monkeypatch: pytest.MonkeyPatch, settings: object, tmp_path: Path, media: Path
) -> None:
    monkeypatch.setattr(
        training_module,
        "DEFAULT_CONFIG",
        TrainingConfig(steps=2, batch_size=20, size=64, held_out_per_class=1),
    )
    settings.VAR_DIR = tmp_path  # type: ignore[attr-defined]
    settings.RENDER_DEVICE = "cpu"  # type: ignore[attr-defined]
    command = Command()
    command._organism(steps=2)

    model = NetworkModel.objects.get(slug="stimuli-cnn")
    units = sum(layer.num_units for layer in model.layers.all())
    channel = Render.objects.filter(unit__layer__model=model, technique__slug="channel")
    assert channel.count() == units - 20  # every conv unit
    logits = model.layers.get(name="logits")
    assert Render.objects.filter(unit__layer=logits, technique__slug="neuron").count() == 20
    assert Render.objects.filter(unit__layer=logits, technique__slug="diversity").exists()
    pairs = LayerConnection.objects.filter(target__model=model)
    assert sorted(p.target.name for p in pairs) == ["conv2", "conv3", "conv4", "logits"]
    assert set(Dataset.objects.values_list("slug", flat=True)) >= {"stimuli-heldout", "demo"}
    for dataset in ("stimuli-heldout", "demo"):
        examples = UnitExamples.objects.filter(unit__layer=logits, dataset__slug=dataset)
        assert examples.count() == 20, dataset
    assert TuningCurve.objects.filter(unit__layer=logits).count() > 0
    # Run again: nothing is trained or computed twice.
    before = Render.objects.count()
    command._organism(steps=2)
    assert Render.objects.count() == before
    assert NetworkModel.objects.filter(slug="stimuli-cnn").count() == 1
