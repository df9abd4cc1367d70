"""Storage writes fail (disk full, a bucket's error): the job fails with the error and is
retried; no row points to a missing file, and no truncated file stays behind."""

from pathlib import Path
from typing import Any

import pytest

from neurons.models import NetworkModel
from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.integrity import verify_storage
from rendering.models import Render, RenderJob
from rendering.services import render_job_run, render_jobs_create
from rendering.tasks import render_job_task
from tests.reliability.storages import FullDiskStorage, storages

pytestmark = pytest.mark.django_db

SMALL = {"size": 32, "steps": 2}
HERE = "tests.reliability.storages"


@pytest.fixture
def tiny(tinynet: Any, small_renders: dict[str, Any]) -> NetworkModel:
    return model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=5))


def _use(settings: Any, media: Path, backend: str) -> None:
    settings.STORAGES = storages(f"{HERE}.{backend}", str(media), settings.STORAGES["staticfiles"])


def _job(model: NetworkModel, units: list[int]) -> RenderJob:
    layer = model.layers.get(name="conv2")
    (job,) = render_jobs_create(
        layer=layer, technique="channel", params=SMALL, units=units, enqueue=False
    )
    return job


def _files(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


def test_a_full_disk_fails_the_job_after_its_attempts_and_leaves_nothing_behind(
    tiny: NetworkModel, settings: Any, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RENDER_MAX_ATTEMPTS = 3
    monkeypatch.setattr(FullDiskStorage, "writes_left", 0)
    _use(settings, media, "FullDiskStorage")
    job = _job(tiny, [0, 1])
    # The Celery task, run here: each failure requeues the row, until the row's attempts end.
    render_job_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 3
    assert "No space left on device" in job.error
    assert job.log.count("failed: [Errno 28] No space left on device") == 3
    assert not Render.objects.exists()
    assert _files(media) == []  # the half-written files were removed
    assert verify_storage().ok


def test_a_bucket_error_requeues_the_job_which_succeeds_once_storage_is_back(
    tiny: NetworkModel, settings: Any, media: Path
) -> None:
    _use(settings, media, "BucketErrorStorage")
    job = _job(tiny, [2, 3])
    assert render_job_run(job_id=job.pk) is not None
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 1
    assert "InternalError" in job.error and "PutObject" in job.error
    assert not Render.objects.exists()
    _use(settings, media, "FileSystemStorage")  # the bucket answers again
    done = render_job_run(job_id=job.pk)
    assert done is not None and done.status == "succeeded"
    renders = Render.objects.filter(unit__layer=job.layer)
    assert sorted(renders.values_list("unit__index", flat=True)) == [2, 3]
    report = verify_storage()
    assert report.ok and report.checked == 4 and report.orphans == 0


def test_a_write_failing_mid_job_keeps_the_finished_units_and_only_they_have_rows(
    tiny: NetworkModel, settings: Any, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Units are stored one by one (batch size 1): image, thumbnail, then the row. Unit 4's
    # two writes succeed; unit 5's image fails half-way.
    monkeypatch.setattr(FullDiskStorage, "writes_left", 2)
    _use(settings, media, "FullDiskStorage")
    job = _job(tiny, [4, 5])
    render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "queued" and "No space left on device" in job.error
    (kept,) = Render.objects.filter(unit__layer=job.layer)
    assert kept.unit is not None and kept.unit.index == 4
    assert sorted(p.relative_to(media).as_posix() for p in _files(media)) == sorted(
        [kept.image.name, kept.thumbnail.name]
    )
    _use(settings, media, "FileSystemStorage")
    render_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and "attempt 2: 1 units to render" in job.log
    assert verify_storage().ok
