"""A real Celery worker process renders a queued job end to end (Redis + PostgreSQL on the
PostgreSQL run; the filesystem broker + SQLite on the embedded-default run)."""

from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import transaction

from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.models import Render, RenderJob
from rendering.services import render_jobs_create
from tests.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_real_worker_renders_a_queued_job(tmp_path: Path, small_renders, settings) -> None:
    model = model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))
    layer = model.layers.get(name="mixed3a")
    log = tmp_path / "worker.log"
    with celery_worker(log):
        with transaction.atomic():
            (job,) = render_jobs_create(
                layer=layer, technique="channel", units=[1, 2], params=small_renders
            )
        wait_for(
            lambda: RenderJob.objects.get(pk=job.pk).status in ("succeeded", "failed"), 240, log
        )
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    renders = Render.objects.filter(layer=layer)
    assert sorted(renders.values_list("unit__index", flat=True)) == [1, 2]
    assert all(default_storage.exists(r.image.name) for r in renders)
