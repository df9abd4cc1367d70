"""An import enqueued through the service is run by a real Celery worker process.

On the PostgreSQL run the broker is Redis; on the SQLite run it is the embedded default
(kombu's filesystem transport), so both stacks are exercised end to end.
"""

from pathlib import Path

import pytest
from django.db import transaction

from neurons.models import ImportJob, NetworkModel, Unit
from neurons.services import import_job_create
from tests.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_real_worker_imports_an_enqueued_model(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with celery_worker(log):
        with transaction.atomic():
            job = import_job_create(registry_key="alexnet", weights_source="random", seed=11)
        wait_for(
            lambda: ImportJob.objects.get(pk=job.pk).status in ("succeeded", "failed"), 240, log
        )
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    model = NetworkModel.objects.get(pk=job.result_id)
    assert [la.name for la in model.layers.order_by("order")][:2] == ["conv1", "conv2"]
    assert model.layers.get(name="conv1").num_units == 64
    assert Unit.objects.filter(layer__model=model).count() == 10344
    assert job.attempts == 1 and "imported alexnet@" in job.log
