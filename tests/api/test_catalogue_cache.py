"""Cached catalogue reads: the same JSON for every reader, fresh after any change a model's
pages show, and never in front of authentication, throttling or the browsable API."""

from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from neurons.models import NetworkModel, Technique, Unit
from neurons.services import model_touch
from rendering.models import Render

pytestmark = pytest.mark.django_db

READS = [
    "/api/v1/models/",
    "/api/v1/models/inceptionv1/",
    "/api/v1/models/inceptionv1/layers/",
    "/api/v1/layers/?model=inceptionv1",
    "/api/v1/units/?model=inceptionv1&layer_name=mixed4c",
    "/api/v1/units/?labelled=true",
    "/api/v1/models/inceptionv1/layers/mixed4c/",
    "/api/v1/models/inceptionv1/layers/mixed4c/units/447/",
    "/api/v1/renders/?technique=channel",
]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


@pytest.mark.parametrize("url", READS)
def test_a_second_read_is_a_hit_with_the_same_answer_for_every_reader(
    url: str, token_client: Any
) -> None:
    anon = APIClient()
    first = anon.get(url)
    assert first.status_code == 200 and first["X-Page-Cache"] == "miss"
    reader = token_client("alice", scope="read")
    again = reader.get(url)
    assert again.status_code == 200 and again["X-Page-Cache"] == "hit"
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"] == "application/json"


def test_a_label_or_a_render_makes_the_next_read_fresh(unit: Any, inceptionv1: Any) -> None:
    anon = APIClient()
    units = "/api/v1/units/?labelled=true"
    detail = "/api/v1/models/inceptionv1/layers/mixed4c/units/447/"
    renders = f"/api/v1/renders/?unit={unit.pk}"
    for url in (units, detail, renders):
        anon.get(url)
        assert anon.get(url)["X-Page-Cache"] == "hit"
    unit.curator_label = "curve detector"
    unit.save()  # one row, as the admin saves it: a signal touches the model
    for url in (units, detail):
        response = anon.get(url)
        assert response["X-Page-Cache"] == "miss" and "curve detector" in response.content.decode()
    Unit.objects.filter(pk=unit.pk).update(curator_label="wheel")  # in bulk, then touched
    model_touch(inceptionv1.pk)
    assert "wheel" in anon.get(detail).content.decode()
    Render.objects.create(
        unit=unit,
        layer=unit.layer,
        technique=Technique.objects.get(slug="channel"),
        params={"steps": 2},
        params_hash="p1",
        image="renders/x.png",
        thumbnail="renders/x-thumb.png",
        image_sha256="0" * 64,
        objective=1.0,
    )
    response = anon.get(renders)
    assert response["X-Page-Cache"] == "miss" and "renders/x.png" in response.content.decode()


def test_a_new_model_version_changes_every_key(inceptionv1: Any) -> None:
    anon = APIClient()
    anon.get("/api/v1/models/")
    assert anon.get("/api/v1/models/")["X-Page-Cache"] == "hit"
    NetworkModel.objects.filter(pk=inceptionv1.pk).update(display_name="Renamed for the test")
    assert anon.get("/api/v1/models/")["X-Page-Cache"] == "hit"  # a bulk write, not touched
    model_touch(inceptionv1.pk)
    fresh = anon.get("/api/v1/models/")
    assert fresh["X-Page-Cache"] == "miss" and "Renamed for the test" in fresh.content.decode()


def test_bad_tokens_and_throttles_are_answered_before_the_cache() -> None:
    url = READS[0]
    anon = APIClient()
    anon.get(url)
    assert anon.get(url)["X-Page-Cache"] == "hit"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    refused = bad.get(url)
    assert refused.status_code == 401 and "X-Page-Cache" not in refused
    with override_settings(
        REST_FRAMEWORK={
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"anon": "1/minute", "user": "1/minute", "token": "1/minute"},
        }
    ):
        cache.clear()
        statuses = [APIClient().get(url).status_code for _ in range(3)]
    assert 429 in statuses


def test_the_browsable_api_and_writes_are_never_cached(api: Any) -> None:
    url = READS[0]
    for _ in range(2):
        page = api["alice"].get(url, HTTP_ACCEPT="text/html")
        assert page.status_code == 200 and "X-Page-Cache" not in page
        assert "alice" in page.content.decode()  # the signed-in user: why it is never kept


def test_note_reads_are_cached_per_reader_until_a_note_changes(
    api: Any, make_note: Any, people: dict[str, Any], unit: Any, institutions: dict[str, Any]
) -> None:
    from annotations.models import Membership
    from annotations.moderation import moderation_set_hidden
    from annotations.people import profile_update

    note = make_note(title="Cached curve note")
    mit = make_note(title="MIT only note", visibility="institution")
    anon = APIClient()
    for url in ("/api/v1/notes/", f"/api/v1/notes/?unit={unit.pk}", f"/api/v1/notes/{note.pk}/"):
        first = anon.get(url)
        assert first.status_code == 200 and first["X-Page-Cache"] == "miss", url
        assert anon.get(url)["X-Page-Cache"] == "hit", url
        for name in ("alice", "bea"):  # a reader's own copy, never another's
            assert api[name].get(url)["X-Page-Cache"] == "miss", (url, name)
            assert api[name].get(url)["X-Page-Cache"] == "hit", (url, name)
    assert "MIT only note" in api["alice"].get("/api/v1/notes/").content.decode()
    for name in ("bea", "anon"):
        assert "MIT only note" not in api[name].get("/api/v1/notes/").content.decode()
    assert api["bea"].get(f"/api/v1/notes/{mit.pk}/").status_code == 404

    # Joining an institution changes what a reader sees: a new key.
    Membership.objects.create(user=people["bea"], institution=institutions["mit"])
    assert "MIT only note" in api["bea"].get("/api/v1/notes/").content.decode()
    assert api["bea"].get(f"/api/v1/notes/{mit.pk}/").status_code == 200

    moderation_set_hidden(moderator=people["bruno"], hidden=True, note=note)
    assert "Cached curve note" not in anon.get("/api/v1/notes/").content.decode()
    assert "Cached curve note" in api["alice"].get("/api/v1/notes/").content.decode()  # hers
    assert api["bruno"].get(f"/api/v1/notes/{note.pk}/").status_code == 200  # moderates
    assert api["amir"].get(f"/api/v1/notes/{note.pk}/").status_code == 404
    moderation_set_hidden(moderator=people["bruno"], hidden=False, note=note)
    assert "Cached curve note" in anon.get("/api/v1/notes/").content.decode()
    profile_update(user=people["alice"], display_name="Alice Renamed", institution=None)
    assert "Alice Renamed" in anon.get("/api/v1/notes/").content.decode()


def test_unit_api_paths_are_what_reverse_gives() -> None:
    from django.urls import reverse

    from neurons.serializers import unit_api_path

    for pk in (1, 9, 10, 447, 987654321, 2**31 - 1):
        assert unit_api_path(pk) == reverse("api:unit-detail", kwargs={"pk": pk})
        for name in ("connections", "label"):
            view = f"api:unit-{name}"
            assert unit_api_path(pk, view) == reverse(view, kwargs={"pk": pk})
