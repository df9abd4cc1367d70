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
            render_jobs_create(layer=layer, technique=layer.grid_techniques[0])


@shared_task(bind=True, acks_late=True, max_retries=None)
def export_task(self, export_id: int) -> None:  # type: ignore[no-untyped-def]
    from neurons.export import export_run
    from neurons.models import Export

    export = export_run(export_id=export_id)
    if export is not None and export.status == Export.Status.QUEUED:
        # A failure the row requeued (storage, database …): its attempt count decides when to stop.
        raise self.retry(
            countdown=min(60 * export.attempts, 600), max_retries=settings.RENDER_MAX_ATTEMPTS
        )


@shared_task
def reap_stale_exports() -> list[int]:
    from neurons.export import exports_reap

    return exports_reap()


@shared_task
def purge_idempotency_keys() -> int:
    from neurons.idempotency import idempotency_keys_purge

    return idempotency_keys_purge()
