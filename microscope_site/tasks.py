from celery import Task, shared_task

from microscope_site.jobs import Job, JobKind, jobs_reap_all


@shared_task
def reap_stale_jobs() -> dict[str, list[int]]:
    """Beat sends this every minute: every job kind's stale jobs requeued, unsent ones resent."""
    return jobs_reap_all()


def job_task_finish(task: Task, kind: JobKind, job: Job | None) -> None:
    """After a job's task ran it: a job that failed and was queued again (storage, database,
    CUDA OOM …) is retried by Celery after a back-off; the attempt count on the row, not
    Celery's, decides when to give up."""
    if job is not None and job.status == Job.Status.QUEUED:
        raise task.retry(countdown=min(60 * job.attempts, 600), max_retries=kind.max_attempts)
