"""Importing the model organism with weights trained here, and architecture revisions."""

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client

from neurons.models import NetworkModel
from neurons.services import model_import, model_version_label
from rendering import services as rendering_services
from rendering.engine.zoo import ENTRIES, WeightsSpec
from rendering.engine.zoo import training as training_module
from rendering.engine.zoo.training import TrainingConfig

pytestmark = pytest.mark.django_db

TINY = TrainingConfig(steps=2, batch_size=20, size=32, held_out_per_class=1)


@pytest.fixture
def tiny_training(monkeypatch: pytest.MonkeyPatch, media: Path) -> TrainingConfig:
    monkeypatch.setattr(training_module, "DEFAULT_CONFIG", TINY)
    return TINY


def test_import_model_trains_stores_and_describes_the_weights(
    tiny_training: TrainingConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("import_model", "stimuli-cnn", weights="train")
    model = NetworkModel.objects.get(slug="stimuli-cnn")
    assert model.weights_source == "train"
    assert model.version == model.weights_sha256[:12] and model.architecture_revision == 1
    assert model.training["config"]["steps"] == 2
    assert 0 <= model.training["held_out_accuracy"] <= 1
    assert "held-out accuracy" in model.training["description"]
    assert model.weights_detail == f"weights/{model.weights_sha256}.pt"
    assert default_storage.exists(model.weights_detail)
    assert [layer.name for layer in model.layers.order_by("order")] == [
        "conv1", "conv2", "conv3", "conv4", "logits",
    ]  # fmt: skip
    assert model.layers.get(name="logits").num_units == 20
    assert "is ready" in capsys.readouterr().out

    page = Client().get(model.get_absolute_url()).content.decode()
    assert "Held-out accuracy" in page and "trained here on generated stimuli" in page


def test_a_worker_loads_the_stored_weights_without_training(
    tiny_training: TrainingConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = model_import(registry_key="stimuli-cnn", weights=WeightsSpec("train"))

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a worker must not train again")

    monkeypatch.setattr(training_module, "train", no_training)
    rendering_services._loaded.clear()
    loaded = rendering_services.network_module(model)
    assert loaded.sha256 == model.weights_sha256


def test_the_same_training_imports_once(tiny_training: TrainingConfig) -> None:
    first = model_import(registry_key="stimuli-cnn", weights=WeightsSpec("train"))
    again = model_import(registry_key="stimuli-cnn", weights=WeightsSpec("train"))
    assert again.pk == first.pk
    other = model_import(registry_key="stimuli-cnn", weights=WeightsSpec("train", seed=1))
    assert other.pk != first.pk and other.version != first.version


def test_a_new_architecture_revision_is_a_new_version(
    tiny_training: TrainingConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = model_import(registry_key="stimuli-cnn", weights=WeightsSpec("train"))
    url = first.get_versioned_url()
    revised = dataclasses.replace(ENTRIES["stimuli-cnn"], revision=2)
    monkeypatch.setitem(ENTRIES, "stimuli-cnn", revised)

    second = model_import(registry_key="stimuli-cnn", weights=WeightsSpec("train"))
    assert second.pk != first.pk
    assert second.weights_sha256 == first.weights_sha256
    assert second.architecture_revision == 2
    assert second.version == model_version_label(first.weights_sha256, 2) != first.version
    first.refresh_from_db()
    assert first.architecture_revision == 1 and first.get_versioned_url() == url
    assert Client().get(url).status_code == 200
    # Importing again under revision 2 finds the revision-2 version.
    assert model_import(registry_key="stimuli-cnn", weights=WeightsSpec("train")).pk == second.pk


def test_a_model_without_a_training_recipe_cannot_be_trained() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="alexnet cannot be trained here"):
        call_command("import_model", "alexnet", weights="train")
