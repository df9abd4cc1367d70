from celery import shared_task
from django.conf import settings

from neurons.models import ImportJob
from neurons.services import import_job_run


@shared_task(acks_late=True)
def import_model_task(job_id: int) -> None:
    job = import_job_run(job_id=job_id)
    if job is None or job.status != ImportJob.Status.SUCCEEDED or not settings.RENDER_AFTER_IMPORT:
        return
    from rendering.services import render_jobs_create

    assert job.result is not None
    wanted = settings.RENDER_AFTER_IMPORT
    for layer in job.result.layers.all():
        if "all" in wanted or layer.name in wanted:
            render_jobs_create(layer=layer, technique="channel")
