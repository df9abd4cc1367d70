from celery import shared_task

from microscope_site.tasks import job_task_finish
from neurons.export import export_run
from neurons.jobs import EXPORT_JOBS, IMPORT_JOBS
from neurons.models import ImportJob, NetworkModel
from neurons.services import import_job_run
from neurons.signals import model_imported


@shared_task(bind=True, acks_late=True, max_retries=None)
def import_model_task(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    job = import_job_run(job_id=job_id)
    if job is not None and job.status == ImportJob.Status.SUCCEEDED and job.result is not None:
        # Whatever builds on a new model (e.g. rendering's RENDER_AFTER_IMPORT) listens here.
        model_imported.send(sender=NetworkModel, model=job.result)
    job_task_finish(self, IMPORT_JOBS, job)


@shared_task(bind=True, acks_late=True, max_retries=None)
def export_task(self, export_id: int) -> None:  # type: ignore[no-untyped-def]
    job_task_finish(self, EXPORT_JOBS, export_run(export_id=export_id))


@shared_task
def purge_idempotency_keys() -> int:
    from neurons.idempotency import idempotency_keys_purge

    return idempotency_keys_purge()
