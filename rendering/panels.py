"""What rendering shows on the catalogue's pages (`neurons.panels`): feature visualizations,
dataset examples, tuning curves and connections, one tab per technique. Registered in
`RenderingConfig.ready()`."""

from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from neurons.models import Layer, NetworkModel, Unit
from neurons.panels import PageContents
from rendering import selectors
from rendering.models import LayerConnection, Render, UnitExamples
from rendering.selectors import UNIT_TABS as TECHNIQUE_NAMES
from rendering.views_tray import compare_tray


def _technique_asked(request: HttpRequest, offered: tuple[str, ...]) -> str | None:
    """`?technique=` when the page offers it; None when absent or when it is one this layer
    lacks (a neuron layer has no channel: the page opens on its default); 404 for a name
    that is no technique at all."""
    asked = request.GET.get("technique")
    if asked is None or (asked in TECHNIQUE_NAMES and asked not in offered):
        return None
    if asked not in offered:
        raise Http404(f"no technique {asked!r} here; this page has {', '.join(offered)}")
    return asked


def _tab_panel(unit: Unit, technique: str) -> dict[str, Any]:
    """What one tab of a unit page shows; the page builds nothing for the other tabs."""
    if technique == "examples":
        return {"examples": selectors.unit_examples(unit)}
    if technique == "tuning":
        return {"tuning": selectors.unit_tuning(unit)}
    if technique == "connections":
        return {"connections": selectors.unit_connections(unit)}
    return {"renders": selectors.unit_technique_renders(unit, technique)}


class RenderingContents(PageContents):
    def model_thumbnail(self, model: NetworkModel) -> Render | None:
        return selectors.model_thumbnail(model)

    def model_layers(
        self, model: NetworkModel
    ) -> tuple[dict[int, list[Any]], dict[int, list[str]]]:
        return selectors.model_strips(model), selectors.model_techniques(model)

    def layer_page(self, request: HttpRequest, layer: Layer, units: list[Unit]) -> dict[str, Any]:
        techniques = layer.grid_techniques
        contents = selectors.layer_contents(layer)
        # Open on a technique that has something to show (a non-spatial layer has no channel).
        technique = _technique_asked(request, techniques) or next(
            (t for t in techniques if contents[t]), techniques[0]
        )
        cells: list[tuple[Unit, Render | None, UnitExamples | None]] = []
        # An empty technique leaves `cells` empty: the page says so instead of drawing grey
        # squares.
        if contents[technique] and technique == "examples":
            cells = [
                (unit, None, examples) for unit, examples in selectors.layer_examples(layer, units)
            ]
        elif contents[technique]:
            thumbnails = selectors.layer_thumbnails(layer, units, technique)
            cells = [(unit, thumbnails.get(unit.index), None) for unit in units]
        return {
            "cells": cells,
            "layer_renders": selectors.layer_renders(layer),
            "technique": technique,
            "techniques": [(t, TECHNIQUE_NAMES[t], contents[t]) for t in techniques],
            "filled": [(t, TECHNIQUE_NAMES[t]) for t in techniques if contents[t]],
            # An output layer with nothing drawn yet still lists its units by class name.
            "named_units": [] if cells else [unit for unit in units if unit.class_name],
            "technique_name": TECHNIQUE_NAMES[technique],
            "has_weights": self.layer_has_weights(layer.pk),
        }

    def unit_page(self, request: HttpRequest, unit: Unit) -> dict[str, Any]:
        tabs = selectors.unit_tabs(unit.layer)
        contents = selectors.unit_contents(unit)
        technique = _technique_asked(request, tabs) or next(
            (t for t in tabs if contents[t]), tabs[0]
        )
        job = selectors.technique_active_job(unit, technique)
        return {
            **_tab_panel(unit, technique),
            "technique": technique,
            "technique_name": TECHNIQUE_NAMES[technique],
            "tabs": [(t, TECHNIQUE_NAMES[t], contents[t]) for t in tabs],
            "has_content": contents[technique],
            "render_tab": technique in selectors.RENDER_TABS,
            "active_job": job,
            "job_state": selectors.job_state(job),
        }

    def unit_images(self, unit: Unit) -> QuerySet[Render]:
        return selectors.unit_renders(unit)

    def unit_thumbnails(self, units: list[Unit]) -> list[tuple[Unit, Any]]:
        """Each unit with its channel render's thumbnail, as the layer grid finds them (one
        query per layer the units are in)."""
        by_layer: dict[int, list[Unit]] = {}
        for unit in units:
            by_layer.setdefault(unit.layer_id, []).append(unit)
        thumbnails: dict[tuple[int, int], Render] = {}
        for layer_units in by_layer.values():
            layer = layer_units[0].layer
            for index, found in selectors.layer_thumbnails(layer, layer_units).items():
                thumbnails[(layer.pk, index)] = found
        return [(unit, thumbnails.get((unit.layer_id, unit.index))) for unit in units]

    def layer_has_weights(self, layer_id: int) -> bool:
        return LayerConnection.objects.filter(target_id=layer_id).exists()

    def layer_weights_png(self, model_ref: str, layer: Layer) -> str | None:
        if not self.layer_has_weights(layer.pk):
            return None
        kwargs = {"model": model_ref, "layer": layer.name}
        return reverse("rendering:layer-weights-png", kwargs=kwargs)

    def compare_tray(self, request: HttpRequest) -> HttpResponse:
        return compare_tray(request)
