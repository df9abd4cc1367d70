"""The background writer: batches stored while the caller goes on, in order, all or nothing."""

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.db import connection

from neurons.services import model_import
from rendering import services
from rendering.engine.zoo import WeightsSpec
from rendering.models import Render, RenderJob
from rendering.pipeline import BatchWriter
from rendering.services import render_job_run, render_jobs_create


def _inceptionv1() -> Any:
    # Imported again (idempotent): an earlier transactional test may have flushed the session's.
    return model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))


def _images(count: int, value: int) -> list[np.ndarray]:
    return [np.full((4, 4, 3), value + i, dtype=np.uint8) for i in range(count)]


def test_batches_are_stored_off_the_callers_thread_in_order() -> None:
    caller = threading.get_ident()
    stored_on, committed = set(), []

    def store(image: np.ndarray) -> int:
        stored_on.add(threading.get_ident())
        time.sleep(0.01)
        return int(image[0, 0, 0])

    with BatchWriter(store, threads=3) as writer:
        for batch in range(4):
            writer.put(_images(3, 10 * batch), committed.append)
    assert committed == [[0, 1, 2], [10, 11, 12], [20, 21, 22], [30, 31, 32]]
    assert caller not in stored_on


def test_put_returns_while_the_batch_is_still_being_stored() -> None:
    release = threading.Event()

    def store(image: np.ndarray) -> int:
        release.wait(10)
        return 1

    committed: list[list[int]] = []
    with BatchWriter(store, threads=1, pending=2) as writer:
        writer.put(_images(1, 0), committed.append)
        assert committed == []  # the caller renders the next batch meanwhile
        release.set()
    assert committed == [[1]]


def test_a_failed_batch_writes_nothing_after_it_and_raises_in_the_caller() -> None:
    committed: list[list[int]] = []

    def store(image: np.ndarray) -> int:
        if image[0, 0, 0] == 10:
            raise OSError("bucket gone")
        return int(image[0, 0, 0])

    writer: BatchWriter[int] = BatchWriter(store, threads=2)
    with pytest.raises(OSError, match="bucket gone"), writer:
        for batch in range(4):
            writer.put(_images(2, 10 * batch), committed.append)
            time.sleep(0.05)
    assert committed == [[0, 1]]  # the batch before the failure kept, none after it


def test_the_callers_own_error_wins_and_finished_batches_are_kept() -> None:
    committed: list[list[int]] = []
    writer: BatchWriter[int] = BatchWriter(lambda image: int(image[0, 0, 0]), threads=2)
    with pytest.raises(RuntimeError, match="CUDA out of memory"), writer:
        writer.put(_images(2, 0), committed.append)
        raise RuntimeError("CUDA out of memory")
    assert committed == [[0, 1]]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_rows_are_inserted_by_the_writer_thread_outside_a_transaction(
    small_renders: dict[str, Any], media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a worker (no open transaction) the batch thread inserts the rows on its own
    connection (SQLite: a second writer on the file), and closes it at the end."""
    inserted_on: list[int] = []
    real_create = Render.objects.bulk_create

    def bulk_create(rows: Any, **options: Any) -> Any:
        inserted_on.append(threading.get_ident())
        return real_create(rows, **options)

    monkeypatch.setattr(Render.objects, "bulk_create", bulk_create)
    layer = _inceptionv1().layers.get(name="mixed3a")
    (job,) = render_jobs_create(
        layer=layer, technique="channel", units=[0, 1, 2], params=small_renders, enqueue=False
    )
    assert not connection.in_atomic_block
    done = render_job_run(job_id=job.pk)
    assert done is not None and done.status == "succeeded", done and done.error
    assert len(inserted_on) == 3 and threading.get_ident() not in inserted_on
    renders = Render.objects.filter(layer=layer)
    assert sorted(renders.values_list("unit__index", flat=True)) == [0, 1, 2]
    assert all(default_storage.exists(r.image.name) for r in renders)
    assert "rendered 3 units on " in done.log and " engine " in done.log


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_storage_failure_in_the_writer_thread_fails_the_job_and_a_rerun_finishes_it(
    small_renders: dict[str, Any], media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_store = services.store_render
    calls = {"n": 0}

    def failing_second_time(image: np.ndarray) -> tuple[str, str, str]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_store(image)

    monkeypatch.setattr(services, "store_render", failing_second_time)
    layer = _inceptionv1().layers.get(name="mixed3a")
    (job,) = render_jobs_create(
        layer=layer, technique="channel", units=[0, 1, 2], params=small_renders, enqueue=False
    )
    first = render_job_run(job_id=job.pk)
    assert first is not None and first.status == "queued" and "disk full" in first.error
    assert list(Render.objects.values_list("unit__index", flat=True)) == [0]
    second = render_job_run(job_id=job.pk)
    assert second is not None and second.status == "succeeded", second.error
    assert sorted(Render.objects.values_list("unit__index", flat=True)) == [0, 1, 2]
    assert RenderJob.objects.get(pk=job.pk).attempts == 2
