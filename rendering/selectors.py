"""Reads of renders shared by pages, the API and exports."""

from django.db.models import QuerySet

from neurons.models import Layer, Unit
from rendering.models import Render, RenderJob


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
