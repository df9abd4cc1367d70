"""sitemap.xml: every ready model version, layer and unit at its immutable versioned URL.

Django's sitemap index splits each section into files of at most `limit` URLs. The unit
section is the big one: its files hold 10,000 URLs (about 0.8 MB), each built from its
layer's URL (one `reverse` per layer, not per unit), and every catalogue section's file is
kept in the cache under the catalogue's content version (`sitemap_section`), so a crawler's
repeated visits cost one lookup until a model changes.
"""

from typing import Any

from django.contrib.sitemaps import Sitemap
from django.contrib.sitemaps import views as sitemap_views
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from neurons.models import Layer, NetworkModel, Unit
from neurons.pagecache import cached_response, response_keep

READY = NetworkModel.Status.READY


class ModelSitemap(Sitemap):  # type: ignore[type-arg]
    limit = 50_000

    def items(self) -> QuerySet[NetworkModel]:
        return NetworkModel.objects.filter(status=READY).order_by("pk")

    def location(self, item: NetworkModel) -> str:
        return item.get_versioned_url()

    def lastmod(self, item: NetworkModel) -> Any:
        return item.created


class LayerSitemap(Sitemap):  # type: ignore[type-arg]
    limit = 50_000

    def items(self) -> QuerySet[Layer]:
        return Layer.objects.filter(model__status=READY).select_related("model").order_by("pk")

    def location(self, item: Layer) -> str:
        return item.get_versioned_url()


class UnitSitemap(Sitemap):  # type: ignore[type-arg]
    """Items are (layer id, unit index) rows: a unit's versioned URL is its layer's plus the
    index, so one query for the layers and one for the page's units build the whole file."""

    limit = 10_000

    def __init__(self) -> None:
        self._layer_urls: dict[int, str] = {}

    def items(self) -> QuerySet[Unit, tuple[int, int]]:
        return (
            Unit.objects.filter(layer__model__status=READY)
            .order_by("pk")
            .values_list("layer_id", "index")
        )

    def location(self, item: tuple[int, int]) -> str:
        layer_id, index = item
        if not self._layer_urls:
            self._layer_urls = {
                layer.pk: layer.get_versioned_url()
                for layer in Layer.objects.filter(model__status=READY).select_related("model")
            }
        return f"{self._layer_urls[layer_id]}{index}/"


SITEMAPS: dict[str, type[Sitemap] | Sitemap] = {  # type: ignore[type-arg]
    "models": ModelSitemap,
    "layers": LayerSitemap,
    "units": UnitSitemap,
}

# Sections whose files show only the catalogue: kept under its content version.
CATALOGUE_SECTIONS = frozenset(SITEMAPS)


def sitemap_section(request: HttpRequest, section: str) -> HttpResponse:
    """One file of a sitemap section (`/sitemap-units.xml?p=2`); the catalogue's sections
    come from the cache while no model has changed."""
    from neurons.selectors import catalogue_version

    if section not in CATALOGUE_SECTIONS or request.method not in ("GET", "HEAD"):
        return _render(sitemap_views.sitemap(request, SITEMAPS, section=section))
    page = request.GET.get("p", "1")
    key = f"sitemap:{section}:{page}:{catalogue_version()}:{request.get_host()}"
    cached = cached_response(key)
    if cached is not None:
        return cached
    response = _render(sitemap_views.sitemap(request, SITEMAPS, section=section))
    if response.status_code == 200:
        response_keep(key, response, ("Content-Type", "X-Robots-Tag", "Last-Modified"))
    return response


def _render(response: HttpResponse) -> HttpResponse:
    if isinstance(response, TemplateResponse):
        response.render()
    return response
