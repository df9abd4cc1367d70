from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from microscope_site.storage import store_content
from neurons.models import NetworkModel
from rendering import services
from rendering.models import Render, RenderJob
from rendering.services import (
    RateLimited,
    RenderRefused,
    render_job_run,
    render_jobs_create,
    render_jobs_reap,
    render_now,
)

pytestmark = pytest.mark.django_db


def _layer(model: NetworkModel, name: str = "mixed3a") -> Any:
    return model.layers.get(name=name)


def test_jobs_cover_the_requested_units_in_chunks(inceptionv1, small_renders) -> None:
    jobs = render_jobs_create(
        layer=_layer(inceptionv1), technique="channel", units=range(0, 10), units_per_job=4,
        params=small_renders, enqueue=False,
    )  # fmt: skip
    assert [(j.unit_start, j.unit_stop) for j in jobs] == [(0, 4), (4, 8), (8, 10)]
    assert all(j.status == "queued" and j.params["steps"] == 2 for j in jobs)


def test_a_span_already_queued_is_not_queued_twice(inceptionv1, small_renders) -> None:
    layer = _layer(inceptionv1)
    render_jobs_create(
        layer=layer, technique="channel", units=range(0, 8), params=small_renders, enqueue=False
    )
    again = render_jobs_create(
        layer=layer, technique="channel", units=range(2, 5), params=small_renders, enqueue=False
    )
    assert again == []
    assert RenderJob.objects.count() == 1


def test_a_job_renders_its_units_into_files_and_rows(
    inceptionv1, small_renders, media: Path
) -> None:
    (job,) = render_jobs_create(
        layer=_layer(inceptionv1),
        technique="channel",
        units=[5, 6],
        params=small_renders,
        enqueue=False,
    )
    done = render_job_run(job_id=job.pk)
    assert done is not None and done.status == "succeeded", done and done.error
    renders = list(Render.objects.filter(layer__name="mixed3a").order_by("unit__index"))
    assert [r.unit.index for r in renders] == [5, 6]
    for render in renders:
        assert default_storage.exists(render.image.name) and default_storage.exists(
            render.thumbnail.name
        )
        assert render.image.name.endswith(f"{render.image_sha256}.png")
        assert render.metrics["steps"] == 2 and render.metrics["device"] == "cpu"
        assert np.isfinite(render.objective)
    # Nothing is missing any more: asking again creates no job.
    assert (
        render_jobs_create(
            layer=_layer(inceptionv1), technique="channel", units=[5, 6], params=small_renders
        )
        == []
    )


def test_a_job_that_fails_half_way_is_retried_and_finishes_without_duplicates(
    inceptionv1, small_renders, monkeypatch
) -> None:
    real_store = services.store_render
    calls = {"n": 0}

    def failing_second_time(image):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_store(image)

    monkeypatch.setattr(services, "store_render", failing_second_time)
    (job,) = render_jobs_create(
        layer=_layer(inceptionv1),
        technique="channel",
        units=[0, 1, 2],
        params=small_renders,
        enqueue=False,
    )
    first = render_job_run(job_id=job.pk)
    assert first is not None and first.status == "queued" and first.attempts == 1
    assert "disk full" in first.error
    assert Render.objects.count() == 1  # the first unit's batch was kept

    second = render_job_run(job_id=job.pk)
    assert second is not None and second.status == "succeeded" and second.attempts == 2
    assert sorted(Render.objects.values_list("unit__index", flat=True)) == [0, 1, 2]
    assert "2 units to render" in second.log  # only what was missing


def test_a_job_gives_up_after_its_attempts(
    inceptionv1, small_renders, monkeypatch, settings
) -> None:
    settings.RENDER_MAX_ATTEMPTS = 2
    monkeypatch.setattr(
        services, "store_render", lambda image: (_ for _ in ()).throw(OSError("bucket gone"))
    )
    (job,) = render_jobs_create(
        layer=_layer(inceptionv1),
        technique="channel",
        units=[0],
        params=small_renders,
        enqueue=False,
    )
    assert render_job_run(job_id=job.pk).status == "queued"
    assert render_job_run(job_id=job.pk).status == "failed"
    assert render_job_run(job_id=job.pk) is None  # failed jobs are not claimed
    assert not Render.objects.exists()


def test_diversity_stores_each_image_as_a_variant(inceptionv1, small_renders) -> None:
    params = {**small_renders, "diversity": 2}
    (job,) = render_jobs_create(
        layer=_layer(inceptionv1), technique="diversity", units=[3], params=params, enqueue=False
    )
    assert render_job_run(job_id=job.pk).status == "succeeded"
    assert sorted(Render.objects.values_list("variant", flat=True)) == [0, 1]


def test_a_layer_technique_renders_one_image_of_the_layer(inceptionv1, small_renders) -> None:
    (job,) = render_jobs_create(
        layer=_layer(inceptionv1), technique="deepdream", params=small_renders, enqueue=False
    )
    assert render_job_run(job_id=job.pk).status == "succeeded"
    render = Render.objects.get()
    assert render.unit is None and render.layer.name == "mixed3a"


def test_a_half_written_file_under_a_content_name_is_replaced(media: Path) -> None:
    name, sha = store_content(b"complete bytes", folder="renders")
    (media / name).write_bytes(b"compl")  # what a killed worker could leave
    again, _ = store_content(b"complete bytes", folder="renders")
    assert again == name and (media / name).read_bytes() == b"complete bytes"


def test_the_reaper_requeues_jobs_whose_worker_stopped_beating(inceptionv1, small_renders) -> None:
    (job,) = render_jobs_create(
        layer=_layer(inceptionv1),
        technique="channel",
        units=[0],
        params=small_renders,
        enqueue=False,
    )
    RenderJob.objects.filter(pk=job.pk).update(
        status="running", attempts=1, heartbeat=timezone.now() - timedelta(hours=1)
    )
    fresh = RenderJob.objects.create(
        layer=job.layer, technique=job.technique, params=job.params, params_hash="x" * 64,
        unit_start=1, unit_stop=2, status="running", attempts=1, heartbeat=timezone.now(),
    )  # fmt: skip
    assert render_jobs_reap(stale_after=timedelta(minutes=10)) == [job.pk]
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == "queued" and "heartbeat" in job.error
    assert fresh.status == "running"


def test_render_now_reuses_an_active_job_and_rate_limits(inceptionv1, settings) -> None:
    settings.RENDER_NOW_PER_MINUTE = 2
    layer = _layer(inceptionv1)
    unit_a, unit_b, unit_c = (layer.units.get(index=i) for i in (10, 11, 12))
    job = render_now(unit=unit_a, client="1.2.3.4")
    assert job is not None and (job.unit_start, job.unit_stop) == (10, 11)
    assert render_now(unit=unit_a, client="1.2.3.4") == job  # deduplicated, not counted
    render_now(unit=unit_b, client="1.2.3.4")
    with pytest.raises(RateLimited):
        render_now(unit=unit_c, client="1.2.3.4")
    assert render_now(unit=unit_c, client="5.6.7.8") is not None  # another visitor


def test_out_of_range_units_are_refused(inceptionv1) -> None:
    with pytest.raises(RenderRefused, match="units 0–255"):
        render_jobs_create(
            layer=_layer(inceptionv1), technique="channel", units=[256], enqueue=False
        )


def test_jobs_hold_whole_device_batches(inceptionv1, settings) -> None:
    settings.RENDER_BATCH_SIZE = settings.RENDER_UNITS_PER_JOB = 0
    settings.RENDER_BATCHES_PER_JOB = 0
    settings.RENDER_DEVICE = "cuda"  # sized where jobs are created: no GPU needed for that
    assert (services.render_batch_size(), services.render_units_per_job()) == (256, 1024)
    settings.RENDER_DEVICE = "cpu"
    assert (services.render_batch_size(), services.render_units_per_job()) == (8, 64)
    settings.RENDER_BATCH_SIZE, settings.RENDER_UNITS_PER_JOB = 6, 20
    assert services.render_units_per_job() == 24  # rounded up to whole batches
    assert services.render_units_per_job(variants=2) == 21  # batches of 3 units of 2 images
    settings.RENDER_UNITS_PER_JOB, settings.RENDER_BATCHES_PER_JOB = 0, 2
    jobs = render_jobs_create(
        layer=_layer(inceptionv1), technique="channel", units=range(30), params={"steps": 2},
        enqueue=False,
    )  # fmt: skip
    assert [(j.unit_start, j.unit_stop) for j in jobs] == [(0, 12), (12, 24), (24, 30)]
