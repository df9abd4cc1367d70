from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from rendering.datasets import DatasetRefused, dataset_manifest, dataset_reader, dataset_register
from tests.rendering.passes import photo

pytestmark = pytest.mark.django_db


def test_register_hashes_every_image_in_order_and_refuses_changes(
    image_folder: Path, media: Path
) -> None:
    dataset = dataset_register(slug="pets", name="Pets", location=str(image_folder))
    manifest = dataset_manifest(dataset)
    assert dataset.image_count == 14 == len(manifest)  # the two bad files are images by name
    assert [entry["path"] for entry in manifest] == sorted(entry["path"] for entry in manifest)
    assert "cats/img01.png" in {entry["path"] for entry in manifest}
    assert all(len(entry["sha256"]) == 64 for entry in manifest)
    # The same images again: the same row. Different images under the slug: refused.
    assert dataset_register(slug="pets", name="Pets", location=str(image_folder)).pk == dataset.pk
    photo(123).save(image_folder / "new.png")
    with pytest.raises(DatasetRefused, match="exists with other images"):
        dataset_register(slug="pets", name="Pets", location=str(image_folder))
    with pytest.raises(DatasetRefused, match="not a folder"):
        dataset_register(slug="x", name="x", location=str(image_folder / "missing"))
    with pytest.raises(DatasetRefused, match="absolute"):
        dataset_register(slug="x", name="x", location="relative/path")
    empty = image_folder.parent / "empty"
    empty.mkdir()
    with pytest.raises(DatasetRefused, match="no image files"):
        dataset_register(slug="x", name="x", location=str(empty))


def test_register_reads_a_prefix_of_the_default_storage(image_folder: Path, media: Path) -> None:
    from django.core.files.base import ContentFile

    for path in sorted(image_folder.rglob("img0*.png"))[:3]:
        relative = path.relative_to(image_folder).as_posix()
        default_storage.save(f"uploads/pets/{relative}", ContentFile(path.read_bytes()))
    dataset = dataset_register(slug="pets-s3", name="Pets", location="storage:uploads/pets")
    assert dataset.image_count == 3
    assert dataset_reader(dataset.location)("cats/img01.png")[:4] == b"\x89PNG"
