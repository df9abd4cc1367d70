"""Reads of renders shared by pages, the API and exports."""

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Q, QuerySet
from django.template.defaultfilters import floatformat

from microscope_site.rows import JoinedSelect, sql_row, sql_rows
from neurons.models import Layer, NetworkModel, Technique, Unit
from rendering.engine.connections import kernel_sign
from rendering.models import (
    Connection,
    LayerConnection,
    Render,
    RenderJob,
    TuningCurve,
    UnitExamples,
)


def unit_renders(unit: Unit) -> QuerySet[Render]:
    return (
        Render.objects.filter(unit=unit)
        .select_related("technique")
        .order_by("technique__slug", "-created", "variant")
    )


def layer_renders(layer: Layer) -> QuerySet[Render]:
    return Render.objects.filter(layer=layer, unit__isnull=True).select_related("technique")


def layer_thumbnails(
    layer: Layer, units: list[Unit], technique: str = "channel"
) -> dict[int, Render]:
    """The newest render of each of `units` with `technique` (first diversity image)."""
    newest: dict[int, Render] = {}
    renders = Render.objects.filter(
        layer=layer, technique__slug=technique, variant=0, unit__in=units
    ).order_by("-created")
    for render in renders.select_related("unit"):
        assert render.unit is not None
        newest.setdefault(render.unit.index, render)
    return newest


def unit_active_job(unit: Unit) -> RenderJob | None:
    return (
        RenderJob.objects.filter(
            layer=unit.layer,
            status__in=RenderJob.ACTIVE,
            unit_start__lte=unit.index,
            unit_stop__gt=unit.index,
        )
        .order_by("created")
        .first()
    )


@dataclass
class ConnectedUnit:
    layer: str
    index: int
    strength: float
    sign: str  # excitatory | inhibitory | mixed (connections.kernel_sign)
    kernel_png: str  # data: URI of the kernel heatmap, one pixel per kernel position
    kernel_size: int
    thumbnail: Render | None

    # What the connections tab prints, worked out once per connection rather than by
    # template filters and tags per use (the tab lists 24; their template was a third of
    # an InceptionV1 unit page's build).
    @property
    def name(self) -> str:
        return f"{self.layer}:{self.index}"

    @property
    def strength_text(self) -> str:
        return floatformat(self.strength, 3)

    @property
    def tone(self) -> str:
        """The strength's class: mixed, neg (inhibits) or pos (excites)."""
        if self.sign == "mixed":
            return "mixed"
        return "neg" if self.strength < 0 else "pos"


def _heatmaps(kernels: np.ndarray) -> list[str]:
    """Each (k, k) kernel as a tiny PNG (red excites, blue inhibits, white is zero, scaled to
    its own largest weight), inlined: a few hundred bytes, against kilobytes and thousands of
    template variables as SVG cells. One numpy pass for all of them."""
    import base64

    scale = np.abs(kernels).max(axis=(1, 2), keepdims=True)
    v = np.clip(kernels / np.where(scale > 0, scale, 1.0), -1.0, 1.0)
    fade = np.round(255 * (1 - np.abs(v)))
    red = np.where(v >= 0, 255, fade)
    blue = np.where(v >= 0, fade, 255)
    rgb = np.stack([red, fade, blue], axis=-1).astype(np.uint8)
    return ["data:image/png;base64," + base64.b64encode(_png_rgb(image)).decode() for image in rgb]


def _png_rgb(rgb: np.ndarray) -> bytes:
    """A (height, width, 3) uint8 array as PNG bytes, written directly: for a kernel of a few
    pixels, PIL's encoder setup costs ten times the encoding (a unit page shows 24)."""
    import struct
    import zlib

    height, width, _ = rgb.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + row.tobytes() for row in rgb)  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# A unit page built afresh reads these; their SQL is built once (`JoinedSelect`), where the
# ORM spent more CPU building each query than the database took to answer it.
_CONNECTION_WITH_LAYERS = JoinedSelect(Connection, "pair__source", "pair__target")
_RENDER_WITH_UNIT = JoinedSelect(Render, "unit")
_RENDER_WITH_TECHNIQUE = JoinedSelect(Render, "technique")
_TECHNIQUE_IS = f"root.technique_id = (SELECT id FROM {Technique._meta.db_table} WHERE slug = %s)"


def unit_connections(unit: Unit, *, shown: int = 12) -> dict[str, list[ConnectedUnit]]:
    """Inputs and outputs of `unit`, strongest first, with kernels and the other units' thumbnails.

    Two queries whatever the unit has: its connection rows, then every thumbnail they need.
    """
    panels: dict[str, list[ConnectedUnit]] = {"in": [], "out": []}
    rows = _CONNECTION_WITH_LAYERS.fetch("root.unit_id = %s", [unit.pk], order_by="root.id")
    wanted: dict[int, set[int]] = {}
    for row in rows:
        other = row.pair.source if row.direction == "in" else row.pair.target
        wanted.setdefault(other.pk, set()).update(row.other_indices[:shown])
    thumbs: dict[tuple[int, int], Render] = {}
    if wanted:
        conditions: list[str] = []
        params: list[Any] = ["channel"]
        for layer_id, indices in wanted.items():
            conditions.append(
                f'(root.layer_id = %s AND unit."index" IN ({", ".join(["%s"] * len(indices))}))'
            )
            params += [layer_id, *sorted(indices)]
        renders = _RENDER_WITH_UNIT.fetch(
            f"{_TECHNIQUE_IS} AND root.variant = 0 AND ({' OR '.join(conditions)})",
            params,
            order_by="root.created DESC",
        )
        for render in renders:
            assert render.unit is not None
            thumbs.setdefault((render.layer_id, render.unit.index), render)
    for row in rows:
        other = row.pair.source if row.direction == "in" else row.pair.target
        k = row.pair.kernel_size
        kernels = np.frombuffer(bytes(row.kernels), dtype=np.float16).reshape(-1, k, k)
        pngs = _heatmaps(kernels[:shown].astype(np.float32))
        for position, index in enumerate(row.other_indices[:shown]):
            panels[row.direction].append(
                ConnectedUnit(
                    layer=other.name,
                    index=index,
                    strength=row.strengths[position],
                    sign=kernel_sign(kernels[position]),
                    kernel_png=pngs[position],
                    kernel_size=k,
                    thumbnail=thumbs.get((other.pk, index)),
                )
            )
    return panels


def model_thumbnail(model: NetworkModel) -> Render | None:
    """A representative image of a model: its newest channel render."""
    return (
        Render.objects.filter(layer__model=model, technique__slug="channel", variant=0)
        .order_by("-created")
        .first()
    )


STRIP_UNITS = 8


NON_SPATIAL_KINDS = ("linear", "attention")


def model_strips(model: NetworkModel) -> dict[int, list[Render]]:
    """Per layer id: channel thumbnails of its first units, for the model page's rows."""
    strips: dict[int, dict[int, Render]] = {}
    renders = (
        Render.objects.filter(
            # A non-spatial layer's units are neurons: their renders use the neuron objective.
            Q(technique__slug="channel")
            | Q(technique__slug="neuron", layer__kind__in=NON_SPATIAL_KINDS),
            layer__model=model,
            variant=0,
            unit__index__lt=STRIP_UNITS,
        )
        .select_related("unit")
        .order_by("-created")
    )
    for render in renders:
        assert render.unit is not None
        strips.setdefault(render.layer_id, {}).setdefault(render.unit.index, render)
    return {layer: [row[i] for i in sorted(row)] for layer, row in strips.items()}


def model_techniques(model: NetworkModel) -> dict[int, list[str]]:
    """Per layer id: the names of what has been computed for it (renders, examples, …)."""
    found: dict[int, set[str]] = {}
    for layer_id, name in (
        Render.objects.filter(layer__model=model)
        .values_list("layer_id", "technique__name")
        .distinct()
    ):
        found.setdefault(layer_id, set()).add(name)
    for layer_id in (
        UnitExamples.objects.filter(unit__layer__model=model)
        .values_list("unit__layer_id", flat=True)
        .distinct()
    ):
        found.setdefault(layer_id, set()).add("Dataset examples")
    for layer_id in (
        TuningCurve.objects.filter(unit__layer__model=model)
        .values_list("unit__layer_id", flat=True)
        .distinct()
    ):
        found.setdefault(layer_id, set()).add("Tuning curves")
    for layer_id in LayerConnection.objects.filter(target__model=model).values_list(
        "target_id", flat=True
    ):
        found.setdefault(layer_id, set()).add("Connections")
    return {layer: sorted(names) for layer, names in found.items()}


def layer_examples(layer: Layer, units: list[Unit]) -> list[tuple[Unit, UnitExamples | None]]:
    """Each unit with its newest dataset examples (the layer grid's "examples" technique)."""
    newest: dict[int, UnitExamples] = {}
    for row in UnitExamples.objects.filter(unit__in=units).order_by("-created"):
        newest.setdefault(row.unit_id, row)
    return [(unit, newest.get(unit.pk)) for unit in units]


@dataclass
class ExamplesView:
    """A unit's dataset examples, ready for the page: each crop's place in its sprite and its
    box on the full image in percent."""

    row: UnitExamples
    sides: list[tuple[str, str, list[dict[str, Any]]]]
    histogram_svg: str


def unit_examples(unit: Unit) -> ExamplesView | None:
    from django.core.files.storage import default_storage

    row = (
        UnitExamples.objects.filter(unit=unit)
        .select_related("dataset")
        .order_by("-created")
        .first()
    )
    if row is None:
        return None
    size = unit.layer.model.input_size
    sides = []
    for side, title, sprite in (
        ("top", "Strongest", row.sprite_top),
        ("bottom", "Most negative", row.sprite_bottom),
    ):
        entries = getattr(row, side)
        sprite_url = sprite.url
        count = len(entries)
        shown = []
        for position, entry in enumerate(entries):
            top, left, bottom, right = entry["box"]
            shown.append(
                {
                    **entry,
                    "sprite_url": sprite_url,
                    "full_url": default_storage.url(entry["full"]),
                    "offset": round(100 * position / (count - 1), 4) if count > 1 else 0,
                    "box_pct": [
                        round(100 * left / size, 2),
                        round(100 * top / size, 2),
                        round(100 * (right - left) / size, 2),
                        round(100 * (bottom - top) / size, 2),
                    ],
                }
            )
        sides.append((side, title, shown))
    from rendering.plots import histogram_svg

    histogram = row.stats.get("histogram")
    svg = (
        histogram_svg(
            histogram,
            title=f"Per-image maximum of {unit.layer.name}:{unit.index}",
            x_label="per-image spatial maximum (log-spaced bins)",
            y_label="images",
        )
        if histogram
        else ""
    )
    return ExamplesView(row=row, sides=sides, histogram_svg=svg)


def unit_tuning(unit: Unit) -> list[TuningCurve]:
    """The newest tuning curve of each stimulus family."""
    newest: dict[str, TuningCurve] = {}
    for curve in TuningCurve.objects.filter(unit=unit).order_by("-created"):
        newest.setdefault(curve.family, curve)
    return [newest[family] for family in sorted(newest)]


# --- the unit page's technique tabs --------------------------------------------------------

# The tabs of a unit page, in order, with the names readers see.
UNIT_TABS: dict[str, str] = {
    "channel": "Channel",
    "neuron": "Neuron",
    "negative": "Negative",
    "diversity": "Diversity",
    "examples": "Dataset examples",
    "tuning": "Tuning curves",
    "connections": "Connections",
}
RENDER_TABS = ("channel", "neuron", "negative", "diversity")


def unit_tabs(layer: Layer) -> tuple[str, ...]:
    """The tabs a unit of `layer` has: a non-spatial layer's unit is one neuron (no channel)."""
    renders = tuple(t for t in layer.grid_techniques if t != "examples")
    return (*renders, "examples", "tuning", "connections")


def unit_contents(unit: Unit) -> dict[str, bool]:
    """Which tabs of `unit` have something to show: one query, whatever the unit has.

    Plain SQL: the ORM's seven EXISTS subqueries cost more to compile (about 6 ms of CPU)
    than everything else a cold unit page asks of the database."""
    sql = (
        f"SELECT DISTINCT t.slug FROM {Render._meta.db_table} r"
        f" JOIN {Technique._meta.db_table} t ON t.id = r.technique_id WHERE r.unit_id = %s"
        + "".join(
            f" UNION ALL SELECT '{slug}' WHERE EXISTS"
            f" (SELECT 1 FROM {model._meta.db_table} WHERE unit_id = %s)"
            for slug, model in (
                ("examples", UnitExamples),
                ("tuning", TuningCurve),
                ("connections", Connection),
            )
        )
    )
    found = {row[0] for row in sql_rows(sql, [unit.pk] * 4)}
    return {slug: slug in found for slug in UNIT_TABS}


def layer_contents(layer: Layer) -> dict[str, bool]:
    """Which techniques of the layer grid have anything for some unit of `layer`: one query.

    Plain SQL, like `unit_contents`: the ORM's EXISTS subqueries cost ~3 ms of CPU to build,
    on every layer page built."""
    renders = tuple(t for t in layer.grid_techniques if t in RENDER_TABS)
    checks = [
        f"SELECT %s WHERE EXISTS (SELECT 1 FROM {Render._meta.db_table} WHERE layer_id = %s"
        f" AND technique_id = (SELECT id FROM {Technique._meta.db_table} WHERE slug = %s)"
        " AND unit_id IS NOT NULL)"
        for _ in renders
    ]
    params: list[Any] = [p for slug in renders for p in (slug, layer.pk, slug)]
    if "examples" in layer.grid_techniques:
        checks.append(
            f"SELECT %s WHERE EXISTS (SELECT 1 FROM {UnitExamples._meta.db_table} e"
            f" JOIN {Unit._meta.db_table} u ON u.id = e.unit_id WHERE u.layer_id = %s)"
        )
        params += ["examples", layer.pk]
    found = {row[0] for row in sql_rows(" UNION ALL ".join(checks), params)}
    return {slug: slug in found for slug in layer.grid_techniques}


def unit_technique_renders(unit: Unit, technique: str) -> list[Render]:
    """The unit's renders with one technique, newest first (diversity images in order)."""
    return _RENDER_WITH_TECHNIQUE.fetch(
        "root.unit_id = %s AND technique.slug = %s",
        [unit.pk, technique],
        order_by="root.created DESC, root.variant",
    )


def _model_has_active_jobs(model_id: int, technique: str) -> bool:
    """Whether any queued or running job of `technique` works on a layer of the model: every
    job that can fill a unit's tab does. Plain SQL (~0.15 ms of CPU against ~1 ms for the
    ORM's), as every unit page built asks it."""
    statuses = list(RenderJob.ACTIVE)
    sql = (
        f"SELECT EXISTS (SELECT 1 FROM {RenderJob._meta.db_table} j"
        f" JOIN {Layer._meta.db_table} l ON l.id = j.layer_id"
        f" JOIN {Technique._meta.db_table} t ON t.id = j.technique_id"
        f" WHERE l.model_id = %s AND t.slug = %s AND j.status IN ({', '.join(['%s'] * len(statuses))}))"
    )
    row = sql_row(sql, [model_id, technique, *statuses])
    return row is not None and bool(row[0])


def technique_active_job(unit: Unit, technique: str) -> RenderJob | None:
    """The queued or running job that will fill this tab of `unit`, if any."""
    layer = unit.layer
    if not _model_has_active_jobs(layer.model_id, technique):
        return None  # the usual answer, found without building the queries below
    jobs = RenderJob.objects.filter(technique__slug=technique, status__in=RenderJob.ACTIVE)
    if technique in RENDER_TABS:
        return (
            jobs.filter(layer=layer, unit_start__lte=unit.index, unit_stop__gt=unit.index)
            .order_by("created")
            .first()
        )
    if technique == "tuning":
        return jobs.filter(layer=layer).order_by("created").first()
    # A dataset pass names its layers; a connections job targets the later layer of a pair
    # and names the earlier one: both can fill this layer's tab from another layer's job.
    for job in jobs.filter(layer__model_id=layer.model_id).order_by("created"):
        if technique == "examples" and layer.name in str(job.params.get("layers", "")).split(","):
            return job
        if technique == "connections" and layer.name in (job.layer.name, job.params.get("source")):
            return job
    return None


@dataclass
class QueuePlace:
    """Where a job stands: how many queued jobs go before it, and a guess at when it is done."""

    ahead: int
    estimate_s: float | None  # None: no job of these kinds has finished here yet


def job_queue_place(job: RenderJob, *, recent: int = 50) -> QueuePlace:
    """Jobs queued before `job` (the `gpu` queue is first in, first out) and an estimate of
    when it finishes: the jobs ahead and itself, each taking as long as the recent finished
    jobs of its technique took on average (one worker; more workers finish sooner)."""
    from collections import Counter

    if job.status == RenderJob.Status.RUNNING:
        ahead_kinds: Counter[int] = Counter()
    else:
        ahead_kinds = Counter(
            RenderJob.objects.filter(
                status=RenderJob.Status.QUEUED, created__lt=job.created
            ).values_list("technique_id", flat=True)
        )
    durations: dict[int, list[float]] = {}
    for technique_id, started, finished in (
        RenderJob.objects.filter(
            status=RenderJob.Status.SUCCEEDED, started__isnull=False, finished__isnull=False
        )
        .order_by("-finished")
        .values_list("technique_id", "started", "finished")[:recent]
    ):
        assert started is not None and finished is not None  # filtered above
        durations.setdefault(technique_id, []).append((finished - started).total_seconds())
    mean = {kind: sum(values) / len(values) for kind, values in durations.items()}
    own = mean.get(job.technique_id)
    if own is None or any(kind not in mean for kind in ahead_kinds):
        return QueuePlace(ahead=sum(ahead_kinds.values()), estimate_s=None)
    remaining = own * (1.0 - job.progress)
    estimate = remaining + sum(mean[kind] * count for kind, count in ahead_kinds.items())
    return QueuePlace(ahead=sum(ahead_kinds.values()), estimate_s=estimate)


def job_state(job: RenderJob | None) -> dict[str, Any] | None:
    """A job as a unit page's tab shows it: status, progress, place in the queue."""
    if job is None:
        return None
    place = job_queue_place(job)
    return {
        "status": job.status,
        "progress": job.progress,
        "ahead": place.ahead,
        "estimate_s": None if place.estimate_s is None else round(place.estimate_s),
    }
