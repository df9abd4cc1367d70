"""The whole-page cache: few queries cold, almost none warm, never stale, never for sessions."""

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client
from django.urls import reverse

from neurons.models import NetworkModel, Technique, Unit
from neurons.selectors import PageVersion, model_get, page_version, unit_current
from neurons.services import model_import, model_touch, unit_touch
from rendering.connections import connection_jobs_create
from rendering.engine.zoo import WeightsSpec
from rendering.models import Connection, Render
from rendering.services import render_job_run

pytestmark = pytest.mark.django_db

UNIT_URL = "/models/tinynet/conv2/5/"
# Measured on an unversioned unit URL, every cache empty: the page cache's key (the versions,
# and the unit's id, which the view reuses), the unit with its layer and model, which tabs
# have content (one query), the model's layers (the navigation; then kept per process),
# whether the model has active jobs of the tab's technique, the tab's content (renders: one
# query), and whether the unit has notes or comments (the panel asks for them only then).
# Only the open tab is built.
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


def _caches_clear() -> None:
    """Every cache, the pages' and each process's kept fragments: a page built from nothing."""
    for alias in settings.CACHES:
        caches[alias].clear()


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
    _caches_clear()
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
    _caches_clear()
    with django_assert_max_num_queries(CONNECTED_UNIT_PAGE_QUERIES) as connected:
        html = client.get(UNIT_URL).content.decode()  # opens on its only content
    assert re.search(r'data-tab="connections" aria-current="page"', html)
    assert "Inputs" in html and 'href="/models/tinynet/conv1/' in html
    row = Connection.objects.get(unit=unit, direction="in")
    shown = re.findall(r'<li><a href="([^"]+)">', html[html.index('<ol class="connected">') :])
    assert shown[: len(row.other_indices[:12])] == [
        reverse("neurons:unit", kwargs={"model": "tinynet", "layer": "conv1", "index": index})
        + "?technique=connections"
        for index in row.other_indices[:12]
    ]
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


def test_a_layer_page_reads_its_units_by_index_alone(client: Client, tiny: NetworkModel) -> None:
    """The grid's units are one layer's: sorting them by the units' default order (model,
    layer, index) joined the model and layer tables (~0.45 ms of PostgreSQL's planning)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _caches_clear()
    with CaptureQueriesContext(connection) as asked:
        page = client.get("/models/tinynet/conv2/")
    assert page.status_code == 200
    (units,) = [q["sql"] for q in asked.captured_queries if '"neurons_unit"."index" >=' in q["sql"]]
    assert "JOIN" not in units and 'ORDER BY "neurons_unit"."index" ASC' in units
    shown = re.findall(r'href="/models/tinynet/conv2/(\d+)/', page.content.decode())
    assert shown and shown == sorted(shown, key=int)


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


def test_the_key_query_finds_what_the_orm_finds(tiny: NetworkModel) -> None:
    """`page_version` (plain SQL) names the unit and model `unit_current` and `model_get` name:
    the newest ready version, a version asked for, and nothing for names that are not current."""
    older = tiny
    newer = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=2))
    importing = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=3))
    NetworkModel.objects.filter(pk=importing.pk).update(status=NetworkModel.Status.IMPORTING)
    model_touch(newer.pk)
    for model in (older, newer):
        model.refresh_from_db()
    for ref, model in (("tinynet", newer), (f"tinynet@{older.version}", older)):
        slug, _, version = ref.partition("@")
        unit = unit_current(ref, "conv2", 5)
        assert unit is not None and unit.layer.model == model
        assert page_version(slug, version, "conv2", 5) == PageVersion(
            model.pk, model.content_version, unit.pk, unit.discussion_version
        )
        assert page_version(slug, version) == PageVersion(model.pk, model.content_version)
        assert model_get(ref) == model
    assert page_version("tinynet", "", "conv2", 10_000) is None
    assert page_version("tinynet", "", "no_such_layer", 0) is None
    assert page_version("tinynet", importing.version, "conv2", 5) is None
    assert page_version("no-such-model", "") is None


def test_a_comment_makes_only_its_units_page_a_miss(
    client: Client, tiny: NetworkModel, django_assert_max_num_queries: Any
) -> None:
    other = UNIT_URL.replace("/5/", "/6/")
    for url in (UNIT_URL, other):
        client.get(url)
    unit_touch(_unit(tiny, "conv2", 5).pk)
    assert client.get(UNIT_URL)["X-Page-Cache"] == "miss"
    with django_assert_max_num_queries(CACHED_PAGE_QUERIES):
        assert client.get(other)["X-Page-Cache"] == "hit"


@pytest.mark.parametrize("url", ["/models/tinynet/", "/models/tinynet/conv2/", UNIT_URL])
def test_the_kept_layer_navigation_shows_a_change_at_once(
    client: Client, tiny: NetworkModel, url: str
) -> None:
    """The navigation is kept per process (the `fragments` cache) under the model's content
    version: a change to the model or a layer is in the next page built."""

    def nav() -> str:
        html = client.get(url).content.decode()
        start = html.index('<nav class="modelnav"')
        return html[start : html.index("</nav>", start)]

    assert "Tiny renamed" not in nav() and ">conv2</a>" in nav()
    tiny.refresh_from_db()
    tiny.display_name = "Tiny renamed"
    tiny.save()
    layer = tiny.layers.get(name="conv1")
    layer.num_units = 99
    layer.save()
    shown = nav()
    assert "Tiny renamed" in shown and "<small>99</small>" in shown
