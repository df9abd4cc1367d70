from celery import shared_task
from django.conf import settings

from rendering.models import RenderJob
from rendering.services import render_job_run, render_jobs_reap


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
