"""The catalogue's job kinds: imports and exports (the lifecycle is `microscope_site.jobs`)."""

from microscope_site.jobs import JobKind, job_kind_register
from neurons.models import Export, ImportJob

IMPORT_JOBS = job_kind_register(
    JobKind(name="import", model=ImportJob, task="neurons.tasks.import_model_task", queue="default")
)
EXPORT_JOBS = job_kind_register(
    JobKind(name="export", model=Export, task="neurons.tasks.export_task", queue="default")
)
