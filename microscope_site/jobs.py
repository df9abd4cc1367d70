"""One job lifecycle for every kind of background work: imports, exports and render jobs (the
dataset passes, tuning curves and connections run as render jobs).

A job row is written first and its task is sent, by name, when the row commits. A worker claims
it with a conditional UPDATE (queued → running), so two workers never run one job, and beats
its heartbeat while it works. It ends succeeded, or failed: queued again until the kind's
attempts are used, unless the failure is a refusal (nothing a retry changes). A reaper requeues
running jobs whose worker stopped beating and sends again queued jobs whose task never reached
the broker. Each app declares its kinds (`JobKind`) next to its models; this module knows none.
"""

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from microscope_site.broker import NOT_QUEUED, task_send
from microscope_site.errors import Refused
from microscope_site.progress import Progress, ignore_progress

logger = logging.getLogger(__name__)


class Job(models.Model):
    """The fields every job row shares; a kind adds what it works on."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "heartbeat"])]

    @property
    def not_queued(self) -> bool:
        """The row is saved but its task never reached the broker; the reaper sends it later."""
        return self.status == self.Status.QUEUED and self.error.startswith(NOT_QUEUED)


J = TypeVar("J", bound=Job)


@dataclass(frozen=True)
class JobKind:
    """How one kind of job runs: its row, its task (by name), its queue and its settings."""

    name: str  # "render", "import", "export": the settings' prefix, upper-cased
    model: type[Job]
    task: str  # the Celery task's dotted name
    queue: str
    # Called after the row changed state (e.g. to mark a model's cached pages stale).
    touched: Callable[[Any], None] = lambda job: None

    @property
    def max_attempts(self) -> int:
        return int(getattr(settings, f"{self.name.upper()}_MAX_ATTEMPTS"))

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=int(getattr(settings, f"{self.name.upper()}_STALE_AFTER_S")))


KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> JobKind:
    KINDS[kind.name] = kind
    return kind


class JobRefused(Refused):
    """A job that cannot be retried as asked; the message says why."""


def _stamp(message: str) -> str:
    return f"[{timezone.now():%H:%M:%S}] {message}\n"


# --- sending ------------------------------------------------------------------------------


def job_enqueue(kind: JobKind, job: Job) -> None:
    """Send the job's task once the current transaction commits (at once outside one)."""
    transaction.on_commit(partial(job_send, kind, job.pk, job))


def job_send(kind: JobKind, job_id: int, job: Job | None = None) -> None:
    """Send a queued job's task. A broker that is down leaves the row queued with a
    "not queued: broker unreachable (…)" note (also on `job`, when given) for the reaper."""
    rows = kind.model.objects.filter(pk=job_id)  # type: ignore[attr-defined]
    row = rows.values("task_id", "status").first()
    if row is None or row["status"] != Job.Status.QUEUED:
        return
    note = task_send(kind.task, args=[job_id], task_id=row["task_id"], queue=kind.queue)
    if note:
        line = _stamp(f"{note}; the reaper sends it again")
        rows.update(error=note, log=Concat(F("log"), Value(line)))
    else:
        rows.filter(error__startswith=NOT_QUEUED).update(error="")
    if job is not None:
        job.error = note if note else ("" if job.error.startswith(NOT_QUEUED) else job.error)


# --- running ------------------------------------------------------------------------------


def job_claim(kind: JobKind, job_id: int, related: Sequence[str] = ()) -> Job | None:
    """Take a queued job for this worker; None when another worker has it or it is not queued."""
    now = timezone.now()
    claimed = kind.model.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(  # type: ignore[attr-defined]
        status=Job.Status.RUNNING,
        started=now,
        heartbeat=now,
        finished=None,
        attempts=F("attempts") + 1,
    )
    if claimed != 1:
        return None
    return kind.model.objects.select_related(*related).get(pk=job_id)  # type: ignore[attr-defined,no-any-return]


@dataclass
class Heartbeat:
    """Progress and heartbeat written to a running job's row at most every `every` seconds
    (always at the end); `log=True` also appends each message to the row's log."""

    job: Job
    report: Progress = ignore_progress
    every: float = 2.0
    log: bool = False
    last: float = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        self.report(fraction, message)
        if self.log:
            self.job.log += _stamp(message)
        if now - self.last < self.every and fraction < 1.0 and not self.log:
            return
        self.last = now
        self.job.progress = fraction
        fields: dict[str, Any] = {"progress": fraction, "heartbeat": timezone.now()}
        if self.log:
            fields["log"] = self.job.log
        type(self.job).objects.filter(pk=self.job.pk).update(**fields)  # type: ignore[attr-defined]


def job_run(
    kind: JobKind,
    job_id: int,
    work: Callable[[Any], Sequence[str]],
    *,
    related: Sequence[str] = (),
    succeeded: Callable[[Any], Sequence[str]] | None = None,
) -> Job | None:
    """Claim the job and run `work(job)`; None when another worker has it.

    `work` returns the names of the fields it set on the job; they are saved with the status.
    `succeeded(job)`, when given, runs in the transaction that marks the job succeeded and
    returns more such names. A failure queues the job again until the kind's attempts are used,
    unless it is a `Refused` (a retry would be refused the same way): then it fails at once.
    """
    job = job_claim(kind, job_id, related)
    if job is None:
        return None
    try:
        fields = list(work(job))
    except Exception as error:
        logger.exception("%s job %s failed", kind.name, job.pk)
        job_fail(kind, job, error)
        return job
    with transaction.atomic():
        if succeeded is not None:
            fields += succeeded(job)
        job.status = Job.Status.SUCCEEDED
        job.progress = 1.0
        job.error = ""
        job.finished = timezone.now()
        job.save(update_fields=["status", "progress", "error", "finished", "log", *fields])
    kind.touched(job)
    return job


def job_fail(kind: JobKind, job: Job, error: BaseException) -> None:
    """End an attempt that raised `error`: queued again while attempts are left (and it was not
    a refusal), failed otherwise; the row keeps the traceback and a line in its log."""
    retry = job.attempts < kind.max_attempts and not isinstance(error, Refused)
    job.error = (
        str(error) if isinstance(error, Refused) else traceback.format_exc()[-4000:]
    ) or type(error).__name__
    job.log += _stamp(f"attempt {job.attempts} failed: {error}")
    fields = ["status", "error", "log", "finished"]
    if retry:
        job.status = Job.Status.QUEUED
        job.finished = None
        try:
            with transaction.atomic():
                job.save(update_fields=fields)
        except IntegrityError:  # an equal job is queued meanwhile: it does the work
            job.log += _stamp("an equal job is queued; this one stops here")
        else:
            kind.touched(job)
            return
    job.status = Job.Status.FAILED
    job.finished = timezone.now()
    job.save(update_fields=fields)
    kind.touched(job)


# --- retrying and reaping -------------------------------------------------------------------


def job_retry(kind: JobKind, job: J) -> J:
    """Queue a failed (or never-sent) job again under a new task id; sent on commit."""
    if job.status == Job.Status.RUNNING:
        raise JobRefused(f"{job} is running; wait for it to finish or for the reaper")
    if job.status == Job.Status.SUCCEEDED:
        raise JobRefused(f"{job} already succeeded")
    job.status = Job.Status.QUEUED
    job.error = ""
    job.finished = None
    job.task_id = str(uuid.uuid4())
    try:
        with transaction.atomic():
            job.save(update_fields=["status", "error", "finished", "task_id"])
    except IntegrityError:
        raise JobRefused(f"an equal job is already queued or running beside {job}") from None
    job_enqueue(kind, job)
    return job


def jobs_reap(kind: JobKind, *, stale_after: timedelta | None = None) -> list[int]:
    """Requeue running jobs whose heartbeat went stale (their worker died), and send again the
    queued jobs whose task never reached the broker; returns the ids of both. A stale job that
    has used its attempts, or that an equal queued job replaces, fails instead."""
    manager = kind.model.objects  # type: ignore[attr-defined]
    limit = timezone.now() - (stale_after if stale_after is not None else kind.stale_after)
    stale = manager.filter(
        Q(heartbeat__lt=limit) | Q(heartbeat__isnull=True), status=Job.Status.RUNNING
    )
    requeued = []
    for job in stale:
        message = f"worker stopped sending heartbeats (last {job.heartbeat})"
        running = manager.filter(pk=job.pk, status=Job.Status.RUNNING)
        give_up = job.attempts >= kind.max_attempts
        if not give_up:
            try:
                with transaction.atomic():
                    changed = running.update(
                        status=Job.Status.QUEUED,
                        task_id=str(uuid.uuid4()),
                        error=message,
                        log=Concat(F("log"), Value(_stamp(f"{message}; queued again"))),
                    )
            except IntegrityError:  # an equal job is queued: it does the work
                give_up = True
            else:
                if changed:
                    requeued.append(job.pk)
                    transaction.on_commit(partial(job_send, kind, job.pk))
        if give_up:
            running.update(
                status=Job.Status.FAILED,
                error=message,
                finished=timezone.now(),
                log=Concat(F("log"), Value(_stamp(f"{message}; failed"))),
            )
        kind.touched(job)
    unsent = manager.filter(status=Job.Status.QUEUED, error__startswith=NOT_QUEUED)
    for pk in unsent.values_list("pk", flat=True):
        requeued.append(pk)
        transaction.on_commit(partial(job_send, kind, pk))
    return requeued


def jobs_reap_all() -> dict[str, list[int]]:
    """Reap every registered kind (the periodic task `microscope_site.tasks.reap_stale_jobs`)."""
    return {name: jobs_reap(kind) for name, kind in KINDS.items()}
