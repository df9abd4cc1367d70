"""Store finished batches in the background while the next batch renders.

A render worker alternates two kinds of work: the engine's optimization (GPU, or the CPU's
intra-op threads) and storing what it made (PNG encoding, thumbnails, storage writes, rows).
Done in turn, the device idles while the host stores; `BatchWriter` takes each finished batch
and stores it on threads, so the caller goes straight on to the next batch.

- Bounded: at most `pending` batches are waiting or being stored; `put` blocks past that, so
  images never pile up in memory faster than the storage takes them.
- In order, all or nothing per batch: one thread takes the batches one after another; a
  batch's images are encoded and written in parallel on the image threads, then its rows are
  inserted in one transaction, after every file is stored (files first, as before: no row
  without a file). A batch whose storing fails gets no rows, and every batch after it is
  skipped; the error is raised in the caller at its next `put` or at `close`. Batches stored
  before the failure keep their rows, so a rerun renders only what is missing.
- Django's connections are per thread: the batch thread closes its own when the writer closes.
  A caller inside a transaction (`atomic`) keeps the rows: another connection could not see
  the caller's uncommitted rows, nor be rolled back with them, so there the rows are inserted
  on the caller's thread, in its transaction, at the next `put` or at `close`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, TypeVar

import numpy as np
from django.db import connections, transaction

__all__ = ["BatchWriter"]

logger = logging.getLogger(__name__)

Stored = TypeVar("Stored")


@dataclass
class _Batch(Generic[Stored]):
    images: Sequence[np.ndarray]
    commit: Callable[[list[Stored]], None]  # inserts the rows for the stored images
    stored: list[Stored] = field(default_factory=list)
    seconds: float = 0.0  # spent storing it, rows included


class BatchWriter(Generic[Stored]):
    """Stores batches of images with `store` (one image → what its row needs) and hands each
    batch's results to its `commit`, in the order the batches were put."""

    def __init__(
        self,
        store: Callable[[np.ndarray], Stored],
        *,
        threads: int = 4,
        pending: int = 2,
    ) -> None:
        self._store = store
        self._images = ThreadPoolExecutor(max(1, threads), thread_name_prefix="render-store")
        self._batches = ThreadPoolExecutor(1, thread_name_prefix="render-batch")
        self._slots = threading.BoundedSemaphore(max(1, pending))
        self._futures: list[Future[None]] = []
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        # Rows stay with a caller that holds a transaction (see the module docstring).
        self._rows_here = transaction.get_connection().in_atomic_block
        self._to_commit: list[_Batch[Stored]] = []
        self.store_seconds = 0.0  # time the batch thread spent storing, for the benchmarks
        self._closed = False

    def put(self, images: Iterable[np.ndarray], commit: Callable[[list[Stored]], None]) -> None:
        """Store `images` in the background, then `commit(stored)`; raises the error of an
        earlier batch that failed (its rows and the later batches' are not written)."""
        self._raise_if_failed()
        self._commit_here()
        self._slots.acquire()
        try:
            self._raise_if_failed()
        except BaseException:
            self._slots.release()
            raise
        batch: _Batch[Stored] = _Batch(images=list(images), commit=commit)
        self._futures.append(self._batches.submit(self._write, batch))

    def close(self) -> None:
        """Wait for every batch, close the batch thread's database connections, and raise
        the first storing error."""
        if self._closed:
            return
        self._closed = True
        for future in self._futures:
            future.exception()  # waits; errors are kept in self._error
        self._batches.submit(connections.close_all).result()
        self._batches.shutdown()
        self._images.shutdown()
        self._commit_here()
        self._raise_if_failed()

    def __enter__(self) -> BatchWriter[Stored]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is None:
            self.close()
            return
        # The caller failed (a render error): keep the batches finished so far, then let the
        # caller's error propagate; a storing error beside it is logged, not raised.
        try:
            self.close()
        except Exception as also:
            if also is not error:  # `put` may have raised this very storing error already
                logger.exception("storing a finished batch failed too")

    def _write(self, batch: _Batch[Stored]) -> None:
        try:
            with self._lock:
                if self._error is not None:
                    return  # an earlier batch failed: write nothing after it
            started = time.perf_counter()
            batch.stored = list(self._images.map(self._store, batch.images))
            if self._rows_here:
                with self._lock:
                    self._to_commit.append(batch)
            else:
                batch.commit(batch.stored)
            self.store_seconds += time.perf_counter() - started
        except BaseException as error:
            with self._lock:
                if self._error is None:
                    self._error = error
        finally:
            self._slots.release()

    def _commit_here(self) -> None:
        with self._lock:
            ready, self._to_commit = self._to_commit, []
        for batch in ready:
            batch.commit(batch.stored)

    def _raise_if_failed(self) -> None:
        with self._lock:
            error = self._error
        if error is not None:
            self._commit_here()  # the batches stored before the failure keep their rows
            raise error
