"""Every place a user-supplied name reaches the filesystem or the storage refuses to leave its
root: the media view, dataset locations, and the weights path of the import form.

Exports and renders take no name from anyone (their files are named by content hash under
`exports/`, `renders/`, …), so there is nothing to traverse there; the URL fuzzer
(test_url_fuzz.py) sends traversal strings to their ids all the same.
"""

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db

TRAVERSALS = [
    "../../../../../../etc/passwd",
    "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "....//....//....//etc/passwd",
    "/etc/passwd",
    "//etc/passwd",
    "renders/../../../../../../etc/passwd",
    "renders/%00../../etc/passwd",
    "renders/ok.png%00.txt",
    "..\\..\\..\\etc\\passwd",
]


def test_media_never_serves_a_file_outside_its_folder(client: Any, media: Path) -> None:
    (media / "renders").mkdir(parents=True)
    (media / "renders" / "ok.png").write_bytes(b"\x89PNG fine")
    (media.parent / "secret.txt").write_text("root:x:0:0:secret")
    assert client.get("/media/renders/ok.png").status_code == 200  # what it does serve
    for path in [*TRAVERSALS, "../secret.txt", "%2e%2e/secret.txt", "renders/../../secret.txt"]:
        response = client.get(f"/media/{path}")
        assert response.status_code in (400, 404), (path, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"root:x" not in body, path


@pytest.mark.parametrize(
    "location",
    [
        "storage:../../etc",
        "storage:/etc",
        "storage:datasets/../../../etc",
        "storage:data\x00sets",
        "relative/../../etc",
        "/tmp/no\x00such",
    ],
)
def test_a_dataset_location_outside_its_root_is_refused_with_a_clear_message(
    location: str, media: Path
) -> None:
    from rendering.models import Dataset

    media.mkdir(parents=True, exist_ok=True)
    with pytest.raises(CommandError) as refused:
        call_command("dataset_register", "evil", location)
    assert "Traceback" not in str(refused.value)
    assert not Dataset.objects.exists()


def test_a_dataset_folder_cannot_reach_outside_itself_through_a_link(
    tmp_path: Path, media: Path
) -> None:
    """A symbolic link in a dataset folder (an unpacked archive can hold one) must not pull a
    file from elsewhere into the dataset, where its pixels would be shown as examples."""
    from PIL import Image

    from rendering.datasets import dataset_manifest

    folder = tmp_path / "pets"
    folder.mkdir()
    Image.new("RGB", (8, 8), "red").save(folder / "cat.png")
    private = tmp_path / "private"
    private.mkdir()
    Image.new("RGB", (8, 8), "blue").save(private / "face.png")
    (folder / "face.png").symlink_to(private / "face.png")
    (folder / "elsewhere").symlink_to(private, target_is_directory=True)
    call_command("dataset_register", "pets", str(folder))
    from rendering.models import Dataset

    paths = [entry["path"] for entry in dataset_manifest(Dataset.objects.get(slug="pets"))]
    assert paths == ["cat.png"]


def _import_with_weights(path: str) -> Any:
    from neurons.models import ImportJob
    from neurons.services import import_job_create, import_job_run

    job = import_job_create(
        registry_key="tinynet", weights_source="file", weights_path=path, enqueue=False
    )
    done = import_job_run(job_id=job.pk)
    assert done is not None
    return ImportJob.objects.get(pk=done.pk)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "is not a readable PyTorch state dict"),
        ("../../../../../../etc/passwd", "is not a readable PyTorch state dict"),
        ("/etc", "does not exist"),
        ("/no/such/weights.pt", "does not exist"),
    ],
)
def test_a_weights_path_that_is_no_state_dict_fails_the_import_clearly(
    tinynet: Any, path: str, message: str
) -> None:
    from neurons.models import NetworkModel

    job = _import_with_weights(path)
    assert job.status == "failed"
    assert message in job.error and "Traceback" not in job.error
    assert not NetworkModel.objects.filter(slug="tinynet").exists()


class _Payload:
    """A pickle that would create a file if it were ever unpickled with full pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_a_weights_file_holding_code_is_refused_without_running_it(
    tinynet: Any, tmp_path: Path
) -> None:
    from neurons.models import NetworkModel

    marker = tmp_path / "code-ran"
    weights = tmp_path / "weights.pt"
    torch.save({"conv1.weight": _Payload(marker)}, weights, pickle_module=pickle)
    job = _import_with_weights(str(weights))
    assert job.status == "failed" and "is not a readable PyTorch state dict" in job.error
    assert not marker.exists()
    assert not NetworkModel.objects.filter(slug="tinynet").exists()


def test_the_import_form_takes_a_weights_path_from_staff_only(login: Any) -> None:
    from neurons.models import ImportJob

    form = {"registry_key": "alexnet", "weights_source": "file", "seed": "0"}
    form["weights_path"] = "/etc/passwd"
    for who in ("anon", "alice"):
        response = login(who).post("/admin/neurons/importjob/import/", form)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not ImportJob.objects.exists()
    # Staff cannot smuggle a NUL byte into the path either (it would cut the name short).
    form["weights_path"] = "/etc/passwd\x00.pt"
    response = login("staff").post("/admin/neurons/importjob/import/", form)
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert not ImportJob.objects.exists()
