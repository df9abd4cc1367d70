"""The unit detail carries what the unit page shows: citation, neighbours, weight matrix."""

from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from rendering.models import LayerConnection


def test_detail_has_citation_with_versioned_url_and_today(unit: Any) -> None:
    body = APIClient().get(f"/api/v1/units/{unit.pk}/").json()
    model = unit.layer.model
    url = f"http://testserver/models/{model.slug}@{model.version}/mixed4c/447/"
    cite = body["citation"]
    assert set(cite) == {"bibtex", "apa", "csl"}
    assert url in cite["bibtex"] and url in cite["apa"] and cite["csl"]["URL"] == url
    today = timezone.now().date()
    assert f"accessed {today:%Y-%m-%d}" in cite["bibtex"]
    assert cite["csl"]["accessed"] == {"date-parts": [[today.year, today.month, today.day]]}


def test_detail_has_neighbours_in_api_and_on_site(unit: Any) -> None:
    body = APIClient().get(f"/api/v1/units/{unit.pk}/").json()
    model = unit.layer.model
    ref = f"{model.slug}@{model.version}"
    neighbours = body["neighbours"]
    assert neighbours["previous"] == {
        "index": 446,
        "url": f"http://testserver/api/v1/models/{ref}/layers/mixed4c/units/446/",
        "html_url": f"http://testserver/models/{ref}/mixed4c/446/",
    }
    assert neighbours["next"]["index"] == 448
    following = neighbours["next_layer"]
    assert following["name"] == "mixed4d"
    assert following["url"] == f"http://testserver/api/v1/models/{ref}/layers/mixed4d/"
    assert following["html_url"] == f"http://testserver/models/{ref}/mixed4d/"
    # the URLs answer
    assert APIClient().get(neighbours["previous"]["url"]).json()["index"] == 446
    assert APIClient().get(following["url"]).status_code == 200


def test_first_unit_has_no_previous(inceptionv1: Any) -> None:
    first = inceptionv1.layers.get(name="mixed4c").units.get(index=0)
    body = APIClient().get(f"/api/v1/units/{first.pk}/").json()
    assert body["neighbours"]["previous"] is None and body["neighbours"]["next"]["index"] == 1


def test_by_key_detail_is_the_same(unit: Any) -> None:
    model = unit.layer.model
    path = f"/api/v1/models/{model.slug}@{model.version}/layers/mixed4c/units/447/"
    body = APIClient().get(path).json()
    assert {"citation", "neighbours", "weights_png_url"} <= set(body)


def test_weights_png_only_when_a_layer_pair_exists(inceptionv1: Any) -> None:
    conv1, conv2 = (inceptionv1.layers.get(name=n) for n in ("conv2d1", "conv2d2"))
    target = conv2.units.get(index=5)
    assert APIClient().get(f"/api/v1/units/{target.pk}/").json()["weights_png_url"] is None
    LayerConnection.objects.create(
        source=conv1, target=conv2, method="direct", kernel_size=3, matrix="weights/m.npy"
    )
    ref = f"{inceptionv1.slug}@{inceptionv1.version}"
    body = APIClient().get(f"/api/v1/units/{target.pk}/").json()
    assert body["weights_png_url"] == f"http://testserver/models/{ref}/conv2d2/weights.png"


def test_list_stays_cheap(unit: Any) -> None:
    rows = APIClient().get("/api/v1/units/", {"layer": unit.layer_id}).json()["results"]
    assert rows and not {"citation", "neighbours", "weights_png_url"} & set(rows[0])
