"""The unit sitemap's files are small and kept in the cache until the catalogue changes."""

import re

import pytest
from django.test import Client

from neurons.models import NetworkModel, Unit
from neurons.services import model_touch
from neurons.sitemaps import UnitSitemap

pytestmark = pytest.mark.django_db


def test_unit_files_hold_at_most_ten_thousand_urls() -> None:
    assert UnitSitemap.limit == 10_000


def test_every_unit_is_listed_once_at_its_versioned_url(
    client: Client, inceptionv1: NetworkModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(UnitSitemap, "limit", 2000)
    index = client.get("/sitemap.xml").content.decode()
    files = [loc for loc in re.findall(r"<loc>([^<]*)</loc>", index) if "units" in loc]
    total = Unit.objects.filter(layer__model__status="ready").count()
    assert len(files) == -(-total // 2000)
    listed = []
    for url in files:
        listed += re.findall(r"<loc>([^<]*)</loc>", client.get(url).content.decode())
    expected = [
        "http://testserver" + unit.get_versioned_url()
        for unit in Unit.objects.select_related("layer__model").order_by("pk")
    ]
    assert listed == expected


def test_a_section_file_comes_from_the_cache_until_a_model_changes(
    client: Client, inceptionv1: NetworkModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(UnitSitemap, "limit", 100)
    first = client.get("/sitemap-units.xml", {"p": "2"})
    again = client.get("/sitemap-units.xml", {"p": "2"})
    assert again["X-Page-Cache"] == "hit" and again.content == first.content
    assert again["Content-Type"] == first["Content-Type"]
    layer = inceptionv1.layers.get(order=0)
    from neurons.services import layer_rename

    layer_rename(model_slug="inceptionv1", name=layer.name, new_name="stem")
    model_touch(inceptionv1.pk)
    renamed = client.get("/sitemap-units.xml", {"p": "1"})
    assert renamed.get("X-Page-Cache") != "hit"
    assert f"/models/inceptionv1@{inceptionv1.version}/stem/0/" in renamed.content.decode()
    assert client.get("/sitemap-units.xml", {"p": "999"}).status_code == 404
