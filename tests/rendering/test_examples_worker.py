"""A real Celery worker computes dataset examples and tuning curves (Redis + PostgreSQL on the
PostgreSQL run; the filesystem broker + SQLite on the embedded-default run)."""

from pathlib import Path

import numpy as np
import pytest
from django.db import transaction
from PIL import Image

from neurons.services import model_import
from rendering.datasets import dataset_register
from rendering.engine.zoo import WeightsSpec
from rendering.examples import examples_jobs_create
from rendering.models import RenderJob, TuningCurve, UnitExamples
from rendering.tuning import tuning_jobs_create
from tests.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_real_worker_computes_examples_and_tuning(tmp_path: Path, media: Path, settings) -> None:
    settings.RENDER_DEVICE = "cpu"
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (240, 260, 3), dtype=np.uint8)).save(
            folder / f"{i}.png"
        )
    (folder / "bad.png").write_bytes(b"\x89PNG broken")
    model = model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))
    dataset = dataset_register(slug="noise", name="Noise", location=str(folder))
    log = tmp_path / "worker.log"
    with celery_worker(log):
        with transaction.atomic():
            jobs = examples_jobs_create(
                model=model, dataset=dataset, layers=["conv2d2", "mixed3a"], k=3
            ) + tuning_jobs_create(model=model, layers=["conv2d2"])
        wait_for(
            lambda: all(
                RenderJob.objects.get(pk=job.pk).status in ("succeeded", "failed") for job in jobs
            ),
            300,
            log,
        )
    for job in jobs:
        job.refresh_from_db()
        assert job.status == "succeeded", job.error
    examples = UnitExamples.objects.filter(unit__layer__model=model)
    assert examples.count() == 192 + 256
    row = examples.get(unit__layer__name="mixed3a", unit__index=7)
    assert row.stats["count"] == 6 and len(row.top) == 3
    assert "skipped bad.png" in RenderJob.objects.get(technique__slug="examples").log
    assert TuningCurve.objects.filter(unit__layer__name="conv2d2").count() == 3 * 192
