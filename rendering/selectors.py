"""Reads of renders shared by pages, the API and exports."""

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Q, QuerySet

from neurons.models import Layer, NetworkModel, Unit
from rendering.engine.circuits import kernel_sign
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
    sign: str  # excitatory | inhibitory | mixed (circuits.kernel_sign)
    kernel_png: str  # data: URI of the kernel heatmap, one pixel per kernel position
    kernel_size: int
    thumbnail: Render | None


def _heatmap(kernel: np.ndarray) -> str:
    """The kernel as a tiny PNG (red excites, blue inhibits, white is zero), inlined: a few
    hundred bytes, against kilobytes and thousands of template variables as SVG cells."""
    import base64
    import io

    from PIL import Image

    scale = float(np.abs(kernel).max()) or 1.0
    v = np.clip(kernel / scale, -1.0, 1.0)
    fade = np.round(255 * (1 - np.abs(v)))
    red = np.where(v >= 0, 255, fade)
    blue = np.where(v >= 0, fade, 255)
    rgb = np.stack([red, fade, blue], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def unit_connections(unit: Unit, *, shown: int = 12) -> dict[str, list[ConnectedUnit]]:
    """Inputs and outputs of `unit`, strongest first, with kernels and the other units' thumbnails.

    Two queries whatever the unit has: its connection rows, then every thumbnail they need.
    """
    panels: dict[str, list[ConnectedUnit]] = {"in": [], "out": []}
    rows = list(Connection.objects.filter(unit=unit).select_related("pair__source", "pair__target"))
    wanted: dict[int, set[int]] = {}
    for row in rows:
        other = row.pair.source if row.direction == "in" else row.pair.target
        wanted.setdefault(other.pk, set()).update(row.other_indices[:shown])
    thumbs: dict[tuple[int, int], Render] = {}
    if wanted:
        condition = Q()
        for layer_id, indices in wanted.items():
            condition |= Q(layer_id=layer_id, unit__index__in=sorted(indices))
        renders = (
            Render.objects.filter(condition, technique__slug="channel", variant=0)
            .select_related("unit")
            .order_by("-created")
        )
        for render in renders:
            assert render.unit is not None
            thumbs.setdefault((render.layer_id, render.unit.index), render)
    for row in rows:
        other = row.pair.source if row.direction == "in" else row.pair.target
        k = row.pair.kernel_size
        kernels = np.frombuffer(bytes(row.kernels), dtype=np.float16).reshape(-1, k, k)
        for position, index in enumerate(row.other_indices[:shown]):
            panels[row.direction].append(
                ConnectedUnit(
                    layer=other.name,
                    index=index,
                    strength=row.strengths[position],
                    sign=kernel_sign(kernels[position]),
                    kernel_png=_heatmap(kernels[position].astype(np.float32)),
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
        histogram_svg(histogram, title=f"Spatial maxima of {unit} over the dataset")
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
