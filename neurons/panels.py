"""What an app above the catalogue shows on the catalogue's pages.

The model, layer, unit, embed and compare pages frame a thing: its names, navigation,
versions and citation. What fills them (feature visualizations, dataset examples, tuning
curves, connections: rendering's) comes from the `PageContents` registered in that app's
`AppConfig.ready()`; the catalogue never imports it. Without one, the pages show the frame.
"""

from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from neurons.models import Layer, NetworkModel, Unit


class PageContents:
    """The contents of the catalogue's pages; this base shows nothing but the frame."""

    def model_thumbnail(self, model: NetworkModel) -> Any:
        """A representative image of a model (its `thumbnail.url`), or None."""
        return None

    def model_layers(
        self, model: NetworkModel
    ) -> tuple[dict[int, list[Any]], dict[int, list[str]]]:
        """Per layer id: images for the model page's row, and the names of what it has."""
        return {}, {}

    def layer_page(self, request: HttpRequest, layer: Layer, units: list[Unit]) -> dict[str, Any]:
        """The layer page's context for `units` (the page shown): at least `technique`."""
        return {"technique": None, "techniques": [], "filled": [], "cells": []}

    def unit_page(self, request: HttpRequest, unit: Unit) -> dict[str, Any]:
        """The unit page's context: at least `technique`, the tab the reader keeps when moving
        to the previous or next unit (None when there are no tabs)."""
        return {"technique": None, "tabs": []}

    def unit_images(self, unit: Unit) -> QuerySet[Any] | list[Any]:
        """A unit's images, best first (the embed card and oEmbed's thumbnail)."""
        return []

    def unit_thumbnails(self, units: list[Unit]) -> list[tuple[Unit, Any]]:
        """Each unit with its thumbnail (or None), for the compare page's cards."""
        return [(unit, None) for unit in units]

    def layer_has_weights(self, layer_id: int) -> bool:
        """Whether the layer's incoming weight matrix exists (its link is offered)."""
        return False

    def layer_weights_png(self, model_ref: str, layer: Layer) -> str | None:
        """The path of the image of the layer's incoming weights, or None."""
        return None

    def compare_tray(self, request: HttpRequest) -> HttpResponse:
        """The comparison tray (`/models/compare/?units=…`)."""
        raise Http404("this site has no comparison tray")


_registered: list[PageContents] = [PageContents()]


def page_contents() -> PageContents:
    return _registered[-1]


def page_contents_register(contents: PageContents) -> None:
    _registered.append(contents)
