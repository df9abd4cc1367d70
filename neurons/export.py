"""Bulk export of one model version (issue 8): its tables as JSON Lines and Parquet, a manifest.

Tables: layers, units (with curator labels), renders, dataset examples, connections and the
public notes about the model's units (what an anonymous visitor may read). Every file goes to
the default storage under its sha256 (`rendering.storage.store_content`); `manifest.json` names
each file with its rows, bytes and sha256, so a download can be verified without the site.

Jobs follow the render jobs' discipline: the `Export` row first, its task sent on commit, a
claim by conditional update, heartbeats, retries up to `RENDER_MAX_ATTEMPTS`, a reaper for
exports whose worker died. At most one export per model version waits in the queue; asking
again while it waits adds nothing, since it will read the newest data when it runs. An export
records the model's content version it shows: `export_is_current` says whether anything its
pages show changed since.
"""

import io
import json
import logging
import math
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch, Q
from django.utils import timezone

from neurons.models import Export, Layer, NetworkModel, Unit
from neurons.progress import Progress, ignore_progress
from neurons.services import model_touch
from rendering.storage import store_content

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


class ExportRefused(Exception):
    """An export that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # int, float, str, json, int_list, float_list


def _columns(spec: str) -> tuple[Column, ...]:
    """`"name:type name:type …"` → columns (the tables read better as one line each)."""
    return tuple(Column(*item.split(":")) for item in spec.split())


TABLES: dict[str, tuple[Column, ...]] = {
    "layers": _columns(
        "id:int name:str module_path:str order:int kind:str num_units:int output_shape:int_list "
        "receptive_field:int receptive_field_stride:int url:str"
    ),
    "units": _columns("id:int layer:str index:int key:str curator_label:str url:str"),
    "renders": _columns(
        "id:int layer:str index:int technique:str params:json params_hash:str variant:int "
        "image_path:str image_url:str thumbnail_url:str image_sha256:str objective:float "
        "created:str"
    ),
    "dataset_examples": _columns(
        "layer:str index:int dataset:str dataset_manifest_sha256:str params_hash:str "
        "negative_source:str which:str rank:int image:int path:str value:float y:int x:int "
        "box:int_list full_path:str"
    ),
    "connections": _columns(
        "layer:str index:int direction:str other_layer:str method:str other_indices:int_list "
        "strengths:float_list"
    ),
    "notes": _columns(
        "id:int title:str body:str body_html:str author:str institution:str published:str "
        "url:str units:json edges:json"
    ),
}


# --- asking for an export ---------------------------------------------------------------------


def export_request(
    *, model: NetworkModel, requested_by: object | None = None, enqueue: bool = True
) -> Export:
    """The queued export of `model`: a new row (its task sent on commit), or the one waiting."""
    if model.status != NetworkModel.Status.READY:
        raise ExportRefused(f"{model} is not ready ({model.status})")
    waiting = Export.objects.filter(model=model, status=Export.Status.QUEUED).first()
    if waiting is not None:
        if enqueue and waiting.error.startswith("not queued:"):  # the broker was down: again
            transaction.on_commit(partial(_send, waiting.pk))
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
        transaction.on_commit(partial(_send, export.pk))
    return export


def _send(export_id: int) -> None:
    """Send the export's task (on commit); a broker that is down leaves the row queued with a
    "not queued: broker unreachable (…)" note, and the next request for it sends it again."""
    from neurons.tasks import export_task
    from rendering.tasks import NOT_QUEUED, task_send

    export = Export.objects.filter(pk=export_id).first()
    if export is None:
        return
    note = task_send(export_task, args=[export_id], task_id=export.task_id)
    if note:
        Export.objects.filter(pk=export_id).update(error=note)
    else:
        Export.objects.filter(pk=export_id, error__startswith=NOT_QUEUED).update(error="")


def export_is_current(export: Export) -> bool:
    """Whether the export shows everything the model's pages show now."""
    return (
        export.status == Export.Status.SUCCEEDED
        and export.content_version == export.model.content_version
    )


# --- running one ------------------------------------------------------------------------------


def export_run(*, export_id: int, progress: Progress = ignore_progress) -> Export | None:
    """Claim a queued export and write its files. None when another worker has it.

    A failure goes back to the queue until `RENDER_MAX_ATTEMPTS`, then stays failed; so does an
    export that a newer queued one replaces.
    """
    now = timezone.now()
    claimed = Export.objects.filter(pk=export_id, status=Export.Status.QUEUED).update(
        status=Export.Status.RUNNING,
        started=now,
        heartbeat=now,
        progress=0.0,
        attempts=F("attempts") + 1,
    )
    if claimed != 1:
        return None
    export = Export.objects.select_related("model").get(pk=export_id)

    def report(fraction: float, message: str) -> None:
        stamp = timezone.now()
        export.log += f"[{stamp:%H:%M:%S}] {message}\n"
        Export.objects.filter(pk=export.pk).update(
            log=export.log, progress=fraction, heartbeat=stamp
        )
        progress(fraction, message)

    try:
        seen = NetworkModel.objects.values_list("content_version", flat=True).get(
            pk=export.model_id
        )
        files, manifest_name, manifest_sha = _write(export, report)
    except Exception as error:
        logger.exception("export %s failed", export.pk)
        _failed(export, error)
        return export
    with transaction.atomic():
        # The export changes the model page (its downloads), so the page's cached copies go;
        # when nothing else changed while it ran, it shows the model as it is after that bump.
        bumped = NetworkModel.objects.filter(pk=export.model_id, content_version=seen).update(
            content_version=F("content_version") + 1
        )
        if not bumped:
            model_touch(export.model_id)
        export.content_version = seen + 1 if bumped else seen
        export.status = Export.Status.SUCCEEDED
        export.progress = 1.0
        export.error = ""
        export.files = files
        export.manifest.name = manifest_name
        export.manifest_sha256 = manifest_sha
        export.finished = timezone.now()
        export.save(
            update_fields=[
                "content_version",
                "status",
                "progress",
                "error",
                "files",
                "manifest",
                "manifest_sha256",
                "finished",
                "log",
            ]
        )
    export.model.refresh_from_db(fields=["content_version"])
    return export


def _failed(export: Export, error: Exception) -> None:
    retry = export.attempts < settings.RENDER_MAX_ATTEMPTS and not isinstance(error, ExportRefused)
    export.error = traceback.format_exc()[-4000:]
    export.log += f"[{timezone.now():%H:%M:%S}] attempt {export.attempts} failed: {error}\n"
    fields = ["status", "error", "log", "finished"]
    if retry:
        export.status = Export.Status.QUEUED
        export.finished = None
        try:
            with transaction.atomic():
                export.save(update_fields=fields)
            return
        except IntegrityError:  # a newer export is queued: it does the work
            export.log += "a newer export is queued; this one stops here\n"
    export.status = Export.Status.FAILED
    export.finished = timezone.now()
    export.save(update_fields=fields)


def _write(export: Export, report: Progress) -> tuple[list[dict[str, Any]], str, str]:
    """Store every table (JSON Lines, and Parquet when pyarrow is installed) and the manifest."""
    model = export.model
    writers = _writers()
    files: list[dict[str, Any]] = []
    tables: dict[str, Any] = {}
    steps = len(TABLES)
    for number, (table, rows_of) in enumerate(_TABLE_ROWS.items()):
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


# --- the tables -------------------------------------------------------------------------------


def _key(model: NetworkModel, layer: str, index: int) -> str:
    return f"{model.slug}@{model.version}/{layer}/{index}"


def _url(name: str | None) -> str:
    """The file's URL: site-relative for local media, absolute for a bucket."""
    return default_storage.url(name) if name else ""


def _layer_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    for layer in Layer.objects.filter(model=model).select_related("model").order_by("order"):
        yield {
            "id": layer.pk,
            "name": layer.name,
            "module_path": layer.module_path,
            "order": layer.order,
            "kind": layer.kind,
            "num_units": layer.num_units,
            "output_shape": list(layer.output_shape),
            "receptive_field": layer.receptive_field,
            "receptive_field_stride": layer.receptive_field_stride,
            "url": layer.get_versioned_url(),
        }


def _unit_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    units = (
        Unit.objects.filter(layer__model=model)
        .select_related("layer__model")
        .order_by("layer__order", "index")
    )
    for unit in units.iterator(chunk_size=2000):
        yield {
            "id": unit.pk,
            "layer": unit.layer.name,
            "index": unit.index,
            "key": _key(model, unit.layer.name, unit.index),
            "curator_label": unit.curator_label,
            "url": unit.get_versioned_url(),
        }


def _render_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    from rendering.models import Render

    renders = (
        Render.objects.filter(layer__model=model)
        .select_related("layer", "unit", "technique")
        .order_by("layer__order", "unit__index", "technique__slug", "params_hash", "variant", "pk")
    )
    for render in renders.iterator(chunk_size=2000):
        yield {
            "id": render.pk,
            "layer": render.layer.name,
            "index": render.unit.index if render.unit is not None else None,
            "technique": render.technique.slug,
            "params": render.params,
            "params_hash": render.params_hash,
            "variant": render.variant,
            "image_path": render.image.name,
            "image_url": _url(render.image.name),
            "thumbnail_url": _url(render.thumbnail.name),
            "image_sha256": render.image_sha256,
            "objective": render.objective,
            "created": render.created.isoformat(),
        }


def _example_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    from rendering.models import UnitExamples

    passes = (
        UnitExamples.objects.filter(unit__layer__model=model)
        .select_related("unit__layer", "dataset")
        .order_by("unit__layer__order", "unit__index", "dataset__slug", "params_hash")
    )
    for found in passes.iterator(chunk_size=500):
        for which, entries in (("top", found.top), ("bottom", found.bottom)):
            for rank, entry in enumerate(entries or []):
                yield {
                    "layer": found.unit.layer.name,
                    "index": found.unit.index,
                    "dataset": found.dataset.slug,
                    "dataset_manifest_sha256": found.dataset.manifest_sha256,
                    "params_hash": found.params_hash,
                    "negative_source": found.negative_source,
                    "which": which,
                    "rank": rank,
                    "image": entry.get("image"),
                    "path": entry.get("path"),
                    "value": entry.get("value"),
                    "y": entry.get("y"),
                    "x": entry.get("x"),
                    "box": entry.get("box"),
                    "full_path": entry.get("full"),
                }


def _connection_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    from rendering.models import Connection

    rows = (
        Connection.objects.filter(unit__layer__model=model)
        .select_related("unit__layer", "pair__source", "pair__target")
        .defer("kernels")
        .order_by("unit__layer__order", "unit__index", "direction", "pair_id")
    )
    for row in rows.iterator(chunk_size=2000):
        other = row.pair.source if row.direction == "in" else row.pair.target
        yield {
            "layer": row.unit.layer.name,
            "index": row.unit.index,
            "direction": row.direction,
            "other_layer": other.name,
            "method": row.pair.method,
            "other_indices": list(row.other_indices),
            "strengths": list(row.strengths),
        }


def _note_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    from annotations.models import NoteEdge, NoteUnit
    from annotations.selectors import author_name, public_notes, with_people

    about = public_notes().filter(note_units__unit__layer__model=model).values("pk")
    notes = (
        with_people(public_notes().filter(pk__in=about))
        .prefetch_related(
            Prefetch(
                "note_units",
                queryset=NoteUnit.objects.select_related("unit__layer__model").order_by("position"),
            ),
            Prefetch(
                "edges",
                queryset=NoteEdge.objects.select_related(
                    "source__layer__model", "target__layer__model"
                ).order_by("pk"),
            ),
        )
        .order_by("pk")
    )
    for note in notes:
        yield {
            "id": note.pk,
            "title": note.title,
            "body": note.body,
            "body_html": note.body_html,
            "author": author_name(note.author),
            "institution": note.institution.slug if note.institution else None,
            "published": note.published.isoformat() if note.published else None,
            "url": note.get_absolute_url(),
            "units": [
                {"key": _unit_key(part.unit), "role": part.role} for part in note.note_units.all()
            ],
            "edges": [
                {
                    "source": _unit_key(edge.source),
                    "target": _unit_key(edge.target),
                    "kind": edge.kind,
                    "strength": edge.strength,
                }
                for edge in note.edges.all()
            ],
        }


def _unit_key(unit: Unit) -> str:
    return _key(unit.layer.model, unit.layer.name, unit.index)


_TABLE_ROWS: dict[str, Callable[[NetworkModel], Iterable[dict[str, Any]]]] = {
    "layers": _layer_rows,
    "units": _unit_rows,
    "renders": _render_rows,
    "dataset_examples": _example_rows,
    "connections": _connection_rows,
    "notes": _note_rows,
}
assert set(_TABLE_ROWS) == set(TABLES)


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
    limit = timezone.now() - (stale_after or timedelta(seconds=settings.RENDER_STALE_AFTER_S))
    stale = Export.objects.filter(
        Q(heartbeat__lt=limit) | Q(heartbeat__isnull=True), status=Export.Status.RUNNING
    )
    requeued = []
    for export in stale:
        give_up = export.attempts >= settings.RENDER_MAX_ATTEMPTS
        message = f"worker stopped sending heartbeats (last {export.heartbeat})"
        running = Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING)
        if not give_up:
            try:
                with transaction.atomic():
                    changed = running.update(
                        status=Export.Status.QUEUED, task_id=str(uuid.uuid4()), error=message
                    )
            except IntegrityError:  # a newer export is queued: it does the work
                give_up = True
            else:
                if changed:
                    requeued.append(export.pk)
                    transaction.on_commit(partial(_send, export.pk))
        if give_up:
            running.update(status=Export.Status.FAILED, error=message, finished=timezone.now())
    return requeued
