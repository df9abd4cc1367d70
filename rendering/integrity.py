"""Every stored file a row names, checked against the default storage; and what no row names.

A platform that researchers cite must never serve a row whose file is gone or wrong. This pass
reads every file that a row references (renders and their thumbnails, dataset-example sprites
and images, connection matrices, dataset manifests, exports, and any other `FileField`) and
checks that it exists and, where its sha256 is known (recorded on the row, or the file name is
its content hash), that its bytes still hash to it. It also lists the orphans: files in the
storage that no row references.

`repair=True` fixes what can be fixed without a person:

- a render whose image is missing or corrupt: its row is deleted and a render job queued, so
  it is rendered again (a content-addressed file with wrong bytes is deleted first);
- a render whose image is fine but whose thumbnail is not: the thumbnail is derived again;
- dataset examples, connections and exports whose files are missing or corrupt: their rows
  are deleted, so the pass or export can be run again (the report names the command);
- orphans older than an hour are deleted (a younger one may belong to a job that is storing
  a batch before writing its rows).

A file that a row references with the right bytes is never deleted. Dataset manifests, and
files of models this module does not know, are only reported.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.core.files.storage import Storage, default_storage
from django.db import models, transaction
from django.utils import timezone

from microscope_site.progress import Progress, ignore_progress
from microscope_site.storage import file_sha256, store_content
from neurons.models import Export
from rendering.models import Dataset, LayerConnection, Render, RenderJob, UnitExamples
from rendering.services import RenderRefused, render_jobs_create
from rendering.storage import THUMBNAIL_PX, load_image, png_bytes

__all__ = ["ORPHAN_GRACE", "StorageReport", "content_sha256", "verify_storage"]

logger = logging.getLogger(__name__)

ORPHAN_GRACE = timedelta(hours=1)
_CONTENT_NAME = re.compile(r"(?:^|/)(?P<sha>[0-9a-f]{64})\.[A-Za-z0-9]+$")
_CHECKPOINTS = "examples/checkpoints/"


def content_sha256(name: str) -> str | None:
    """The sha256 a content-addressed name (`renders/ab/<sha256>.png`) promises, else None."""
    match = _CONTENT_NAME.search(name)
    return match["sha"] if match else None


@dataclass
class StorageReport:
    checked: int = 0  # file references checked (a row and one of its files)
    files: int = 0  # distinct files read
    missing: int = 0
    corrupt: int = 0
    orphans: int = 0
    orphans_removed: int = 0
    repaired: int = 0
    unresolved: int = 0  # problems still there when the pass ends
    details: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.unresolved == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class _Ref:
    model: str  # "Render", "UnitExamples", …
    pk: int
    field: str  # "image", "top[2].full", "files[3]", …
    name: str
    sha256: str | None  # what the bytes must hash to; None: existence only

    @property
    def row(self) -> str:
        return f"{self.model} #{self.pk} {self.field}"


@dataclass
class _Check:
    """What one pass found about each file, so a file shared by many rows is read once."""

    storage: Storage
    seen: dict[str, tuple[bool, str | None]] = field(default_factory=dict)

    def state(self, ref: _Ref) -> str:
        """One of "ok", "missing" and "corrupt"."""
        if ref.name not in self.seen:
            exists = self.storage.exists(ref.name)
            actual = None
            if exists and (ref.sha256 or content_sha256(ref.name)):
                try:
                    actual = file_sha256(ref.name, self.storage)
                except FileNotFoundError:  # deleted while we looked
                    exists = False
            self.seen[ref.name] = (exists, actual)
        exists, actual = self.seen[ref.name]
        if not exists:
            return "missing"
        expected = {sha for sha in (ref.sha256, content_sha256(ref.name)) if sha}
        if expected and expected != {actual}:
            return "corrupt"
        return "ok"


# --- which rows name which files -----------------------------------------------------------

_KNOWN: set[type[models.Model]] = {Render, UnitExamples, LayerConnection, Dataset, Export}


def _refs() -> Iterator[_Ref]:
    for pk, image, sha, thumbnail in Render.objects.values_list(
        "pk", "image", "image_sha256", "thumbnail"
    ).iterator(chunk_size=2000):
        yield _Ref("Render", pk, "image", image, sha or None)
        yield _Ref("Render", pk, "thumbnail", thumbnail, None)
    for pk, sprite_top, sprite_bottom, top, bottom in UnitExamples.objects.values_list(
        "pk", "sprite_top", "sprite_bottom", "top", "bottom"
    ).iterator(chunk_size=2000):
        yield _Ref("UnitExamples", pk, "sprite_top", sprite_top, None)
        yield _Ref("UnitExamples", pk, "sprite_bottom", sprite_bottom, None)
        for side, entries in (("top", top), ("bottom", bottom)):
            for position, entry in enumerate(entries or []):
                if entry.get("full"):
                    yield _Ref("UnitExamples", pk, f"{side}[{position}].full", entry["full"], None)
    for pk, matrix in LayerConnection.objects.values_list("pk", "matrix").iterator():
        yield _Ref("LayerConnection", pk, "matrix", matrix, None)
    for pk, manifest, sha in Dataset.objects.values_list("pk", "manifest", "manifest_sha256"):
        yield _Ref("Dataset", pk, "manifest", manifest, sha or None)
    for pk, manifest, sha, files in Export.objects.values_list(
        "pk", "manifest", "manifest_sha256", "files"
    ).iterator():
        if manifest:
            yield _Ref("Export", pk, "manifest", manifest, sha or None)
        for position, entry in enumerate(files or []):
            yield _Ref("Export", pk, f"files[{position}]", entry["path"], entry.get("sha256"))
    yield from _other_file_fields()


def _other_file_fields() -> Iterator[_Ref]:
    """Every `FileField` of a model this module does not know (checked, never repaired)."""
    for model in apps.get_models():
        if model in _KNOWN:
            continue
        for model_field in model._meta.get_fields():
            if not isinstance(model_field, models.FileField):
                continue
            rows = model._default_manager.exclude(**{model_field.name: ""}).exclude(
                **{f"{model_field.name}__isnull": True}
            )
            for pk, name in rows.values_list("pk", model_field.name).iterator():
                yield _Ref(model.__name__, pk, model_field.name, name, None)


def _kept(storage: Storage) -> tuple[set[str], tuple[str, ...]]:
    """Files no row names that are still in use: (names, prefixes).

    Caricature inputs (named by their sha256 in render params), the checkpoints of dataset
    passes and the states they point to, and the images of datasets kept in the storage.
    """
    names: set[str] = set()
    for model in (RenderJob, Render):
        for params in model.objects.filter(params__has_key="image_sha256").values_list(
            "params", flat=True
        ):
            sha = str(params["image_sha256"])
            names.add(f"inputs/{sha[:2]}/{sha}.png")
    prefixes = [_CHECKPOINTS]
    for location in Dataset.objects.values_list("location", flat=True):
        if location.startswith("storage:"):
            prefix = location.removeprefix("storage:").strip("/")
            prefixes.append(f"{prefix}/" if prefix else "")
    for name in _walk(storage, _CHECKPOINTS.rstrip("/")):
        try:
            with storage.open(name, "rb") as handle:
                names.add(str(json.loads(handle.read())["state"]))
        except (OSError, ValueError, KeyError):
            continue  # a pointer being rewritten right now, or not one of ours
    return names, tuple(prefixes)


def _walk(storage: Storage, folder: str = "") -> Iterator[str]:
    """Every file under `folder` of the storage, as names relative to its root."""
    try:
        dirs, files = storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    base = f"{folder}/" if folder else ""
    for name in sorted(files):
        yield f"{base}{name}"
    for name in sorted(dirs):
        yield from _walk(storage, f"{base}{name}")


# --- the pass --------------------------------------------------------------------------------


def verify_storage(*, repair: bool = False, progress: Progress = ignore_progress) -> StorageReport:
    """Check every row's files (exists, sha256) and list orphans; `repair` as the module says."""
    storage = default_storage
    report = StorageReport()
    check = _Check(storage)
    bad: list[tuple[_Ref, str]] = []
    referenced: set[str] = set()
    progress(0.0, "checking the files rows reference")
    estimate = max(1, 2 * Render.objects.count() + 2 * UnitExamples.objects.count())
    for ref in _refs():
        referenced.add(ref.name)
        report.checked += 1
        state = check.state(ref)
        if state != "ok":
            bad.append((ref, state))
        if report.checked % 1000 == 0:
            fraction = 0.6 * min(1.0, report.checked / estimate)
            progress(fraction, f"{report.checked} file references checked")
    report.files = len(check.seen)
    report.missing = sum(state == "missing" for _, state in bad)
    report.corrupt = sum(state == "corrupt" for _, state in bad)
    progress(0.6, f"{report.checked} references, {len(bad)} problems; listing the storage")
    kept, prefixes = _kept(storage)
    now = timezone.now()
    orphans: list[tuple[str, bool]] = []  # (name, older than ORPHAN_GRACE)
    for name in _walk(storage):
        if name in referenced or name in kept or name.startswith(prefixes):
            continue
        orphans.append((name, _older_than(storage, name, now - ORPHAN_GRACE)))
    report.orphans = len(orphans)
    progress(0.8, f"{len(orphans)} orphans")
    if repair:
        _repair_rows(bad, report, check)
    else:
        for ref, state in bad:
            report.details.append(_detail(state, ref, _advice(ref)))
        report.unresolved += len(bad)
    _orphans(orphans, report, storage, repair=repair)
    progress(1.0, "done")
    return report


def _older_than(storage: Storage, name: str, limit: Any) -> bool:
    """Whether `name` was last written before `limit`. A file whose age is unknown counts as
    young, so `--repair` never deletes it: on a storage that cannot date files (it keeps
    Django's base `Storage.get_modified_time`, which only raises), or one gone meanwhile."""
    method = getattr(storage.get_modified_time, "__func__", None)  # through default_storage
    if method is Storage.get_modified_time:
        return False
    try:
        return bool(storage.get_modified_time(name) < limit)
    except OSError:  # removed since it was listed
        return False


def _detail(kind: str, ref: _Ref | None, action: str, name: str = "") -> dict[str, str]:
    return {
        "kind": kind,
        "name": ref.name if ref else name,
        "row": ref.row if ref else "",
        "action": action,
    }


def _advice(ref: _Ref) -> str:
    return {
        "Render": "--repair deletes the render and queues it again",
        "UnitExamples": "--repair deletes the pass's rows; then run `manage.py examples` again",
        "LayerConnection": "--repair deletes the row; then run `manage.py connections` again",
        "Export": "--repair deletes the export; then request a new one",
        "Dataset": "register the dataset again (`manage.py dataset_register`)",
    }.get(ref.model, "restore the file from a backup")


def _orphans(
    orphans: list[tuple[str, bool]],
    report: StorageReport,
    storage: Storage,
    *,
    repair: bool,
) -> None:
    # A row written during the pass may name an old orphan (content names are reused), so the
    # references are read again right before deleting. (Files that rows named when the pass
    # began are not orphans, whatever the repairs deleted since: the next pass sees those.)
    now_referenced = {ref.name for ref in _refs()} if repair and orphans else set()
    for name, old in orphans:
        if name in now_referenced:
            report.orphans -= 1
            report.details.append(
                _detail("orphan", None, "not an orphan: a row names it now", name)
            )
        elif repair and old:
            storage.delete(name)
            report.orphans_removed += 1
            report.details.append(_detail("orphan", None, "deleted (older than an hour)", name))
        elif old:
            report.unresolved += 1
            report.details.append(_detail("orphan", None, "--repair deletes it", name))
        else:
            action = "kept: younger than an hour (a job may be storing it)"
            report.details.append(_detail("orphan", None, action, name))


# --- repairs -----------------------------------------------------------------------------------


def _repair_rows(bad: list[tuple[_Ref, str]], report: StorageReport, check: _Check) -> None:
    by_model: dict[str, list[tuple[_Ref, str]]] = defaultdict(list)
    for ref, state in bad:
        by_model[ref.model].append((ref, state))
    for name in {ref.name for ref, state in bad if state == "corrupt"}:
        promised = content_sha256(name)
        exists, actual = check.seen[name]
        if promised and exists and actual != promised:
            # Wrong bytes under a content name are wrong for every row that names it.
            check.storage.delete(name)
    _repair_renders(by_model.pop("Render", []), report)
    _repair_examples(by_model.pop("UnitExamples", []), report)
    for model, label in ((LayerConnection, "connections"), (Export, "export")):
        problems = by_model.pop(model.__name__, [])
        pks = {ref.pk for ref, _ in problems}
        deleted = dict(_describe(model, pks))
        model._default_manager.filter(pk__in=pks).delete()
        for ref, state in problems:
            report.repaired += 1
            what = deleted.get(ref.pk, f"{ref.model} #{ref.pk}")
            report.details.append(
                _detail(state, ref, f"deleted {what}; run the {label} again to make it anew")
            )
    for problems in by_model.values():  # datasets and models this module does not know
        for ref, state in problems:
            report.unresolved += 1
            report.details.append(_detail(state, ref, f"not repaired: {_advice(ref)}"))


def _describe(model: type[models.Model], pks: set[int]) -> Iterator[tuple[int, str]]:
    for row in model._default_manager.filter(pk__in=pks):
        yield row.pk, f"{model.__name__} #{row.pk} ({row})"


def _repair_renders(problems: list[tuple[_Ref, str]], report: StorageReport) -> None:
    images = {ref.pk for ref, _ in problems if ref.field == "image"}
    renders = Render.objects.select_related("technique", "unit", "layer__model").in_bulk(
        {ref.pk for ref, _ in problems}
    )
    # Thumbnails alone: derived again from the image, which is fine.
    for ref, state in problems:
        render = renders.get(ref.pk)
        if ref.field != "thumbnail" or ref.pk in images or render is None:
            continue
        name, _ = store_content(
            png_bytes(load_image(str(render.image.name)), THUMBNAIL_PX), folder="thumbs"
        )
        Render.objects.filter(pk=render.pk).update(thumbnail=name)
        report.repaired += 1
        report.details.append(
            _detail(state, ref, f"thumbnail derived again from the image: {name}")
        )
    # Images: the render (every variant of it) goes, and a job renders it again.
    again: dict[tuple[int, int, str], tuple[Render, set[int]]] = {}
    for pk in sorted(images):
        render = renders.get(pk)
        if render is None:
            continue
        key = (render.layer_id, render.technique_id, render.params_hash)
        again.setdefault(key, (render, set()))
        if render.unit is not None:
            again[key][1].add(render.unit.index)
    actions: dict[int, str] = {}
    with transaction.atomic():
        for render, units in again.values():
            same = Render.objects.filter(
                layer_id=render.layer_id,
                technique_id=render.technique_id,
                params_hash=render.params_hash,
            )
            if render.unit is None:
                same = same.filter(unit__isnull=True)
            else:
                same = same.filter(unit__index__in=units)
            doomed = list(same.values_list("pk", flat=True))
            same.delete()
            try:
                jobs = render_jobs_create(
                    layer=render.layer,
                    technique=render.technique.slug,
                    params=render.params,
                    units=sorted(units) if render.unit is not None else None,
                )
            except RenderRefused as error:
                note = f"deleted; could not queue it again: {error}"
            else:
                queued = ", ".join(f"#{job.pk}" for job in jobs) or "an active job already"
                note = f"deleted the render; render job {queued} renders it again"
            for pk in doomed:
                actions[pk] = note
    for ref, state in problems:
        if ref.pk in images:
            report.repaired += 1
            report.details.append(_detail(state, ref, actions.get(ref.pk, "row already gone")))


def _repair_examples(problems: list[tuple[_Ref, str]], report: StorageReport) -> None:
    """A pass's rows go together: a pass whose rows exist is not run again, even in part."""
    if not problems:
        return
    pass_of = {
        pk: (dataset_id, phash)
        for pk, dataset_id, phash in UnitExamples.objects.filter(
            pk__in={ref.pk for ref, _ in problems}
        ).values_list("pk", "dataset_id", "params_hash")
    }
    notes: dict[tuple[int, str], str] = {}
    for dataset_id, phash in set(pass_of.values()):
        rows = UnitExamples.objects.filter(dataset_id=dataset_id, params_hash=phash)
        first = rows.select_related("dataset", "unit__layer__model").first()
        if first is None:
            continue
        layers = sorted(set(rows.values_list("unit__layer__name", flat=True)))
        model = first.unit.layer.model
        count, _ = rows.delete()
        notes[(dataset_id, phash)] = (
            f"deleted the {count} rows of its dataset-examples pass; run `manage.py examples "
            f"{model.slug}@{model.version} --dataset {first.dataset.slug} --layers "
            f"{','.join(layers)}` to compute them again"
        )
    for ref, state in problems:
        report.repaired += 1
        key = pass_of.get(ref.pk)
        report.details.append(
            _detail(state, ref, notes.get(key, "row already gone") if key else "row already gone")
        )
