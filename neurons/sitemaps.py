"""sitemap.xml: every ready model version, layer and unit at its immutable versioned URL.

Django's sitemap index splits each section into files of at most 50,000 URLs (`limit`).
"""

from typing import Any

from django.contrib.sitemaps import Sitemap
from django.db.models import QuerySet

from neurons.models import Layer, NetworkModel, Unit

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
    limit = 50_000

    def items(self) -> QuerySet[Unit]:
        return (
            Unit.objects.filter(layer__model__status=READY)
            .select_related("layer__model")
            .order_by("pk")
        )

    def location(self, item: Unit) -> str:
        return item.get_versioned_url()


SITEMAPS: dict[str, type[Sitemap]] = {  # type: ignore[type-arg]
    "models": ModelSitemap,
    "layers": LayerSitemap,
    "units": UnitSitemap,
}

from annotations.sitemaps import NoteSitemap  # noqa: E402  (annotations builds on neurons)

SITEMAPS["notes"] = NoteSitemap
