"""Datasets: an image folder (or storage prefix) registered once, with a manifest that fixes
the images, their order and their sha256. A pass over it (`rendering.examples`) reads the images
through the manifest and skips any that changed since (`VerifiedReader`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePath

from django.core.exceptions import SuspiciousOperation
from django.core.files.storage import default_storage

from microscope_site.errors import Refused
from microscope_site.progress import Progress, ignore_progress
from microscope_site.storage import store_content
from rendering.engine.datasets import IMAGE_EXTENSIONS, file_sha256, list_images
from rendering.models import Dataset

STORAGE_PREFIX = "storage:"


class DatasetRefused(Refused):
    """A dataset that cannot be registered or read as asked; the message says why."""


def _read_local(root: str, name: str) -> bytes:
    return (Path(root) / name).read_bytes()


def _read_storage(prefix: str, name: str) -> bytes:
    with default_storage.open(f"{prefix}{name}", "rb") as handle:
        return bytes(handle.read())


def _storage_images(prefix: str) -> list[str]:
    """Image files under `prefix` of the default storage, relative to it, sorted."""
    found: list[str] = []
    pending = [""]
    while pending:
        folder = pending.pop()
        dirs, files = default_storage.listdir(f"{prefix}{folder}".rstrip("/") or ".")
        pending += [f"{folder}{d}/" for d in dirs]
        found += [f"{folder}{f}" for f in files if PurePath(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(found)


def dataset_reader(location: str) -> Callable[[str], bytes]:
    """A picklable function reading one image of a dataset by its relative path."""
    if location.startswith(STORAGE_PREFIX):
        prefix = location.removeprefix(STORAGE_PREFIX)
        return partial(_read_storage, prefix.rstrip("/") + "/" if prefix else "")
    return partial(_read_local, location)


def dataset_register(
    *,
    slug: str,
    name: str,
    location: str,
    description: str = "",
    licence: str = "",
    progress: Progress = ignore_progress,
) -> Dataset:
    """Scan `location` (a folder, or `storage:<prefix>`), hash every image, store the manifest.

    Registering the same images under the same slug again returns the existing row; different
    images under a known slug are refused (results name the manifest they came from).
    """
    if location.startswith(STORAGE_PREFIX):
        prefix = location.removeprefix(STORAGE_PREFIX)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        try:
            names = _storage_images(prefix)
        except SuspiciousOperation:
            raise DatasetRefused(f"{location!r} leaves the default storage") from None
        except ValueError as error:  # a NUL byte, for one
            raise DatasetRefused(f"{location!r} is not a storage prefix ({error})") from None
    else:
        root = Path(location)
        if not root.is_absolute():
            raise DatasetRefused(f"{location!r}: give an absolute folder path or storage:<prefix>")
        if not root.is_dir():
            raise DatasetRefused(f"{location} is not a folder")
        names = list_images(root)
    if not names:
        raise DatasetRefused(
            f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {location}"
        )
    read = dataset_reader(location)
    lines = []
    for position, relative in enumerate(names):
        lines.append(json.dumps({"path": relative, "sha256": file_sha256(read(relative))}))
        if position % 100 == 0:
            progress(position / len(names), f"hashed {position}/{len(names)} images")
    manifest = ("\n".join(lines) + "\n").encode()
    manifest_name, manifest_sha = store_content(manifest, folder="datasets", suffix=".jsonl")
    existing = Dataset.objects.filter(slug=slug).first()
    if existing is not None:
        if existing.manifest_sha256 == manifest_sha:
            return existing
        raise DatasetRefused(
            f"dataset {slug!r} exists with other images (manifest {existing.manifest_sha256[:12]}, "
            f"now {manifest_sha[:12]}); register the new images under a new slug"
        )
    progress(1.0, f"{len(names)} images")
    return Dataset.objects.create(
        slug=slug,
        name=name,
        location=location,
        description=description,
        licence=licence,
        image_count=len(names),
        manifest=manifest_name,
        manifest_sha256=manifest_sha,
    )


def dataset_manifest(dataset: Dataset) -> list[dict[str, str]]:
    with default_storage.open(str(dataset.manifest.name), "rb") as handle:
        data = handle.read()
    return [json.loads(line) for line in data.decode().splitlines() if line]


@dataclass
class VerifiedReader:
    """Reads an image and refuses bytes that differ from the manifest's sha256."""

    read: Callable[[str], bytes]
    expected: dict[str, str]

    def __call__(self, name: str) -> bytes:
        data = self.read(name)
        if file_sha256(data) != self.expected[name]:
            # An OSError: the dataset skips the image and reports why, as for a missing file.
            raise OSError("changed since the dataset was registered")
        return data
