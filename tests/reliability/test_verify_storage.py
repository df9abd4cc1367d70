"""`verify_storage` checks every row's files against the storage, and repairs what it can."""

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from neurons.export import export_request, export_run
from neurons.models import Export, NetworkModel
from neurons.services import model_import
from rendering.connections import connection_jobs_create
from rendering.datasets import dataset_register
from rendering.engine.zoo import WeightsSpec
from rendering.examples import examples_jobs_create
from rendering.integrity import verify_storage
from rendering.models import LayerConnection, Render, RenderJob, UnitExamples
from rendering.services import render_job_run, render_jobs_create

pytestmark = pytest.mark.django_db

SMALL = {"size": 32, "steps": 2}


def _run(jobs: list[RenderJob]) -> None:
    for job in jobs:
        done = render_job_run(job_id=job.pk)
        assert done is not None and done.status == "succeeded", done and done.error


@pytest.fixture
def store(tinynet: Any, small_renders: Any, media: Path, tmp_path: Path) -> NetworkModel:
    """TinyNet with renders of three units, a dataset-examples pass, connections, an export."""
    model = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=6))
    conv2 = model.layers.get(name="conv2")
    _run(render_jobs_create(layer=conv2, technique="channel", params=SMALL, units=[0, 1, 2]))
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    dataset = dataset_register(slug="noise", name="Noise", location=str(folder))
    _run(examples_jobs_create(model=model, dataset=dataset, layers=["conv1"], k=2, enqueue=False))
    _run(connection_jobs_create(model=model, top=4, enqueue=False))
    export = export_request(model=model, enqueue=False)
    assert export_run(export_id=export.pk) is not None
    return model


def _render(model: NetworkModel, index: int) -> Render:
    return Render.objects.get(
        unit__layer__model=model, unit__index=index, unit__layer__name="conv2"
    )


def test_a_consistent_store_passes(store: NetworkModel, media: Path) -> None:
    report = verify_storage()
    assert report.ok and (report.missing, report.corrupt, report.orphans) == (0, 0, 0)
    examples = UnitExamples.objects.count()
    full = sum(len(e.top) + len(e.bottom) for e in UnitExamples.objects.all())
    export = Export.objects.get()
    expected = 3 * 2 + examples * 2 + full + LayerConnection.objects.count() + 1
    assert report.checked == expected + 1 + len(export.files)  # + export manifest and files
    files_on_disk = {p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file()}
    assert report.files == len(files_on_disk)  # every file is one that a row names
    out = io.StringIO()
    call_command("verify_storage", stdout=out)
    assert (
        "storage consistent" in out.getvalue()
        and "0 missing, 0 corrupt, 0 orphans" in out.getvalue()
    )


def test_a_missing_render_is_reported_then_deleted_and_queued_again(
    store: NetworkModel, media: Path, django_capture_on_commit_callbacks: Any
) -> None:
    render = _render(store, 1)
    (media / render.image.name).unlink()
    report = verify_storage()
    assert not report.ok and report.missing == 1
    (detail,) = report.details
    assert detail["kind"] == "missing" and detail["name"] == render.image.name
    assert detail["row"] == f"Render #{render.pk} image"
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("verify_storage", "--json", stdout=out)
    assert failed.value.returncode == 1 and json.loads(out.getvalue())["missing"] == 1

    with django_capture_on_commit_callbacks(execute=False):  # queued, not sent, in this test
        repaired = verify_storage(repair=True)
    assert repaired.ok and repaired.repaired == 1
    assert not Render.objects.filter(pk=render.pk).exists()
    job = RenderJob.objects.get(status="queued")
    assert (job.unit_start, job.unit_stop, job.params_hash) == (1, 2, render.params_hash)
    assert f"render job #{job.pk} renders it again" in repaired.details[0]["action"]
    _run([job])
    assert verify_storage().ok and _render(store, 1).image.name == render.image.name


def test_wrong_bytes_under_a_content_name_are_deleted_with_the_render(
    store: NetworkModel, media: Path
) -> None:
    render = _render(store, 2)
    (media / render.image.name).write_bytes(b"\x89PNG truncated by a crash")
    report = verify_storage()
    assert report.corrupt == 1 and report.details[0]["kind"] == "corrupt"
    repaired = verify_storage(repair=True)
    assert repaired.repaired == 1 and not (media / render.image.name).exists()
    assert not Render.objects.filter(pk=render.pk).exists()
    assert RenderJob.objects.filter(status="queued", unit_start=2, unit_stop=3).exists()


def test_a_missing_thumbnail_is_derived_again_from_the_image(
    store: NetworkModel, media: Path
) -> None:
    render = _render(store, 0)
    thumbnail = media / render.thumbnail.name
    original = thumbnail.read_bytes()
    thumbnail.unlink()
    repaired = verify_storage(repair=True)
    assert repaired.repaired == 1 and "derived again" in repaired.details[0]["action"]
    assert Render.objects.filter(pk=render.pk).exists()
    assert thumbnail.read_bytes() == original  # the same bytes, so the same content name
    assert verify_storage().ok


def test_old_orphans_are_removed_young_ones_kept_and_referenced_files_never(
    store: NetworkModel, media: Path
) -> None:
    old = media / "renders" / "ff" / ("f" * 64 + ".png")
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"left by a worker killed between storing and writing its rows")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(old, (two_hours_ago, two_hours_ago))
    young = media / "thumbs" / "ee" / ("e" * 64 + ".png")
    young.parent.mkdir(parents=True, exist_ok=True)
    young.write_bytes(b"a batch being stored right now")
    for path in media.rglob("*"):  # every referenced file is old too
        if path.is_file() and path not in (old, young):
            os.utime(path, (two_hours_ago, two_hours_ago))
    report = verify_storage()
    assert report.orphans == 2 and not report.ok and report.unresolved == 1
    repaired = verify_storage(repair=True)
    assert repaired.orphans_removed == 1 and repaired.ok
    assert not old.exists() and young.exists()
    assert verify_storage().missing == 0  # no referenced file went with them


def test_broken_examples_connections_and_exports_lose_their_rows_so_they_can_run_again(
    store: NetworkModel, media: Path
) -> None:
    examples = UnitExamples.objects.first()
    assert examples is not None
    (media / examples.sprite_top.name).unlink()
    pair = LayerConnection.objects.get(source__name="conv1")  # conv1 → conv2 of conv2 → logits
    (media / pair.matrix.name).write_bytes(b"not a matrix")
    export = Export.objects.get()
    (media / export.files[0]["path"]).unlink()
    report = verify_storage()
    assert (report.missing, report.corrupt) == (2, 1)
    repaired = verify_storage(repair=True)
    assert repaired.ok
    assert not UnitExamples.objects.exists()  # the whole pass: a partial pass is never rerun
    assert not LayerConnection.objects.filter(pk=pair.pk).exists() and not Export.objects.exists()
    assert LayerConnection.objects.filter(source__name="conv2").exists()  # its file is whole
    actions = " ".join(d["action"] for d in repaired.details)
    assert f"manage.py examples tinynet@{store.version} --dataset noise --layers conv1" in actions
    assert "run the connections again" in actions and "run the export again" in actions
    assert verify_storage().missing == 0


def test_an_orphan_counts_as_old_only_when_its_storage_can_date_it(tmp_path: Path) -> None:
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.core.files.storage import FileSystemStorage, Storage
    from django.utils import timezone

    from rendering.integrity import _older_than

    disk = FileSystemStorage(location=tmp_path)
    disk.save("renders/old.png", ContentFile(b"x"))
    hour_ago = time.time() - 3600
    os.utime(tmp_path / "renders" / "old.png", (hour_ago, hour_ago))
    half_hour_ago = timezone.now() - timedelta(minutes=30)
    assert _older_than(disk, "renders/old.png", half_hour_ago)
    assert not _older_than(disk, "renders/gone.png", half_hour_ago)  # removed since listed

    class Undatable(FileSystemStorage):
        get_modified_time = Storage.get_modified_time  # Django's base: raises

    undatable = Undatable(location=tmp_path)
    assert not _older_than(undatable, "renders/old.png", half_hour_ago)  # never deleted
