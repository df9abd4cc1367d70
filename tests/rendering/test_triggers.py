import pytest
from django.test import Client

from neurons.models import Layer
from neurons.services import import_job_create
from neurons.tasks import import_model_task
from rendering.models import RenderJob

pytestmark = pytest.mark.django_db


def test_an_import_can_queue_renders_of_chosen_layers(tinynet, settings) -> None:
    settings.RENDER_AFTER_IMPORT = ["conv2"]
    job = import_job_create(registry_key="tinynet", weights_source="random", enqueue=False)
    import_model_task(job.pk)  # the task body, run here
    (render_job,) = RenderJob.objects.all()
    assert render_job.layer.name == "conv2" and render_job.layer.model.slug == "tinynet"
    assert (render_job.unit_start, render_job.unit_stop) == (0, 16)


def test_no_renders_are_queued_after_import_by_default(tinynet) -> None:
    job = import_job_create(registry_key="tinynet", weights_source="random", enqueue=False)
    import_model_task(job.pk)
    assert not RenderJob.objects.exists()


def test_staff_queue_renders_of_layers_from_the_admin(staff_client: Client, inceptionv1) -> None:
    layers = Layer.objects.filter(model=inceptionv1, name__in=["conv2d0", "conv2d1"])
    ids = [str(pk) for pk in layers.values_list("pk", flat=True)]
    form = staff_client.post(
        "/admin/neurons/layer/", {"action": "render_layers", "_selected_action": ids}
    )
    assert form.status_code == 200 and b"Queue renders" in form.content
    done = staff_client.post(
        "/admin/neurons/layer/",
        {"action": "render_layers", "_selected_action": ids, "apply": "1",
         "technique": "channel", "steps": "32", "size": "64", "seed": "0"},
    )  # fmt: skip
    assert done.status_code == 302
    jobs = RenderJob.objects.order_by("layer__order", "unit_start")
    assert [(j.layer.name, j.unit_start, j.unit_stop) for j in jobs] == [
        ("conv2d0", 0, 64),
        ("conv2d1", 0, 64),
    ]
    assert all(j.params["steps"] == 32 and j.params["size"] == 64 for j in jobs)
