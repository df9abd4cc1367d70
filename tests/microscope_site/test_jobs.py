"""The one job lifecycle (microscope_site/jobs.py), on import and export rows: claim, finish,
fail and requeue, refusals, retry, and the reaper of every kind."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from microscope_site import jobs
from microscope_site.errors import Refused
from microscope_site.jobs import (
    KINDS,
    JobRefused,
    job_claim,
    job_retry,
    job_run,
    jobs_reap,
    jobs_reap_all,
)
from neurons.jobs import IMPORT_JOBS
from neurons.models import ImportJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Tasks sent (kind, job id), instead of the broker."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(
        jobs, "job_send", lambda kind, job_id, job=None: calls.append((kind.name, job_id))
    )
    return calls


def _job(**fields: Any) -> ImportJob:
    return ImportJob.objects.create(
        registry_key="tinynet", weights_source="random", task_id="t", **fields
    )


def test_every_job_kind_is_registered_with_its_own_settings(settings: Any) -> None:
    assert {"import", "export", "render"} <= set(KINDS)
    settings.IMPORT_MAX_ATTEMPTS, settings.EXPORT_MAX_ATTEMPTS = 5, 2
    settings.IMPORT_STALE_AFTER_S = 30
    assert KINDS["import"].max_attempts == 5 and KINDS["export"].max_attempts == 2
    assert KINDS["import"].stale_after == timedelta(seconds=30)
    assert KINDS["render"].queue == "gpu" and KINDS["import"].queue == "default"


def test_a_job_is_claimed_once() -> None:
    job = _job()
    claimed = job_claim(IMPORT_JOBS, job.pk)
    assert claimed is not None and claimed.status == "running" and claimed.attempts == 1
    assert claimed.heartbeat is not None and claimed.started is not None
    assert job_claim(IMPORT_JOBS, job.pk) is None


def test_a_run_that_succeeds_saves_the_fields_its_work_set() -> None:
    job = _job()

    def work(row: ImportJob) -> list[str]:
        row.log += "worked\n"
        row.seed = 7
        return ["seed"]

    done = job_run(IMPORT_JOBS, job.pk, work)
    row = ImportJob.objects.get(pk=job.pk)
    assert done is not None and row.status == "succeeded" and row.progress == 1.0
    assert row.seed == 7 and "worked" in row.log and row.finished is not None


def test_a_failure_is_queued_again_until_the_attempts_are_used(settings: Any) -> None:
    settings.IMPORT_MAX_ATTEMPTS = 2
    job = _job()

    def work(row: ImportJob) -> list[str]:
        raise OSError("disk unreachable")

    first = job_run(IMPORT_JOBS, job.pk, work)
    assert first is not None and first.status == "queued" and first.finished is None
    assert "attempt 1 failed: disk unreachable" in first.log
    second = job_run(IMPORT_JOBS, job.pk, work)
    assert second is not None and second.status == "failed" and second.attempts == 2
    assert "OSError: disk unreachable" in second.error and second.finished is not None
    assert job_run(IMPORT_JOBS, job.pk, work) is None  # nothing left to claim


def test_a_refusal_fails_at_once_with_its_message(settings: Any) -> None:
    settings.IMPORT_MAX_ATTEMPTS = 3
    job = _job()

    def work(row: ImportJob) -> list[str]:
        raise Refused("the weights file is gone")

    done = job_run(IMPORT_JOBS, job.pk, work)
    assert done is not None and done.status == "failed" and done.attempts == 1
    assert done.error == "the weights file is gone"


def test_retry_is_refused_while_running_or_once_done_and_sends_otherwise(
    sent: list[tuple[str, int]], django_capture_on_commit_callbacks: Any
) -> None:
    running, done, failed = _job(status="running"), _job(status="succeeded"), _job(status="failed")
    with pytest.raises(JobRefused, match="is running"):
        job_retry(IMPORT_JOBS, running)
    with pytest.raises(JobRefused, match="already succeeded"):
        job_retry(IMPORT_JOBS, done)
    with django_capture_on_commit_callbacks(execute=True):
        again = job_retry(IMPORT_JOBS, failed)
    assert again.status == "queued" and again.task_id != "t"
    assert sent == [("import", failed.pk)]


def test_the_reaper_requeues_a_silent_job_and_fails_one_out_of_attempts(
    settings: Any, sent: list[tuple[str, int]], django_capture_on_commit_callbacks: Any
) -> None:
    settings.IMPORT_MAX_ATTEMPTS = 2
    long_ago = timezone.now() - timedelta(hours=1)
    silent = _job(status="running", heartbeat=long_ago, attempts=1)
    spent = _job(status="running", heartbeat=long_ago, attempts=2)
    alive = _job(status="running", heartbeat=timezone.now(), attempts=1)
    unsent = _job(status="queued", error="not queued: broker unreachable (down)")
    with django_capture_on_commit_callbacks(execute=True):
        reaped = jobs_reap(IMPORT_JOBS)
    assert sorted(reaped) == sorted([silent.pk, unsent.pk])
    assert sorted(sent) == sorted([("import", silent.pk), ("import", unsent.pk)])
    rows = {row.pk: row for row in ImportJob.objects.all()}
    assert rows[silent.pk].status == "queued" and rows[silent.pk].task_id != "t"
    assert "worker stopped sending heartbeats" in rows[silent.pk].log
    assert rows[spent.pk].status == "failed" and rows[spent.pk].finished is not None
    assert rows[alive.pk].status == "running"


def test_one_periodic_task_reaps_every_kind(sent: list[tuple[str, int]]) -> None:
    _job(status="running", heartbeat=timezone.now() - timedelta(days=1), attempts=1)
    reaped = jobs_reap_all()
    assert set(reaped) == set(KINDS) and len(reaped["import"]) == 1
