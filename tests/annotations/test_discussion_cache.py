"""A comment refreshes its unit's cached pages and no other: a busy discussion must not empty
the page cache of the whole model (the load bench posts a comment every few requests)."""

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from annotations.comments import comment_create, comment_delete
from annotations.moderation import moderation_set_hidden
from neurons.pagecache import content_version

pytestmark = pytest.mark.django_db

UNIT = "/models/inceptionv1/mixed4c/447/"
EMBED = "/embed/models/inceptionv1/mixed4c/447/"
OTHER_UNIT = "/models/inceptionv1/mixed4c/448/"
LAYER = "/models/inceptionv1/mixed4c/"
MODEL = "/models/inceptionv1/"


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


def _cached(client: Client, *urls: str) -> None:
    for url in urls:
        assert client.get(url)["X-Page-Cache"] == "miss", url
        assert client.get(url)["X-Page-Cache"] == "hit", url


def test_a_comment_refreshes_its_unit_page_only(
    people: dict[str, Any], unit: Any, inceptionv1: Any
) -> None:
    anon = Client()
    _cached(anon, UNIT, EMBED, OTHER_UNIT, LAYER, MODEL)
    version = inceptionv1.content_version

    comment = comment_create(author=people["alice"], unit=unit, body="Looks like a curve to me")
    page = anon.get(UNIT)
    assert page["X-Page-Cache"] == "miss" and "Looks like a curve to me" in page.content.decode()
    assert anon.get(UNIT)["X-Page-Cache"] == "hit"
    for url in (OTHER_UNIT, LAYER, MODEL):
        assert anon.get(url)["X-Page-Cache"] == "hit", url
    inceptionv1.refresh_from_db()
    assert inceptionv1.content_version == version

    comment_delete(comment=comment, user=people["alice"])
    page = anon.get(UNIT)
    assert page["X-Page-Cache"] == "miss"
    assert "Looks like a curve to me" not in page.content.decode()
    assert anon.get(OTHER_UNIT)["X-Page-Cache"] == "hit"


def test_hiding_a_comment_refreshes_its_unit_page(people: dict[str, Any], unit: Any) -> None:
    anon = Client()
    comment = comment_create(author=people["bea"], unit=unit, body="Buy cheap watches")
    assert "Buy cheap watches" in anon.get(UNIT).content.decode()
    assert anon.get(UNIT)["X-Page-Cache"] == "hit"
    moderation_set_hidden(moderator=people["bruno"], hidden=True, comment=comment)
    page = anon.get(UNIT)
    assert page["X-Page-Cache"] == "miss" and "Buy cheap watches" not in page.content.decode()


def test_unit_page_keys_name_the_unit_versions_and_fall_back_to_the_model(
    unit: Any, inceptionv1: Any
) -> None:
    model = f"{inceptionv1.pk}.{inceptionv1.content_version}"
    assert content_version(UNIT) == f"{model}.{unit.discussion_version}"
    versioned = f"/models/inceptionv1@{inceptionv1.version}/mixed4c/447/"
    assert content_version(versioned) == content_version(UNIT)
    # Not a unit of that layer (an alias the view redirects, or a 404): the model's key.
    assert content_version("/models/inceptionv1/mixed4c/999999/") == model
    assert content_version("/models/inceptionv1/4c/447/") == model
    assert content_version(LAYER) == model
    assert content_version("/models/nosuchmodel/mixed4c/447/") is None
