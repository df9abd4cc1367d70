"""Bulk export of one model version (issue 8): its tables as JSON Lines and Parquet, a manifest.

Tables: layers, units (with curator labels), renders, dataset examples, connections and the
public notes about the model's units (what an anonymous visitor may read). Every file goes to
the default storage under its sha256 (`microscope_site.storage.store_content`); `manifest.json` names
each file with its rows, bytes and sha256, so a download can be verified without the site.

Exports are jobs (`microscope_site.jobs`): the `Export` row first, its task sent on commit, a
claim by conditional update, heartbeats, retries up to `EXPORT_MAX_ATTEMPTS`, a reaper for
exports whose worker died. Each app registers its tables (`neurons.export_tables`). At most one export per model version waits in the queue; asking
again while it waits adds nothing, since it will read the newest data when it runs. An export
records the model's content version it shows: `export_is_current` says whether anything its
pages show changed since.
"""

import io
import json
import logging
import math
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from microscope_site.errors import Refused
from microscope_site.jobs import Heartbeat, job_enqueue, job_run, jobs_reap
from microscope_site.progress import Progress, ignore_progress
from microscope_site.storage import store_content
from neurons.export_tables import TABLE_ROWS, TABLES, Column
from neurons.jobs import EXPORT_JOBS
from neurons.models import Export, NetworkModel
from neurons.services import model_touch

__all__ = [
    "SCHEMA_VERSION",
    "TABLES",
    "ExportRefused",
    "export_is_current",
    "export_request",
    "export_run",
    "exports_reap",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FOLDER = "exports"


class ExportRefused(Refused):
    """An export that cannot be made as asked; the message says why."""


# --- asking for an export ---------------------------------------------------------------------


def export_request(
    *, model: NetworkModel, requested_by: object | None = None, enqueue: bool = True
) -> Export:
    """The queued export of `model`: a new row (its task sent on commit), or the one waiting."""
    if model.status != NetworkModel.Status.READY:
        raise ExportRefused(f"{model} is not ready ({model.status})")
    waiting = Export.objects.filter(model=model, status=Export.Status.QUEUED).first()
    if waiting is not None:
        if enqueue and waiting.not_queued:  # the broker was down: send it again
            job_enqueue(EXPORT_JOBS, waiting)
        return waiting
    try:
        with transaction.atomic():
            export = Export.objects.create(
                model=model,
                requested_by=requested_by,  # type: ignore[misc]
                task_id=str(uuid.uuid4()),
            )
    except IntegrityError:  # another request queued one between our read and our write
        return Export.objects.get(model=model, status=Export.Status.QUEUED)
    if enqueue:
        job_enqueue(EXPORT_JOBS, export)
    return export


def export_is_current(export: Export) -> bool:
    """Whether the export shows everything the model's pages show now."""
    return (
        export.status == Export.Status.SUCCEEDED
        and export.content_version == export.model.content_version
    )


# --- running one ------------------------------------------------------------------------------


def export_run(*, export_id: int, progress: Progress = ignore_progress) -> Export | None:
    """Claim a queued export and write its files. None when another worker has it.

    A failure goes back to the queue until `EXPORT_MAX_ATTEMPTS`, then stays failed; so does an
    export that a newer queued one replaces.
    """
    seen = 0

    def work(export: Export) -> list[str]:
        nonlocal seen
        export.progress = 0.0
        seen = NetworkModel.objects.values_list("content_version", flat=True).get(
            pk=export.model_id
        )
        export.files, export.manifest.name, export.manifest_sha256 = _write(
            export, Heartbeat(export, progress, log=True)
        )
        return ["files", "manifest", "manifest_sha256"]

    def succeeded(export: Export) -> list[str]:
        # The export changes the model page (its downloads), so the page's cached copies go;
        # when nothing else changed while it ran, it shows the model as it is after that bump.
        bumped = NetworkModel.objects.filter(pk=export.model_id, content_version=seen).update(
            content_version=F("content_version") + 1
        )
        if not bumped:
            model_touch(export.model_id)
        export.content_version = seen + 1 if bumped else seen
        return ["content_version"]

    export = job_run(EXPORT_JOBS, export_id, work, related=("model",), succeeded=succeeded)
    if isinstance(export, Export) and export.status == Export.Status.SUCCEEDED:
        export.model.refresh_from_db(fields=["content_version"])
    return export  # type: ignore[return-value]


def _write(export: Export, report: Progress) -> tuple[list[dict[str, Any]], str, str]:
    """Store every table (JSON Lines, and Parquet when pyarrow is installed) and the manifest."""
    model = export.model
    writers = _writers()
    files: list[dict[str, Any]] = []
    tables: dict[str, Any] = {}
    steps = len(TABLES)
    for number, (table, rows_of) in enumerate(TABLE_ROWS.items()):
        columns = TABLES[table]
        rows = [_clean(row, columns) for row in rows_of(model)]
        tables[table] = {"rows": len(rows), "columns": [[c.name, c.type] for c in columns]}
        for fmt, (suffix, encode) in writers.items():
            data = encode(rows, columns)
            name, sha = store_content(data, folder=FOLDER, suffix=suffix)
            files.append(
                {
                    "name": f"{table}{suffix}",
                    "table": table,
                    "format": fmt,
                    "rows": len(rows),
                    "bytes": len(data),
                    "sha256": sha,
                    "path": name,
                }
            )
        report((number + 1) / (steps + 1), f"{table}: {len(rows)} rows")
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "model": f"{model.slug}@{model.version}",
        "display_name": model.display_name,
        "weights_source": model.weights_source,
        "weights_sha256": model.weights_sha256,
        "created": timezone.now().isoformat(),
        "formats": sorted(writers),
        "tables": tables,
        "files": files,
    }
    data = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
    name, sha = store_content(data, folder=FOLDER, suffix=".json")
    report(1.0, f"manifest {sha[:12]}: {len(files)} files")
    return files, name, sha


# --- encoding ---------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they are exported as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _clean(row: dict[str, Any], columns: tuple[Column, ...]) -> dict[str, Any]:
    """The row's columns in the table's order, every value JSON-safe."""
    return {c.name: _finite(row.get(c.name)) for c in columns}


def _jsonl(rows: list[dict[str, Any]], columns: tuple[Column, ...]) -> bytes:
    lines = (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in rows)
    return "".join(lines).encode()


def _parquet(rows: list[dict[str, Any]], columns: tuple[Column, ...]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "str": pa.string(),
        "json": pa.string(),  # nested values as JSON text: one schema whatever they hold
        "int_list": pa.list_(pa.int64()),
        "float_list": pa.list_(pa.float64()),
    }
    arrays = {}
    for column in columns:
        values = [row[column.name] for row in rows]
        if column.type == "json":
            values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
        arrays[column.name] = pa.array(values, type=types[column.type])
    table = pa.table(arrays, schema=pa.schema([(c.name, types[c.type]) for c in columns]))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


Encoder = Callable[[list[dict[str, Any]], tuple[Column, ...]], bytes]


def _writers() -> dict[str, tuple[str, Encoder]]:
    """Format → (file suffix, encoder): JSON Lines always, Parquet when pyarrow is installed."""
    writers: dict[str, tuple[str, Encoder]] = {"jsonl": (".jsonl", _jsonl)}
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        logger.warning("pyarrow is not installed: exports have JSON Lines only")
    else:
        writers["parquet"] = (".parquet", _parquet)
    return writers


# --- the reaper -------------------------------------------------------------------------------


def exports_reap(*, stale_after: timedelta | None = None) -> list[int]:
    """Requeue running exports whose heartbeat went stale (their worker died); returns their ids.

    One that has used its attempts, or whose model already has a queued export, fails instead.
    """
    return jobs_reap(EXPORT_JOBS, stale_after=stale_after)
