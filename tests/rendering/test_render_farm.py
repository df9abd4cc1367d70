"""Two real Celery workers at once on one layer (PostgreSQL + Redis, as a render farm runs):
every unit is rendered, none twice, and both workers take part. Each job's task is also sent a
second time, as a broker redelivers it after a lost connection: the conditional claim lets
exactly one worker run a job."""

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.db.models import Count

from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.models import Render, RenderJob
from rendering.services import render_jobs_create
from rendering.tasks import render_job_task
from tests.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

UNITS = list(range(16))
PARAMS = {"size": 32, "steps": 2}
_SUCCEEDED = re.compile(r"Task rendering\.tasks\.render_job_task\[[0-9a-f-]+\] succeeded")


@pytest.fixture
def postgres() -> Iterator[None]:
    if connection.vendor != "postgresql":
        pytest.skip("a render farm shares PostgreSQL; SQLite serves one local worker")
    yield


def test_two_workers_share_a_layer_without_rendering_a_unit_twice(
    postgres: None, tmp_path: Path, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"RENDER_DEVICE": "cpu", "RENDER_BATCH_SIZE": "1"}.items():
        monkeypatch.setenv(name, value)  # the workers' settings: two batches per job
    model = model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))
    layer = model.layers.get(name="conv2d0")
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    with ExitStack() as farm:
        for log, name in zip(logs, ("a", "b"), strict=True):
            farm.enter_context(celery_worker(log, queues="gpu", name=name))
        for log in logs:  # both consume before the first job is sent
            wait_for(lambda log=log: log.exists() and "ready." in log.read_text(), 120, log)
        with transaction.atomic():
            jobs = render_jobs_create(
                layer=layer, technique="channel", params=PARAMS, units=UNITS, units_per_job=2
            )
        assert len(jobs) == len(UNITS) // 2
        for job in jobs:  # a redelivered message: the same job's task once more
            render_job_task.apply_async(args=[job.pk], queue="gpu")
        # Every task, the duplicates included (they find their job claimed), has finished.
        wait_for(
            lambda: sum(len(_SUCCEEDED.findall(log.read_text())) for log in logs) == 2 * len(jobs),
            240,
            logs[0],
        )
    rows = Render.objects.filter(layer=layer)
    per_unit = rows.values("unit__index").annotate(n=Count("pk"))
    assert sorted(row["unit__index"] for row in per_unit) == UNITS  # every unit
    assert {row["n"] for row in per_unit} == {1}  # none twice
    rendered, workers = 0, set()
    for job in RenderJob.objects.filter(pk__in=[j.pk for j in jobs]):
        assert job.status == "succeeded" and job.attempts == 1, (job, job.error)
        (count,) = re.findall(r"attempt 1: (\d+) units to render", job.log)
        rendered += int(count)
        (worker,) = re.findall(r"rendered 2 units on (\S+): engine [\d.]+ s of [\d.]+ s", job.log)
        workers.add(worker)
    assert rendered == len(UNITS)  # each unit went through the engine once
    assert len(workers) == 2, workers  # both workers rendered jobs of the layer
