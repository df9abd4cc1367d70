"""kill -9 of a Celery worker in the middle of a render: the job completes on another worker,
with exactly one Render row per unit and no orphaned or half-written file.

How the job comes back. The task is `acks_late` with `reject_on_worker_lost`, but neither
brings this job back by itself: a SIGKILL of the whole worker (main process and pool child)
leaves its message unacknowledged in Redis until the broker's visibility timeout (6 h, longer
than the longest job) and consumed already on the embedded filesystem broker; and when that
redelivery comes, the row is still "running" under a dead worker, so the conditional claim
refuses it. The reaper is what finishes the job: Celery beat sends `reap_stale_jobs`
every minute; it requeues a running job whose heartbeat is older than RENDER_STALE_AFTER_S
(600 s; 5 s here) under a new task id, and a live worker renders what the job still lacks.
The stale 6-hour redelivery, if it ever comes, finds the job succeeded and does nothing.
"""

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Count

from microscope_site.tasks import reap_stale_jobs
from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.integrity import verify_storage
from rendering.models import Render, RenderJob
from rendering.services import render_jobs_create
from tests.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

UNITS = [0, 1, 2, 3]
# About 2-3 s per unit on a CPU (one unit per optimization): long enough to kill mid-job.
PARAMS = {"size": 64, "steps": 96}
STALE_AFTER_S = 5


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _kill_9(pid: int) -> list[int]:
    """SIGKILL a worker and its pool processes at once: what the OOM killer or a lost machine does."""
    tree = [pid, *_descendants(pid)]
    for member in tree:
        try:
            os.kill(member, signal.SIGSTOP)  # freeze all first, so none reacts to another's death
        except ProcessLookupError:
            continue
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return tree


def test_a_render_survives_kill_9_of_its_worker(
    tmp_path: Path, media: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to find the worker's pool processes")
    for name, value in {
        "RENDER_BATCH_SIZE": "1",
        "RENDER_DEVICE": "cpu",
        "RENDER_STALE_AFTER_S": str(STALE_AFTER_S),
    }.items():
        monkeypatch.setenv(name, value)  # the workers' settings
    # Imported again: an earlier transactional test may have flushed the session's copy.
    model = model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))
    layer = model.layers.get(name="conv2d0")
    renders = Render.objects.filter(layer=layer)
    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    with celery_worker(first_log) as worker:
        with transaction.atomic():
            (job,) = render_jobs_create(
                layer=layer, technique="channel", params=PARAMS, units=UNITS, units_per_job=4
            )

        def mid_job() -> bool:
            status = RenderJob.objects.values_list("status", flat=True).get(pk=job.pk)
            return status == "running" and 1 <= renders.count() < len(UNITS)

        wait_for(mid_job, 240, first_log)
        killed = _kill_9(worker.pid)
        worker.wait(timeout=10)
    assert len(killed) >= 2  # the worker and its pool child
    job.refresh_from_db()
    done_before = renders.count()
    assert job.status == "running" and job.attempts == 1 and done_before < len(UNITS)

    with celery_worker(second_log):
        wait_for(
            lambda: (
                RenderJob.objects.get(pk=job.pk).heartbeat is not None
                and time.time() - RenderJob.objects.get(pk=job.pk).heartbeat.timestamp()
                > STALE_AFTER_S + 1
            ),
            60,
            second_log,
        )
        reap_stale_jobs.apply_async(queue="default")  # what beat sends every minute
        wait_for(
            lambda: RenderJob.objects.get(pk=job.pk).status in ("succeeded", "failed"),
            240,
            second_log,
        )
    job.refresh_from_db()
    assert job.status == "succeeded", job.error + second_log.read_text()[-3000:]
    assert job.attempts == 2
    assert f"attempt 2: {len(UNITS) - done_before} units to render" in job.log
    per_unit = renders.values("unit__index", "technique", "params_hash", "variant").annotate(
        n=Count("pk")
    )
    assert sorted(row["unit__index"] for row in per_unit) == UNITS
    assert {row["n"] for row in per_unit} == {1}  # exactly one row per unit, never two
    report = verify_storage()
    assert report.ok and (report.missing, report.corrupt, report.orphans) == (0, 0, 0), (
        report.details
    )


def test_an_import_survives_kill_9_of_its_worker(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for an import: before the one job lifecycle, imports had heartbeats but no
    reaper, so one whose worker died stayed "running" forever and could not be retried."""
    from neurons.models import ImportJob, NetworkModel
    from neurons.services import import_job_create

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to find the worker's pool processes")
    monkeypatch.setenv("IMPORT_STALE_AFTER_S", str(STALE_AFTER_S))  # the workers' settings
    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    with celery_worker(first_log) as worker:
        with transaction.atomic():
            # VGG19: 143 M parameters to initialize and hash, seconds of work to kill in.
            job = import_job_create(registry_key="vgg19", weights_source="random", seed=3)
        rows = ImportJob.objects.filter(pk=job.pk)
        deadline = time.monotonic() + 240
        while rows.values_list("status", flat=True).get() == "queued":
            assert time.monotonic() < deadline, first_log.read_text()[-3000:]
            time.sleep(0.05)
        _kill_9(worker.pid)
        worker.wait(timeout=10)
    job.refresh_from_db()
    assert job.status == "running" and job.attempts == 1, job.log
    assert not NetworkModel.objects.filter(registry_key="vgg19").exists()  # nothing half made

    with celery_worker(second_log):
        wait_for(
            lambda: time.time() - rows.get().heartbeat.timestamp() > STALE_AFTER_S + 1,
            60,
            second_log,
        )
        reap_stale_jobs.apply_async(queue="default")  # what beat sends every minute
        wait_for(lambda: rows.get().status in ("succeeded", "failed"), 240, second_log)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error + second_log.read_text()[-3000:]
    assert job.attempts == 2 and "worker stopped sending heartbeats" in job.log
    assert NetworkModel.objects.filter(registry_key="vgg19").count() == 1
    assert job.result is not None and job.result.layers.filter(name="conv5_4").exists()
