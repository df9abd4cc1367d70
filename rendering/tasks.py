import logging
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerError

from rendering.models import RenderJob
from rendering.services import NOT_QUEUED, render_job_run, render_jobs_reap

logger = logging.getLogger(__name__)

__all__ = ["BROKER_UNREACHABLE", "NOT_QUEUED", "task_send"]

BROKER_UNREACHABLE = f"{NOT_QUEUED} broker unreachable"

# Tasks are sent after the job row is committed, often inside a web request: a dead or hung
# broker must answer within about a second, not after kombu's default retries (4 s connect
# timeout, no read timeout at all on Redis: a broker that accepts and never answers hangs the
# request for minutes).
PUBLISH_TIMEOUT_S = 1.0
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.25,
    "interval_max": 0.25,
}


def _publish_transport_options(broker_url: str) -> dict[str, float]:
    scheme = broker_url.partition("://")[0]
    if scheme in {"redis", "rediss", "sentinel"}:
        return {"socket_timeout": PUBLISH_TIMEOUT_S, "socket_connect_timeout": PUBLISH_TIMEOUT_S}
    if scheme in {"amqp", "amqps", "pyamqp"}:
        return {"read_timeout": PUBLISH_TIMEOUT_S, "write_timeout": PUBLISH_TIMEOUT_S}
    return {}  # the filesystem transport of the embedded default writes a file


def task_send(task: Task, *, args: list[Any], task_id: str, queue: str | None = None) -> str:
    """Publish one task; "" once the broker has it, else the note for the job row.

    Never raises: the caller's row is committed already, and a request must not fail because
    the broker is down. The note starts with `NOT_QUEUED` ("not queued: broker unreachable
    (…)"); `render_job_retry`, the admin's retry action and the reaper send such jobs again.
    """
    app = task.app
    options: dict[str, Any] = {"queue": queue} if queue else {}
    try:
        with app.connection_for_write(
            connect_timeout=PUBLISH_TIMEOUT_S,
            transport_options=_publish_transport_options(str(app.conf.broker_url or "")),
        ) as connection:
            task.apply_async(
                args=args,
                task_id=task_id,
                connection=connection,
                retry_policy=PUBLISH_RETRY_POLICY,
                **options,
            )
    except (BrokerError, OSError) as error:
        logger.warning("%s not queued, broker unreachable: %s", task.name, error)
        return f"{BROKER_UNREACHABLE} ({error})"
    except Exception as error:
        logger.exception("%s not queued", task.name)
        return f"{NOT_QUEUED} {type(error).__name__}: {error}"
    return ""


@shared_task(bind=True, acks_late=True, max_retries=None)
def render_job_task(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    job = render_job_run(job_id=job_id)
    if job is not None and job.status == RenderJob.Status.QUEUED:
        # An expected failure (storage, database, CUDA OOM …): the row is queued again; the
        # attempt count on the row, not Celery's, decides when to give up.
        raise self.retry(
            countdown=min(60 * job.attempts, 600), max_retries=settings.RENDER_MAX_ATTEMPTS
        )


@shared_task
def reap_stale_render_jobs() -> list[int]:
    return render_jobs_reap()
