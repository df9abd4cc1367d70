import pytest
from django.test import Client

from neurons.models import ImportJob
from neurons.services import import_job_run

pytestmark = pytest.mark.django_db


def test_staff_import_a_model_from_the_admin_and_see_the_job(staff_client: Client, tinynet) -> None:
    form = staff_client.get("/admin/neurons/importjob/import/")
    assert form.status_code == 200 and b"tinynet" in form.content
    fields = {
        "registry_key": "tinynet",
        "weights_source": "random",
        "seed": "7",
        "weights_path": "",
    }
    confirm = staff_client.post("/admin/neurons/importjob/import/", fields)
    assert (
        confirm.status_code == 200
        and "Random initialization with seed 7" in confirm.content.decode()
    )
    assert not ImportJob.objects.exists()
    response = staff_client.post("/admin/neurons/importjob/import/", {**fields, "confirm": "1"})
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/neurons/importjob/{job.pk}/change/"
    assert (job.registry_key, job.weights_source, job.seed, job.status) == (
        "tinynet",
        "random",
        7,
        "queued",
    )
    import_job_run(job_id=job.pk)  # what the worker does (a real worker runs it in test_worker)
    page = staff_client.get(f"/admin/neurons/importjob/{job.pk}/change/").content.decode()
    assert "succeeded" in page and "imported tinynet@" in page


def test_the_import_form_refuses_a_file_source_without_a_path(staff_client: Client) -> None:
    response = staff_client.post(
        "/admin/neurons/importjob/import/",
        {"registry_key": "alexnet", "weights_source": "file", "seed": "0", "weights_path": ""},
    )
    assert response.status_code == 200
    assert b"Give the path of a state-dict file" in response.content
    assert not ImportJob.objects.exists()


def test_the_import_form_is_for_staff_only(client: Client) -> None:
    response = client.get("/admin/neurons/importjob/import/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_failed_jobs_can_be_retried_from_the_admin(staff_client: Client, tinynet) -> None:
    job = ImportJob.objects.create(
        registry_key="tinynet", weights_source="file", weights_path="/missing.pt", status="failed"
    )
    staff_client.post(
        "/admin/neurons/importjob/",
        {"action": "retry", "_selected_action": [job.pk]},
    )
    job.refresh_from_db()
    assert job.status == "queued" and job.error == ""


def test_the_import_form_starts_empty_and_a_download_needs_a_confirmation(
    staff_client: Client,
) -> None:
    import re

    page = staff_client.get("/admin/neurons/importjob/import/").content.decode()
    for name in ("registry_key", "weights_source"):
        select = page.split(f'name="{name}"')[1].split("</select>")[0]
        selected = re.findall(r'<option value="([^"]*)"[^>]*selected', select)
        assert selected == [""], (name, selected)
    nothing = staff_client.post("/admin/neurons/importjob/import/", {"seed": "0"})
    assert nothing.status_code == 200 and "This field is required." in nothing.content.decode()
    fields = {"registry_key": "alexnet", "weights_source": "pretrained", "seed": "0"}
    confirm = staff_client.post("/admin/neurons/importjob/import/", fields).content.decode()
    assert "downloads the published weights from" in confirm
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in confirm
    assert (
        'name="confirm"' in confirm
        and 'type="hidden" name="registry_key" value="alexnet"' in confirm
    )
    assert not ImportJob.objects.exists()
    done = staff_client.post("/admin/neurons/importjob/import/", {**fields, "confirm": "1"})
    assert done.status_code == 302
    assert ImportJob.objects.get().weights_source == "pretrained"
