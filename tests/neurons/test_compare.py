"""The compare view: units with one curator label or family tag, side by side across models."""

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from rest_framework.test import APIClient

from neurons.models import NetworkModel, Technique, Unit
from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.models import Render

pytestmark = pytest.mark.django_db

COMPARE = "/models/compare/"
# On a miss: PageCache's lookup (the path looks like a model page: no model is called
# "compare"), the catalogue version (this page's cache key), the newest models, the matching
# units, the labels and the family tags in use, then one thumbnail query per layer shown.
COMPARE_BASE_QUERIES = 6
# On a hit: the same first two, nothing else.
CACHED_COMPARE_QUERIES = 2


@pytest.fixture
def tiny(tinynet: Any) -> NetworkModel:
    return model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))


def _label(model: NetworkModel, layer: str, index: int, label: str = "", tag: str = "") -> Unit:
    unit = Unit.objects.select_related("layer__model").get(
        layer__model=model, layer__name=layer, index=index
    )
    unit.curator_label, unit.family_tag = label, tag
    unit.save()  # a signal bumps the model's content version, as curators' edits do
    return unit


@pytest.fixture
def curves(inceptionv1: NetworkModel, tiny: NetworkModel) -> dict[str, Unit]:
    return {
        "3b": _label(inceptionv1, "mixed3b", 379, "Curve detector", "curve detectors"),
        "4a": _label(inceptionv1, "mixed4a", 1, "curve detector (small)", "curve detectors"),
        "tiny": _label(tiny, "conv2", 5, "curve DETECTOR", "Curve Detectors"),
        "hilo": _label(inceptionv1, "mixed4a", 2, "high-low frequency", "high-low frequency"),
    }


def _columns(html: str) -> dict[str, str]:
    """Each model column's HTML by the model's slug, in page order."""
    columns = {}
    for part in html.split('<section class="compare-column" aria-labelledby="compare-')[1:]:
        slug, _, body = part.partition('"')
        columns[slug] = body.split("</section>", 1)[0]
    return columns


def _get(client: Client, **params: str) -> Any:
    return client.get(COMPARE + "?" + urlencode(params))


def test_a_label_lists_matching_units_side_by_side_one_column_per_model(
    client: Client, curves: dict[str, Unit]
) -> None:
    response = _get(client, label="curve detector")
    assert response.status_code == 200
    columns = _columns(response.content.decode())
    assert list(columns) == ["inceptionv1", "tinynet"]
    assert 'href="/models/inceptionv1/mixed3b/379/"' in columns["inceptionv1"]
    assert 'href="/models/inceptionv1/mixed4a/1/"' in columns["inceptionv1"]
    assert "mixed4a/2/" not in columns["inceptionv1"]  # high-low frequency
    assert "· 2 units ·" in columns["inceptionv1"]
    assert (
        'href="/models/tinynet/conv2/5/"' in columns["tinynet"]
        and "· 1 unit ·" in columns["tinynet"]
    )
    assert '<span class="tag family">Curve Detectors</span>' in columns["tinynet"]
    assert "untrained weights" in columns["tinynet"]


def test_labels_match_as_case_insensitive_substrings(
    client: Client, curves: dict[str, Unit]
) -> None:
    for label in ("CURVE", "curve det", "Detector"):
        columns = _columns(_get(client, label=label).content.decode())
        assert list(columns) == ["inceptionv1", "tinynet"], label
        assert columns["inceptionv1"].count("<figcaption>") == 2, label


def test_family_tags_match_whole_and_case_insensitive(
    client: Client, curves: dict[str, Unit]
) -> None:
    columns = _columns(_get(client, family="CURVE detectors").content.decode())
    assert list(columns) == ["inceptionv1", "tinynet"]
    assert columns["inceptionv1"].count("<figcaption>") == 2
    partial = _get(client, family="curve")
    assert partial.status_code == 404
    assert "No unit of any model has the family tag “curve”." in partial.content.decode()


def test_only_the_newest_version_of_each_model_is_compared(
    client: Client, curves: dict[str, Unit], tiny: NetworkModel
) -> None:
    newer = model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=2))
    assert newer.pk != tiny.pk
    _label(newer, "conv1", 3, "curve detector")
    tinynet = _columns(_get(client, label="curve").content.decode())["tinynet"]
    assert 'href="/models/tinynet/conv1/3/"' in tinynet
    assert "conv2/5/" not in tinynet  # labelled in the older version only
    assert newer.version in tinynet and tiny.version not in tinynet


def test_models_without_a_match_get_no_column(client: Client, curves: dict[str, Unit]) -> None:
    columns = _columns(_get(client, label="high-low").content.decode())
    assert list(columns) == ["inceptionv1"]


def test_each_column_is_bounded_and_links_to_the_rest(
    client: Client, inceptionv1: NetworkModel, tiny: NetworkModel
) -> None:
    Unit.objects.filter(layer__model=inceptionv1, layer__name="mixed3a", index__lt=50).update(
        curator_label="busy"
    )
    Unit.objects.filter(layer__model=inceptionv1, layer__name="mixed3b", index=0).update(
        curator_label="busy"
    )
    html = _get(client, label="busy").content.decode()
    column = _columns(html)["inceptionv1"]
    assert column.count("<figcaption>") == 48
    assert "51 units" in column
    assert 'href="/models/inceptionv1/mixed3a/47/"' in column  # layer order, then index
    assert "mixed3a/48/" not in column and "mixed3b/0/" not in column
    assert '<a href="/search/?q=busy&amp;model=inceptionv1">3 more in InceptionV1</a>' in column
    rest = client.get("/search/", {"q": "busy", "model": "inceptionv1"}).content.decode()
    assert 'href="/models/inceptionv1/mixed3b/0/"' in rest


def test_cards_show_the_channel_thumbnail_from_the_layer_grid(
    client: Client, curves: dict[str, Unit], media: Path
) -> None:
    unit = curves["tiny"]
    Render.objects.create(
        unit=unit,
        layer=unit.layer,
        technique=Technique.objects.get(slug="channel"),
        params={"steps": 2, "size": 32, "seed": 0, "lr": 0.05},
        params_hash="p1",
        image="renders/tiny-5.png",
        thumbnail="renders/tiny-5-thumb.png",
        image_sha256="0" * 64,
        objective=1.0,
    )
    columns = _columns(_get(client, label="curve").content.decode())
    assert 'src="/media/renders/tiny-5-thumb.png"' in columns["tinynet"]
    assert 'alt="channel visualization of TinyNet conv2:5"' in columns["tinynet"]
    assert "-thumb.png" not in columns["inceptionv1"]
    assert columns["inceptionv1"].count('<span class="empty"') == 2


def test_the_query_is_escaped_everywhere_it_is_shown(
    client: Client, inceptionv1: NetworkModel
) -> None:
    attack = '"><script>alert(1)</script>'
    _label(inceptionv1, "mixed3b", 1, attack, attack[:64])
    for params in ({"label": attack}, {"family": attack}, {}):
        html = _get(client, **params).content.decode()
        assert "<script>alert(1)" not in html, params
        assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html, params
    index = _get(client).content.decode()
    assert "?label=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in index


def test_without_a_query_the_page_lists_the_labels_and_tags_in_use_with_counts(
    client: Client, curves: dict[str, Unit]
) -> None:
    html = _get(client).content.decode()
    assert _columns(html) == {}
    assert (
        '<a href="/models/compare/?family=curve%20detectors">curve detectors</a> '
        '<small class="howmade">3 units in 2 models</small>'
    ) in html
    assert '<a href="/models/compare/?label=curve%20detector">curve detector</a>' in html
    assert '<small class="howmade">2 units in 2 models</small>' in html  # "Curve"/"curve DETECTOR"
    assert "?label=high-low%20frequency" in html and "?family=high-low%20frequency" in html


def test_the_empty_states_say_what_there_is_to_compare(
    client: Client, inceptionv1: NetworkModel
) -> None:
    html = _get(client).content.decode()
    assert "No unit has a family tag yet" in html and "No unit has a curator label yet" in html
    missing = _get(client, label="zebra")
    assert missing.status_code == 200
    assert "No unit of any model has a curator label containing “zebra”." in (
        missing.content.decode()
    )
    assert _get(client, label="   ").status_code == 200  # blank: the index


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"label": "curve", "family": "curve detectors"}, "not both at once"),
        ({"label": "x" * 201}, "A label is at most 200 characters; this one has 201."),
        ({"family": "x" * 65}, "A family is at most 64 characters; this one has 65."),
        # (NUL itself is refused before any view by microscope_site.nul_bytes.RefuseNulBytes)
        ({"label": "curve\x07"}, "The label contains control characters."),
    ],
)
def test_bad_parameters_answer_400_saying_why(
    client: Client, curves: dict[str, Unit], params: dict[str, str], message: str
) -> None:
    response = _get(client, **params)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and _columns(html) == {}
    assert "curve detectors</a>" in html  # the index, to start again


def test_a_miss_costs_the_same_few_queries_however_many_units_match(
    client: Client, curves: dict[str, Unit], django_assert_max_num_queries: Any
) -> None:
    # Units in three layers of two models: mixed3b and mixed4a, and tinynet's conv2.
    with django_assert_max_num_queries(COMPARE_BASE_QUERIES + 3) as few:
        assert _get(client, label="curve")["X-Page-Cache"] == "miss"
    Unit.objects.filter(
        layer__model=curves["3b"].layer.model, layer__name="mixed3b", index__lt=40
    ).update(curator_label="curve detector")
    _label(curves["tiny"].layer.model, "conv2", 6, "curve detector")
    with django_assert_max_num_queries(COMPARE_BASE_QUERIES + 3) as many:
        html = _get(client, label="curve").content.decode()
    assert html.count("<figcaption>") == 44  # 42 in InceptionV1, 2 in TinyNet
    assert len(many.captured_queries) == len(few.captured_queries)
    with django_assert_max_num_queries(CACHED_COMPARE_QUERIES):
        assert _get(client, label="curve")["X-Page-Cache"] == "hit"


def test_a_label_edit_anywhere_makes_the_next_get_a_miss_with_the_new_unit(
    client: Client, curves: dict[str, Unit], inceptionv1: NetworkModel
) -> None:
    first = _get(client, family="curve detectors")
    assert first["X-Page-Cache"] == "miss"
    assert _get(client, family="curve detectors")["X-Page-Cache"] == "hit"
    _label(inceptionv1, "mixed4b", 7, "", "curve detectors")
    again = _get(client, family="curve detectors")
    assert again["X-Page-Cache"] == "miss"
    assert 'href="/models/inceptionv1/mixed4b/7/"' in again.content.decode()
    revalidated = client.get(COMPARE + "?family=curve+detectors", HTTP_IF_NONE_MATCH=again["ETag"])
    assert revalidated.status_code == 304 and revalidated.content == b""


def test_signed_in_visitors_and_errors_are_never_cached(
    client: Client, staff_client: Client, curves: dict[str, Unit]
) -> None:
    for _ in range(2):
        assert staff_client.get(COMPARE).get("X-Page-Cache") is None
        assert _get(client, family="nothing here").get("X-Page-Cache") is None


def test_unit_pages_link_their_label_and_tag_to_the_compare_view(
    client: Client, curves: dict[str, Unit]
) -> None:
    html = client.get("/models/inceptionv1/mixed4a/1/").content.decode()
    assert '<a href="/models/compare/?label=curve%20detector%20%28small%29">' in html
    assert '<a href="/models/compare/?family=curve%20detectors">' in html
    assert html.count("compare across models") == 2
    bare = client.get("/models/inceptionv1/mixed4a/3/").content.decode()
    assert "compare across models" not in bare


def test_search_results_link_to_the_compare_view_and_find_family_tags(
    client: Client, curves: dict[str, Unit]
) -> None:
    html = client.get("/search/", {"q": "curve detectors"}).content.decode()
    assert '<a href="/models/compare/?family=curve+detectors">compare across models</a>' in html
    assert 'href="/models/tinynet/conv2/5/"' in html
    label = client.get("/search/", {"q": "curve"}).content.decode()
    assert '<a href="/models/compare/?label=curve">compare across models</a>' in label


def test_the_header_links_to_the_compare_view(client: Client, inceptionv1: NetworkModel) -> None:
    header = client.get("/").content.decode().split("<main>", 1)[0]
    assert '<a href="/models/compare/">Compare</a>' in header


def test_the_api_shows_family_tags_read_only(curves: dict[str, Unit]) -> None:
    data = APIClient().get(f"/api/v1/units/{curves['3b'].pk}/").json()
    assert data["family_tag"] == "curve detectors" and data["curator_label"] == "Curve detector"
    schema = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    field = schema.json()["components"]["schemas"]["Unit"]["properties"]["family_tag"]
    assert field["readOnly"] is True and field["type"] == "string"
