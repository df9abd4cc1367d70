"""Bulk exports (issue 8): the files verify against their manifest, only public notes go in,
asking twice while one waits queues one job, and only staff may ask."""

import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from neurons.export import TABLES, export_request, export_run, exports_reap
from neurons.models import Export, Technique, Unit
from neurons.services import model_touch
from rendering.models import Connection, Dataset, LayerConnection, Render, UnitExamples

pytestmark = pytest.mark.django_db


@pytest.fixture
def content(inceptionv1: Any, unit: Any, make_note: Any, people: Any, media: Path) -> Any:
    """A render, a label, dataset examples, a connection, and notes of every visibility."""
    layer = unit.layer
    unit.curator_label = "curve detector"
    unit.save(update_fields=["curator_label"])
    Render.objects.create(
        unit=unit,
        layer=layer,
        technique=Technique.objects.get(slug="channel"),
        params={"steps": 2},
        params_hash="h" * 64,
        image="renders/ab/ab.png",
        thumbnail="thumbs/ab/ab.png",
        image_sha256="a" * 64,
        objective=1.5,
    )
    dataset = Dataset.objects.create(
        slug="pets",
        name="Pets",
        location="/data",
        image_count=2,
        manifest="m.jsonl",
        manifest_sha256="1" * 64,
    )
    entry = {"image": 1, "path": "cat.jpg", "value": 2.5, "y": 1, "x": 2, "box": [0, 0, 64, 64]}
    UnitExamples.objects.create(
        unit=unit,
        dataset=dataset,
        params_hash="e" * 64,
        top=[entry, {**entry, "image": 0, "path": "dog.jpg", "value": 1.0}],
        bottom=[{**entry, "value": -3.0}],
        crop_size=64,
        negative_source="output",
        sprite_top="s/top.jpg",
        sprite_bottom="s/bottom.jpg",
        stats={},
    )
    source = inceptionv1.layers.get(name="mixed4b")
    pair = LayerConnection.objects.create(
        source=source, target=layer, method="expanded", kernel_size=1, matrix="weights/m.npy"
    )
    Connection.objects.create(
        unit=unit,
        direction="in",
        pair=pair,
        other_indices=[3, 1],
        strengths=[0.5, -0.25],
        kernels=b"\x00" * 4,
    )
    make_note(title="Public curves")
    make_note(title="Institution curves", visibility="institution")
    make_note(title="Private curves", visibility="private")
    make_note(title="Draft curves", publish=False)
    hidden = make_note(title="Hidden curves")
    hidden.hidden = True
    hidden.save(update_fields=["hidden"])
    return inceptionv1


def _download(client: Client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, url
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


def _exported(model: Any) -> Export:
    export = export_run(export_id=export_request(model=model, enqueue=False).pk)
    assert export is not None and export.status == Export.Status.SUCCEEDED, export and export.error
    return export


def test_export_downloads_and_verifies_against_its_manifest(content: Any) -> None:
    export = _exported(content)
    anon = APIClient()
    (listed,) = anon.get(f"/api/v1/models/{content}/exports/").json()["results"]
    assert listed["id"] == export.pk and listed["status"] == "succeeded" and listed["current"]
    manifest_bytes = _download(anon, listed["manifest_url"])
    assert hashlib.sha256(manifest_bytes).hexdigest() == listed["manifest_sha256"]
    manifest = json.loads(manifest_bytes)
    assert manifest["schema_version"] == 1
    assert manifest["model"] == f"{content.slug}@{content.version}"
    assert manifest["weights_sha256"] == content.weights_sha256
    assert manifest["formats"] == ["jsonl", "parquet"]
    assert {(f["table"], f["format"]) for f in manifest["files"]} == {
        (t, f) for t in TABLES for f in ("jsonl", "parquet")
    }
    urls = {f["name"]: f["url"] for f in listed["files"]}
    tables: dict[str, list[dict[str, Any]]] = {}
    for file in manifest["files"]:
        data = _download(anon, urls[file["name"]])
        assert len(data) == file["bytes"]
        assert hashlib.sha256(data).hexdigest() == file["sha256"]
        if file["format"] == "jsonl":
            rows = [json.loads(line) for line in data.decode().splitlines()]
            tables[file["table"]] = rows
        else:
            rows = pq.read_table(io.BytesIO(data)).to_pylist()
        assert len(rows) == file["rows"] == manifest["tables"][file["table"]]["rows"]
        assert list(rows[0]) == [name for name, _ in manifest["tables"][file["table"]]["columns"]]

    assert len(tables["layers"]) == content.layers.count()
    assert len(tables["units"]) == Unit.objects.filter(layer__model=content).count() == 5804 + 1008
    (labelled,) = [u for u in tables["units"] if u["curator_label"]]
    assert labelled["key"] == f"{content}/mixed4c/447"
    assert labelled["curator_label"] == "curve detector"
    (render,) = tables["renders"]
    assert render["technique"] == "channel" and render["index"] == 447
    assert render["image_url"] == "/media/renders/ab/ab.png" and render["objective"] == 1.5
    assert [(e["which"], e["rank"], e["path"], e["value"]) for e in tables["dataset_examples"]] == [
        ("top", 0, "cat.jpg", 2.5),
        ("top", 1, "dog.jpg", 1.0),
        ("bottom", 0, "cat.jpg", -3.0),
    ]
    assert tables["dataset_examples"][0]["dataset_manifest_sha256"] == "1" * 64
    (connection,) = tables["connections"]
    assert connection["other_layer"] == "mixed4b"
    assert connection["other_indices"] == [3, 1] and connection["strengths"] == [0.5, -0.25]
    (note,) = tables["notes"]
    assert note["title"] == "Public curves" and note["author"] == "Alice A."
    assert [u["key"] for u in note["units"]] == [f"{content}/mixed4c/447", f"{content}/mixed4c/448"]
    assert note["edges"][0]["kind"] == "excitatory"


def test_private_institution_draft_and_hidden_notes_are_not_exported(content: Any) -> None:
    from django.core.files.storage import default_storage

    export = _exported(content)
    everything = b"".join(default_storage.open(f["path"]).read() for f in export.files)
    assert b"Public curves" in everything
    for title in (b"Institution curves", b"Private curves", b"Draft curves", b"Hidden curves"):
        assert title not in everything


def test_asking_again_while_one_is_queued_does_not_make_a_second_job(
    inceptionv1: Any, api: dict[str, APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    url = f"/api/v1/models/{inceptionv1}/exports/"
    with django_capture_on_commit_callbacks() as sent:
        first = api["staff"].post(url)
        second = api["staff"].post(url)
    assert first.status_code == second.status_code == 202
    assert first.json()["jobs"][0]["id"] == second.json()["jobs"][0]["id"]
    assert first["Location"].endswith(f"/api/v1/exports/{first.json()['jobs'][0]['id']}/")
    assert Export.objects.filter(model=inceptionv1).count() == 1
    assert len(sent) == 1  # one task sent, on commit
    # Once a worker has claimed it, a new request queues a new export (it may miss changes).
    Export.objects.filter(model=inceptionv1).update(status=Export.Status.RUNNING)
    third = api["staff"].post(url)
    assert (
        third.status_code == 202 and third.json()["jobs"][0]["id"] != first.json()["jobs"][0]["id"]
    )
    assert Export.objects.filter(model=inceptionv1).count() == 2


def test_only_staff_may_ask_for_an_export(
    inceptionv1: Any, api: dict[str, APIClient], token_client: Any
) -> None:
    url = f"/api/v1/models/{inceptionv1}/exports/"
    assert api["alice"].post(url).status_code == 403
    assert api["bruno"].post(url).status_code == 403  # a curator is not staff
    assert api["anon"].post(url).status_code == 401
    refused = token_client("staff", scope="read").post(url)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert not Export.objects.exists()
    assert api["anon"].get(url).status_code == 200


def test_an_export_is_current_until_the_model_changes(content: Any) -> None:
    export = _exported(content)
    assert APIClient().get(f"/api/v1/exports/{export.pk}/").json()["current"] is True
    model_touch(content.pk)
    assert APIClient().get(f"/api/v1/exports/{export.pk}/").json()["current"] is False


def test_the_model_page_lists_the_latest_exports_files(content: Any) -> None:
    page = Client().get(f"/models/{content}/")
    assert b"Downloads" not in page.content
    export = _exported(content)
    page = Client().get(f"/models/{content}/")  # the export changed the page's content version
    assert b"<h2>Downloads</h2>" in page.content
    assert export.manifest.url.encode() in page.content
    for file in export.downloads():
        assert f'download="{file["name"]}"'.encode() in page.content


def test_a_failed_export_is_retried_then_stays_failed(
    inceptionv1: Any, monkeypatch: pytest.MonkeyPatch, settings: Any, media: Path
) -> None:
    settings.EXPORT_MAX_ATTEMPTS = 2  # exports have their own settings, not RENDER_*

    def broken(data: bytes, **kwargs: Any) -> tuple[str, str]:
        raise OSError("bucket unreachable")

    monkeypatch.setattr("neurons.export.store_content", broken)
    export = export_request(model=inceptionv1, enqueue=False)
    first = export_run(export_id=export.pk)
    assert first is not None and first.status == Export.Status.QUEUED and first.attempts == 1
    assert "bucket unreachable" in first.log
    second = export_run(export_id=export.pk)
    assert second is not None and second.status == Export.Status.FAILED
    assert "OSError: bucket unreachable" in second.error
    assert export_run(export_id=export.pk) is None  # nothing left to claim


def test_a_stale_running_export_is_requeued(inceptionv1: Any) -> None:
    export = export_request(model=inceptionv1, enqueue=False)
    long_ago = timezone.now() - timedelta(hours=1)
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.RUNNING, heartbeat=long_ago, attempts=1
    )
    assert exports_reap() == [export.pk]
    export.refresh_from_db()
    assert export.status == Export.Status.QUEUED and "heartbeats" in export.error


def test_the_command_exports_here(inceptionv1: Any, media: Path) -> None:
    out = io.StringIO()
    call_command("export_model", f"{inceptionv1}", "--here", stdout=out)
    export = Export.objects.get(model=inceptionv1)
    assert export.status == Export.Status.SUCCEEDED
    assert "units.parquet" in out.getvalue() and export.manifest_sha256 in out.getvalue()


def test_an_export_the_broker_refused_is_sent_again_on_the_next_request(
    inceptionv1: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from microscope_site.celery import app

    sent: list[str] = []

    def broker_down(*args: Any, task_id: str, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(app, "send_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        export = export_request(model=inceptionv1)
    export.refresh_from_db()
    assert export.error == "not queued: broker unreachable (broker down)"
    monkeypatch.setattr(app, "send_task", lambda *a, task_id, **k: sent.append(task_id))
    with django_capture_on_commit_callbacks(execute=True):
        again = export_request(model=inceptionv1)
    assert again.pk == export.pk and sent == [export.task_id]
    export.refresh_from_db()
    assert export.error == ""
