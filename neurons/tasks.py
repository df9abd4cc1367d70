from celery import shared_task

from neurons.services import import_job_run


@shared_task(acks_late=True)
def import_model_task(job_id: int) -> None:
    import_job_run(job_id=job_id)
