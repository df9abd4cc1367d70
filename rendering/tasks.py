from celery import shared_task

from microscope_site.tasks import job_task_finish
from rendering.jobs import RENDER_JOBS
from rendering.services import render_job_run


@shared_task(bind=True, acks_late=True, max_retries=None)
def render_job_task(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    job_task_finish(self, RENDER_JOBS, render_job_run(job_id=job_id))
