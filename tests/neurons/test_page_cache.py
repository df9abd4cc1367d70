"""The whole-page cache: few queries cold, almost none warm, never stale, never for sessions."""

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from neurons.models import NetworkModel, Technique, Unit
from neurons.services import model_import, model_touch
from rendering.connections import connection_jobs_create
from rendering.engine.zoo import WeightsSpec
from rendering.models import Connection, Render
from rendering.services import render_job_run

pytestmark = pytest.mark.django_db

UNIT_URL = "/models/tinynet/conv2/5/"
# Measured on an unversioned unit URL: the unit with its layer and model (the page cache's
# key, which the view reuses), which tabs have content (one query), the model's layers (the
# navigation), the tab's active job, the tab's content (renders: one query), and the
# annotations panel's public notes and comments. Only the open tab is built.
# It must not grow with what the unit has.
UNIT_PAGE_QUERIES = 7
# The connections tab: its rows, then every connected unit's thumbnail in one query.
CONNECTED_UNIT_PAGE_QUERIES = UNIT_PAGE_QUERIES + 1
# A hit reads only the model's content version, which is part of the cache key.
CACHED_PAGE_QUERIES = 1


@pytest.fixture
def tiny(tinynet: Any) -> NetworkModel:
    return model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))


def _unit(model: NetworkModel, layer: str, index: int) -> Unit:
    return Unit.objects.select_related("layer__model").get(
        layer__model=model, layer__name=layer, index=index
    )


def _render(unit: Unit, technique: str, variant: int = 0, *, params_hash: str = "p1") -> Render:
    name = f"renders/{unit.pk}-{technique}-{variant}-{params_hash}"
    return Render.objects.create(
        unit=unit,
        layer=unit.layer,
        technique=Technique.objects.get(slug=technique),
        params={"steps": 2, "size": 32, "seed": 0, "lr": 0.05},
        params_hash=params_hash,
        variant=variant,
        image=f"{name}.png",
        thumbnail=f"{name}-thumb.png",
        image_sha256="0" * 64,
        objective=1.25,
        metrics={"device": "cpu"},
    )


def _connections(model: NetworkModel) -> None:
    """conv1 → conv2 (and conv2 → logits) weights for every unit of those layers, as the
    connections jobs store them."""
    for job in connection_jobs_create(model=model, top=4, enqueue=False):
        done = render_job_run(job_id=job.pk)
        assert done is not None and done.status == "succeeded", done and done.error


def test_the_unit_page_costs_the_same_few_queries_with_or_without_renders(
    client: Client, tiny: NetworkModel, media: Path, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(UNIT_PAGE_QUERIES) as bare:
        response = client.get(UNIT_URL + "?technique=diversity")
    html = response.content.decode()
    assert response["X-Page-Cache"] == "miss" and "No diversity for this unit yet" in html
    unit = _unit(tiny, "conv2", 5)
    _render(unit, "channel")
    for variant in range(3):
        _render(unit, "diversity", variant)
    _render(unit, "negative")
    cache.clear()
    with django_assert_max_num_queries(UNIT_PAGE_QUERIES) as rich:
        html = client.get(UNIT_URL + "?technique=diversity").content.decode()
    assert html.count("Diversity visualization of conv2:5") == 3  # only the open tab's renders
    assert "Channel visualization" not in html and "Negative visualization" not in html
    assert len(bare.captured_queries) == len(rich.captured_queries) == UNIT_PAGE_QUERIES


def test_the_unit_page_costs_the_same_few_queries_with_or_without_connections(
    client: Client,
    tiny: NetworkModel,
    small_renders: dict[str, Any],
    django_assert_max_num_queries: Any,
) -> None:
    with django_assert_max_num_queries(UNIT_PAGE_QUERIES) as bare:
        client.get(UNIT_URL)
    _connections(tiny)
    unit = _unit(tiny, "conv2", 5)
    assert Connection.objects.filter(unit=unit, direction="in").count() == 1
    cache.clear()
    with django_assert_max_num_queries(CONNECTED_UNIT_PAGE_QUERIES) as connected:
        html = client.get(UNIT_URL).content.decode()  # opens on its only content
    assert re.search(r'data-tab="connections" aria-current="page"', html)
    assert "Inputs" in html and 'href="/models/tinynet/conv1/' in html
    assert len(connected.captured_queries) == len(bare.captured_queries) + 1


def test_a_second_anonymous_get_is_served_from_the_cache(
    client: Client, tiny: NetworkModel, django_assert_max_num_queries: Any
) -> None:
    first = client.get(UNIT_URL)
    assert first.status_code == 200 and first["X-Page-Cache"] == "miss"
    with django_assert_max_num_queries(CACHED_PAGE_QUERIES):
        second = client.get(UNIT_URL)
    assert second.status_code == 200 and second["X-Page-Cache"] == "hit"
    assert second.content == first.content
    assert second["Content-Type"] == first["Content-Type"]


@pytest.mark.parametrize("url", ["/", "/models/", "/models/tinynet/", "/models/tinynet/conv2/"])
def test_model_layer_and_zoo_pages_are_cached_too(
    client: Client, tiny: NetworkModel, url: str
) -> None:
    assert client.get(url)["X-Page-Cache"] == "miss"
    assert client.get(url)["X-Page-Cache"] == "hit"


def test_each_query_string_is_its_own_page(client: Client, tiny: NetworkModel) -> None:
    channel = client.get("/models/tinynet/conv2/")
    negative = client.get("/models/tinynet/conv2/?technique=negative")
    assert negative["X-Page-Cache"] == "miss"
    assert 'data-tab="negative" aria-current="page"' in negative.content.decode()
    assert 'data-tab="channel" aria-current="page"' in channel.content.decode()
    for technique in ("channel", "tuning"):
        url = f"{UNIT_URL}?technique={technique}"
        assert client.get(url)["X-Page-Cache"] == "miss"
        tab = client.get(url)
        assert tab["X-Page-Cache"] == "hit"
        assert f'data-tab="{technique}" aria-current="page"' in tab.content.decode()


def _label_saved(unit: Unit) -> str:
    unit.curator_label = "curve detector"
    unit.save()
    return "curve detector"


def _render_created(unit: Unit) -> str:
    _render(unit, "channel")
    return "Channel visualization of conv2:5"


def _touched(unit: Unit) -> str:
    # A bulk write sends no signal: its service calls model_touch itself.
    Unit.objects.filter(pk=unit.pk).update(curator_label="high-low frequency")
    model_touch(unit.layer.model_id)
    return "high-low frequency"


@pytest.mark.parametrize("change", [_label_saved, _render_created, _touched])
def test_a_change_shown_on_the_page_makes_the_next_get_a_miss_with_the_new_content(
    client: Client, tiny: NetworkModel, media: Path, change: Any
) -> None:
    client.get(UNIT_URL)
    assert client.get(UNIT_URL)["X-Page-Cache"] == "hit"
    shown = change(_unit(tiny, "conv2", 5))
    response = client.get(UNIT_URL)
    assert response["X-Page-Cache"] == "miss"
    assert shown in response.content.decode()
    again = client.get(UNIT_URL)
    assert again["X-Page-Cache"] == "hit" and shown in again.content.decode()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("/models/tinynet/", 'alt="channel visualization of conv2:5"'),
        ("/models/tinynet/conv2/", 'alt="channel visualization of conv2:5"'),
        ("/models/tinynet/conv2/?technique=channel", 'alt="channel visualization of conv2:5"'),
        ("/models/", "-thumb.png"),
    ],
)
def test_a_new_render_refreshes_the_model_layer_and_zoo_pages(
    client: Client, tiny: NetworkModel, media: Path, url: str, shown: str
) -> None:
    assert shown not in client.get(url).content.decode()
    assert client.get(url)["X-Page-Cache"] == "hit"
    _render(_unit(tiny, "conv2", 5), "channel")
    response = client.get(url)
    assert response["X-Page-Cache"] == "miss" and shown in response.content.decode()


def test_a_request_with_a_session_cookie_is_never_served_from_the_cache(
    client: Client, tiny: NetworkModel
) -> None:
    client.get(UNIT_URL)
    assert client.get(UNIT_URL)["X-Page-Cache"] == "hit"
    # A label written in bulk without model_touch: only a freshly built page shows it.
    Unit.objects.filter(layer__model=tiny, layer__name="conv2", index=5).update(
        curator_label="fresh label"
    )
    client.cookies[settings.SESSION_COOKIE_NAME] = "any-session-id"
    for _ in range(2):
        response = client.get(UNIT_URL)
        assert response.status_code == 200 and response.get("X-Page-Cache") != "hit"
        assert "fresh label" in response.content.decode()
    del client.cookies[settings.SESSION_COOKIE_NAME]
    assert "fresh label" not in client.get(UNIT_URL).content.decode()  # still the cached copy


def test_a_page_built_for_a_signed_in_visitor_is_not_stored(
    client: Client, staff_client: Client, tiny: NetworkModel
) -> None:
    staff = staff_client.get(UNIT_URL)
    assert staff.status_code == 200 and staff.get("X-Page-Cache") != "hit"
    assert staff_client.get(UNIT_URL).get("X-Page-Cache") != "hit"
    assert client.get(UNIT_URL)["X-Page-Cache"] == "miss"


def test_a_repeat_request_with_the_etag_gets_304(client: Client, tiny: NetworkModel) -> None:
    first = client.get(UNIT_URL)
    assert first.status_code == 200 and first.has_header("ETag")
    hit = client.get(UNIT_URL)
    assert hit["X-Page-Cache"] == "hit" and hit["ETag"] == first["ETag"]
    again = client.get(UNIT_URL, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and again.content == b""
    assert client.get(UNIT_URL, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


def test_a_changed_page_gets_a_new_etag(client: Client, tiny: NetworkModel) -> None:
    etag = client.get(UNIT_URL)["ETag"]
    unit = _unit(tiny, "conv2", 5)
    unit.curator_label = "curve detector"
    unit.save()
    response = client.get(UNIT_URL, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and response["ETag"] != etag
    assert "curve detector" in response.content.decode()
