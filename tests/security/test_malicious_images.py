"""Hostile image files, through the real entry points: a dataset registered with
`manage.py dataset_register` and passed through a model, the caricature input of
`manage.py render`, and every view that might take an upload.

tests/engine/test_datasets.py checks the decoder on small files with a lowered pixel limit;
here the files are what an attacker would send at Pillow's real limit: headers that claim a
billion pixels in a few hundred bytes, an image just past the limit, markup and empty files
named as images, and images whose extension lies.
"""

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

pytestmark = pytest.mark.django_db


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header declaring `width` x `height` RGB pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def photo(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


HOSTILE = {
    # name: (bytes, why it is skipped)
    "bomb.png": (png_claiming(30_000, 30_000), "decompression bomb (900000000 pixels)"),
    "just-past-the-limit.png": (
        png_claiming(10_000, 10_000),
        "decompression bomb (100000000 pixels)",
    ),
    "truncated.jpg": (encoded(photo(9), "JPEG")[:300], "truncated"),
    "page.png": (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "not an image"),
    "script.jpg": (b"<html><script>alert(1)</script></html>", "not an image"),
    "empty.webp": (b"", "empty file"),
}


@pytest.fixture
def hostile_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    (folder / "good").mkdir(parents=True)
    for i in range(3):
        photo(i).save(folder / "good" / f"photo{i}.png")
    # Images whose extension lies are read by their content and used.
    (folder / "png-named.jpg").write_bytes(encoded(photo(10), "PNG"))
    (folder / "gif-named.png").write_bytes(encoded(photo(11).convert("P"), "GIF"))
    for name, (data, _reason) in HOSTILE.items():
        (folder / name).write_bytes(data)
    (folder / "payload.exe").write_bytes(b"MZ not listed: not an image extension")
    return folder


def test_a_registered_dataset_skips_every_hostile_file_with_its_reason(
    hostile_folder: Path, media: Path, tinynet: Any, small_renders: Any, settings: Any
) -> None:
    from neurons.services import model_import
    from rendering.engine.zoo import WeightsSpec
    from rendering.examples import examples_jobs_create
    from rendering.models import Dataset, UnitExamples
    from rendering.services import render_job_run

    settings.EXAMPLES_LOADER_WORKERS = 0
    call_command("dataset_register", "uploads", str(hostile_folder), name="Uploads")
    dataset = Dataset.objects.get(slug="uploads")
    assert dataset.image_count == 3 + 2 + len(HOSTILE)  # by name; .exe is not listed
    model = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))
    (job,) = examples_jobs_create(
        model=model, dataset=dataset, layers=["conv1"], k=2, enqueue=False
    )
    done = render_job_run(job_id=job.pk)
    assert done is not None and done.status == "succeeded", done and done.error
    for name, (_data, reason) in HOSTILE.items():
        assert f"skipped {name}: {reason}" in done.log, name
    assert f"5 images read, {len(HOSTILE)} skipped" in done.log
    row = UnitExamples.objects.filter(unit__layer__name="conv1").first()
    assert row is not None and row.stats["count"] == 5
    used = {entry["path"] for entry in row.top + row.bottom}
    assert used <= {"good/photo0.png", "good/photo1.png", "good/photo2.png"} | {
        "png-named.jpg",
        "gif-named.png",
    }


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_caricature_input_is_refused_with_its_reason(
    name: str, hostile_folder: Path, tinynet: Any, small_renders: Any
) -> None:
    from neurons.services import model_import
    from rendering.engine.zoo import WeightsSpec
    from rendering.models import RenderJob

    model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))
    with pytest.raises(CommandError, match=HOSTILE[name][1].split(" (")[0]):
        call_command(
            "render",
            "tinynet",
            layers="conv2",
            technique="caricature",
            image=str(hostile_folder / name),
            here=True,
        )
    assert not RenderJob.objects.exists()


def test_no_view_stores_an_uploaded_file(
    world: dict[str, list[str]], people: dict[str, Any], media: Path
) -> None:
    """There is no upload anywhere today (no form or serializer has a file field): a bomb
    posted as a file to every view, as staff, is never stored. If an upload appears, this
    fails until it gets checks of its own."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction
    from django.test import Client

    from tests.security.patterns import endpoints
    from tests.security.test_csrf import _fill

    before = sorted(p.relative_to(media) for p in media.rglob("*"))
    client = Client()
    for regex, _pattern in endpoints():
        client.force_login(people["staff"])  # again: a POST to a logout view ends the session
        form = {
            name: SimpleUploadedFile("bomb.png", png_claiming(30_000, 30_000), "image/png")
            for name in ("file", "image", "thumbnail", "matrix", "manifest", "sprite_top")
        }
        with transaction.atomic():
            response = client.post(_fill(regex, world), form)
            transaction.set_rollback(True)
        assert response.status_code < 500, regex
    assert sorted(p.relative_to(media) for p in media.rglob("*")) == before
