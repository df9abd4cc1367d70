"""Render jobs' kind: renders, and the connections, dataset examples and tuning curves that run
as render jobs (the lifecycle is `microscope_site.jobs`)."""

from typing import Any

from microscope_site.jobs import JobKind, job_kind_register
from neurons.services import model_touch
from rendering.models import RenderJob


def _touched(job: Any) -> None:
    model_touch(job.layer.model_id)  # unit pages say whether a render is on its way


RENDER_JOBS = job_kind_register(
    JobKind(
        name="render",
        model=RenderJob,
        task="rendering.tasks.render_job_task",
        queue="gpu",
        touched=_touched,
    )
)
