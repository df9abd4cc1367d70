"""Reads of renders shared by pages, the API and exports."""

from dataclasses import dataclass

import numpy as np
from django.db.models import QuerySet

from neurons.models import Layer, NetworkModel, Unit
from rendering.models import Connection, Render, RenderJob


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
    kernel_cells: list[tuple[int, int, str]]  # (x, y, fill) of the kernel heatmap
    kernel_size: int
    thumbnail: Render | None


def _heatmap(kernel: np.ndarray) -> list[tuple[int, int, str]]:
    scale = float(np.abs(kernel).max()) or 1.0
    cells = []
    for (y, x), value in np.ndenumerate(kernel):
        v = max(-1.0, min(1.0, float(value) / scale))
        fade = round(255 * (1 - abs(v)))
        fill = f"rgb(255,{fade},{fade})" if v >= 0 else f"rgb({fade},{fade},255)"
        cells.append((x, y, fill))
    return cells


def unit_connections(unit: Unit, *, shown: int = 12) -> dict[str, list[ConnectedUnit]]:
    """Inputs and outputs of `unit`, strongest first, with kernels and the other units' thumbnails."""
    panels: dict[str, list[ConnectedUnit]] = {"in": [], "out": []}
    rows = Connection.objects.filter(unit=unit).select_related("pair__source", "pair__target")
    for row in rows:
        other = row.pair.source if row.direction == "in" else row.pair.target
        k = row.pair.kernel_size
        kernels = np.frombuffer(bytes(row.kernels), dtype=np.float16).reshape(-1, k, k)
        indices = row.other_indices[:shown]
        others = list(other.units.filter(index__in=indices))
        thumbs = layer_thumbnails(other, others)
        for position, index in enumerate(indices):
            panels[row.direction].append(
                ConnectedUnit(
                    layer=other.name,
                    index=index,
                    strength=row.strengths[position],
                    kernel_cells=_heatmap(kernels[position].astype(np.float32)),
                    kernel_size=k,
                    thumbnail=thumbs.get(index),
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
