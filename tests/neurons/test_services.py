from pathlib import Path

import pytest
import torch
from django.db import IntegrityError

from neurons.models import ImportJob, Layer, NetworkModel, Unit
from neurons.services import (
    ImportRefused,
    import_job_create,
    import_job_retry,
    import_job_run,
    model_import,
)
from rendering.engine.zoo import ENTRIES, WeightsSpec, load_model
from tests.tinynet import TINYNET

pytestmark = pytest.mark.django_db


def test_import_creates_layers_with_measured_shapes_and_all_units(tinynet) -> None:
    model = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=3))
    layers = list(model.layers.order_by("order"))
    assert [(la.name, la.num_units, la.output_shape) for la in layers] == [
        ("conv1", 8, [8, 32, 32]),
        ("conv2", 16, [16, 16, 16]),
        ("logits", 10, [10]),
    ]
    assert (layers[0].receptive_field, layers[0].receptive_field_stride) == (3, 1)
    assert (layers[1].receptive_field, layers[1].receptive_field_stride) == (8, 2)
    assert Unit.objects.filter(layer__model=model).count() == 34
    assert model.version == model.weights_sha256[:12]
    assert model.untrained and model.status == NetworkModel.Status.READY


def test_importing_the_same_weights_twice_changes_nothing(tinynet) -> None:
    first = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=3))
    again = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=3))
    assert again.pk == first.pk
    assert NetworkModel.objects.filter(slug="tinynet").count() == 1
    assert Unit.objects.filter(layer__model__slug="tinynet").count() == 34


def test_different_weights_make_a_new_version_and_leave_the_old_one(tinynet) -> None:
    old = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=3))
    new = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=4))
    assert new.version != old.version
    old.refresh_from_db()
    assert old.layers.count() == 3 and Unit.objects.filter(layer__model=old).count() == 34


def test_a_state_dict_file_imports_with_the_files_hash(tinynet, tmp_path: Path) -> None:
    source = load_model(TINYNET, WeightsSpec("random", seed=9))
    path = tmp_path / "tiny.pt"
    torch.save(source.module.state_dict(), path)
    model = model_import(registry_key="tinynet", weights=WeightsSpec("file", path=str(path)))
    assert model.weights_sha256 == source.sha256
    assert model.weights_source == "file" and not model.untrained


def test_a_failed_write_leaves_no_half_made_model(tinynet, monkeypatch) -> None:
    def explode(*args, **kwargs):
        raise IntegrityError("disk on fire")

    monkeypatch.setattr(Unit.objects, "bulk_create", explode)
    with pytest.raises(IntegrityError):
        model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=5))
    assert not NetworkModel.objects.filter(slug="tinynet").exists()
    assert not Layer.objects.filter(model__slug="tinynet").exists()


def test_unknown_registry_key_is_refused_with_the_known_keys(db) -> None:
    with pytest.raises(ImportRefused, match="Unknown model 'nope'.*inceptionv1"):
        model_import(registry_key="nope", weights=WeightsSpec("random"))
    with pytest.raises(ImportRefused, match="Unknown model"):
        import_job_create(registry_key="nope", weights_source="random")
    assert not ImportJob.objects.exists()


def test_missing_weights_file_fails_the_job_with_a_clear_error(tinynet) -> None:
    job = import_job_create(
        registry_key="tinynet",
        weights_source="file",
        weights_path="/no/such/file.pt",
        enqueue=False,
    )
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "/no/such/file.pt does not exist" in job.error
    assert "failed" in job.log
    assert not NetworkModel.objects.filter(slug="tinynet").exists()


def test_a_failed_job_can_be_retried_and_then_succeeds(tinynet, tmp_path: Path) -> None:
    path = tmp_path / "later.pt"
    job = import_job_create(
        registry_key="tinynet", weights_source="file", weights_path=str(path), enqueue=False
    )
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    torch.save(load_model(TINYNET, WeightsSpec("random", seed=1)).module.state_dict(), path)
    import_job_retry(job=job)
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED and job.attempts == 2
    assert job.result is not None and job.result.layers.count() == 3
    assert job.progress == 1.0 and job.error == ""


def test_a_job_runs_once_even_if_claimed_twice(tinynet) -> None:
    job = import_job_create(registry_key="tinynet", weights_source="random", enqueue=False)
    assert import_job_run(job_id=job.pk) is not None
    assert import_job_run(job_id=job.pk) is None
    assert ImportJob.objects.get(pk=job.pk).attempts == 1


def test_creating_a_job_enqueues_its_task_only_on_commit(
    tinynet, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    sent = []
    from microscope_site import jobs

    monkeypatch.setattr(
        jobs, "job_send", lambda kind, job_id, job: sent.append((job_id, job.task_id))
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = import_job_create(registry_key="tinynet", weights_source="random", seed=2)
        assert sent == []
    assert len(callbacks) == 1
    assert sent == [(job.pk, job.task_id)]


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_every_registry_model_imports_with_random_weights(key: str) -> None:
    model = model_import(registry_key=key, weights=WeightsSpec("random", seed=1))
    entry = ENTRIES[key]
    layers = list(model.layers.order_by("order"))
    assert [layer.name for layer in layers] == [spec.name for spec in entry.layers]
    assert all(layer.num_units > 0 for layer in layers)
    assert Unit.objects.filter(layer__model=model).count() == sum(la.num_units for la in layers)
