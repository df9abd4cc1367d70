"""Dataset-example passes through the services, the command and the pages (TinyNet, 32 px, in
this process); tests/rendering/test_examples_worker.py runs a real worker. Registering datasets
is tested in test_datasets.py, tuning curves in test_tuning.py."""

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from rendering import examples as examples_service
from rendering.datasets import dataset_register
from rendering.examples import examples_jobs_create
from rendering.models import RenderJob, TuningCurve, UnitExamples
from rendering.tuning import tuning_jobs_create
from tests.rendering.passes import photo, run_jobs

pytestmark = pytest.mark.django_db


def test_a_pass_stores_every_units_examples_and_survives_bad_images(
    tiny_model: Any, image_folder: Path
) -> None:
    dataset = dataset_register(slug="pets", name="Pets", location=str(image_folder))
    (job,) = examples_jobs_create(
        model=tiny_model, dataset=dataset, layers=["conv1", "conv2"], k=5, enqueue=False
    )
    assert job.layer.name == "conv2"  # the job targets the deepest layer
    (done,) = run_jobs([job])
    assert done.status == "succeeded", done.error
    assert "skipped broken.jpg" in done.log and "skipped notes.jpg" in done.log
    assert "12 images read, 2 skipped" in done.log
    rows = UnitExamples.objects.filter(unit__layer__model=tiny_model)
    assert rows.count() == 8 + 16
    for row in rows.select_related("unit__layer"):
        assert row.stats["count"] == 12
        assert len(row.top) == len(row.bottom) == 5
        values = [entry["value"] for entry in row.top]
        assert values == sorted(values, reverse=True)
        bottoms = [entry["value"] for entry in row.bottom]
        assert bottoms == sorted(bottoms)
        for entry in row.top + row.bottom:
            assert entry["path"].endswith(".png") and default_storage.exists(entry["full"])
            top, left, bottom, right = entry["box"]
            assert 0 <= top < bottom <= 32 and 0 <= left < right <= 32
        with default_storage.open(row.sprite_top.name, "rb") as handle:
            assert Image.open(handle).size == (5 * row.crop_size, row.crop_size)
    # Running it again finds everything done.
    assert (
        examples_jobs_create(
            model=tiny_model, dataset=dataset, layers=["conv1", "conv2"], k=5, enqueue=False
        )
        == []
    )


def test_an_interrupted_pass_resumes_and_equals_an_uninterrupted_one(
    tiny_model: Any, image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = dataset_register(slug="pets", name="Pets", location=str(image_folder))
    monkeypatch.setattr(examples_service, "CHUNK_IMAGES", 4)

    def stored() -> dict[tuple[str, int], Any]:
        return {
            (row.unit.layer.name, row.unit.index): (row.top, row.bottom, row.stats)
            for row in UnitExamples.objects.select_related("unit__layer")
        }

    (job,) = examples_jobs_create(
        model=tiny_model, dataset=dataset, layers=["conv1", "conv2"], k=3, enqueue=False
    )
    run_jobs([job])
    uninterrupted = stored()
    UnitExamples.objects.all().delete()
    RenderJob.objects.all().delete()

    real = examples_service.collect_examples
    calls = {"n": 0}

    def dies_on_the_third_chunk(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # chunks of 4 images, one batch each: the 3rd call is chunk 3
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(examples_service, "collect_examples", dies_on_the_third_chunk)
    (job,) = examples_jobs_create(
        model=tiny_model, dataset=dataset, layers=["conv1", "conv2"], k=3, enqueue=False
    )
    (failed,) = run_jobs([job])
    assert failed.status == "queued" and "worker killed" in failed.log  # to be retried
    assert not UnitExamples.objects.exists()
    monkeypatch.setattr(examples_service, "collect_examples", real)
    (resumed,) = run_jobs([failed])
    assert resumed.status == "succeeded", resumed.error
    assert "resuming after 8 images" in resumed.log
    assert stored() == uninterrupted


def test_unit_page_shows_examples_and_tuning(
    client: Any, tiny_model: Any, image_folder: Path
) -> None:
    dataset = dataset_register(slug="pets", name="Pet photos", location=str(image_folder))
    run_jobs(
        examples_jobs_create(
            model=tiny_model, dataset=dataset, layers=["conv2"], k=4, enqueue=False
        )
    )
    run_jobs(tuning_jobs_create(model=tiny_model, layers=["conv2"], enqueue=False))
    page = client.get("/models/tinynet/conv2/3/").content.decode()  # opens on examples
    assert "Dataset examples" in page and "Pet photos" in page
    row = UnitExamples.objects.get(unit__layer__model=tiny_model, unit__index=3)
    assert row.sprite_top.url in page and row.sprite_bottom.url in page
    assert default_storage.url(row.top[0]["full"]) in page
    page = client.get("/models/tinynet/conv2/3/?technique=tuning").content.decode()
    assert "Tuning curves" in page and page.count("<svg") >= 3
    grid = client.get("/models/tinynet/conv2/?technique=examples").content.decode()
    assert row.sprite_top.url in grid and "strongest dataset example of conv2:3" in grid


def test_command_registers_and_computes_here(tiny_model: Any, image_folder: Path) -> None:
    call_command("dataset_register", "pets", str(image_folder), name="Pets", licence="CC0")
    call_command("examples", "tinynet", dataset="pets", layers="conv1", k=2, tuning=True, here=True)
    assert UnitExamples.objects.filter(unit__layer__name="conv1").count() == 8
    assert TuningCurve.objects.filter(unit__layer__name="conv1").count() == 3 * 8
    with pytest.raises(CommandError, match="no dataset 'nope'"):
        call_command("examples", "tinynet", dataset="nope", here=True)
    with pytest.raises(CommandError, match="no layer nope"):
        call_command("examples", "tinynet", dataset="pets", layers="nope", here=True)
    with pytest.raises(CommandError, match="not a folder"):
        call_command("dataset_register", "other", str(image_folder / "missing"))


def test_a_pass_over_changed_images_skips_them(tiny_model: Any, image_folder: Path) -> None:
    dataset = dataset_register(slug="pets", name="Pets", location=str(image_folder))
    photo(500).save(image_folder / "cats" / "img01.png")  # changed after registering
    (job,) = examples_jobs_create(
        model=tiny_model, dataset=dataset, layers=["conv1"], k=2, enqueue=False
    )
    (done,) = run_jobs([job])
    assert done.status == "succeeded", done.error
    assert (
        "skipped cats/img01.png: cannot read file (changed since the dataset was registered)"
        in done.log
    )
    row = UnitExamples.objects.filter(unit__layer__name="conv1").first()
    assert row is not None and row.stats["count"] == 11
    assert json.dumps(row.top).count("cats/img01.png") == 0


def _shown_stats(html: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'<dd data-stat="(\w+)">([^<]*)</dd>', html))


def test_the_statistics_the_unit_page_shows_are_the_stored_ones_each_labelled(
    client: Any, tiny_model: Any, image_folder: Path
) -> None:
    dataset = dataset_register(slug="pets", name="Pet photos", location=str(image_folder))
    run_jobs(
        examples_jobs_create(model=tiny_model, dataset=dataset, layers=["conv2"], enqueue=False)
    )
    row = UnitExamples.objects.get(unit__layer__model=tiny_model, unit__index=3)
    stats = row.stats
    page = client.get("/models/tinynet/conv2/3/?technique=examples").content.decode()
    shown = _shown_stats(page)
    assert shown == {
        key: f"{stats[key]:.3f}" for key in ("mean", "max_mean", "max_std", "maximum", "minimum")
    }
    assert stats["max_mean"] != stats["mean"]  # the two means the page once confused differ
    assert f"Statistics over {stats['count']} images" in page
    for label, key in (
        ("Mean activation, all positions", "mean"),
        ("Per-image spatial maximum: mean", "max_mean"),
        ("Per-image spatial maximum: standard deviation", "max_std"),
        ("Highest activation", "maximum"),
    ):
        assert f'<dt>{label}</dt><dd data-stat="{key}">' in page
    svg = page.split('<figure class="histogram">')[1].split("</figure>")[0]
    assert "Per-image maximum of conv2:3</text>" in svg
    assert "per-image spatial maximum (log-spaced bins)" in svg
    assert f"{sum(stats['histogram'])} values" in svg  # its description counts every image
