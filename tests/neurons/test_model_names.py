"""Model URLs accept the registry key and any case (301 to the slug); search finds models,
layers and units by the names people type, in any case."""

import pytest
from django.test import Client

from neurons.models import NetworkModel
from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def clip_like(inceptionv1) -> NetworkModel:
    """A model whose slug differs from its registry key, as clip_rn50's (`clip-rn50`) does."""
    NetworkModel.objects.filter(pk=inceptionv1.pk).update(registry_key="inception_v1_key")
    inceptionv1.refresh_from_db()
    return inceptionv1


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/models/InceptionV1/", "/models/inceptionv1/"),
        ("/models/INCEPTIONV1/mixed4c/", "/models/inceptionv1/mixed4c/"),
        ("/models/InceptionV1/mixed4c/447/", "/models/inceptionv1/mixed4c/447/"),
        ("/models/InceptionV1/mixed4a/weights/", "/models/inceptionv1/mixed4a/weights/"),
        ("/embed/models/InceptionV1/mixed4c/447/", "/embed/models/inceptionv1/mixed4c/447/"),
        ("/models/inception_v1_key/", "/models/inceptionv1/"),
        (
            "/models/Inception_V1_Key/mixed4c/447/?technique=channel",
            "/models/inceptionv1/mixed4c/447/?technique=channel",
        ),
    ],
)
def test_model_urls_answer_301_to_the_slug(
    client: Client, clip_like: NetworkModel, path: str, target: str
) -> None:
    response = client.get(path)
    assert response.status_code == 301, response.content[:200]
    assert response["Location"] == target


def test_the_versioned_form_accepts_any_case(client: Client, inceptionv1: NetworkModel) -> None:
    upper = f"/models/InceptionV1@{inceptionv1.version.upper()}/mixed4c/447/"
    first = client.get(upper)
    assert first.status_code == 301
    assert first["Location"] == f"/models/inceptionv1@{inceptionv1.version.upper()}/mixed4c/447/"
    second = client.get(first["Location"])
    assert second.status_code == 301
    assert second["Location"] == f"/models/inceptionv1@{inceptionv1.version}/mixed4c/447/"
    assert client.get(second["Location"]).status_code == 200


def test_an_unknown_model_is_still_404(client: Client, inceptionv1: NetworkModel) -> None:
    assert client.get("/models/NoSuchNet/").status_code == 404
    assert client.get("/models/nosuchnet/mixed4c/447/").status_code == 404


@pytest.mark.parametrize(
    "query", ["InceptionV1 4c:447", "INCEPTIONV1 mixed4c 447", "inceptionv1 MIXED4C:447"]
)
def test_a_shorthand_with_the_name_as_displayed_goes_to_the_unit(
    client: Client, inceptionv1: NetworkModel, query: str
) -> None:
    response = client.get("/search/", {"q": query})
    assert response.status_code == 302, query
    assert response["Location"] == "/models/inceptionv1/mixed4c/447/"


def test_search_finds_models_by_key_slug_and_display_name(client: Client, clip_like) -> None:
    for query in ("InceptionV1", "inception_v1_KEY", "inceptionv1", "Inception"):
        html = client.get("/search/", {"q": query}).content.decode()
        models = html.split('id="models-h"')[1].split("</section>")[0]
        assert '<a href="/models/inceptionv1/">InceptionV1</a>' in models, query
    nothing = client.get("/search/", {"q": "alexnet"}).content.decode()
    assert 'id="models-h"' not in nothing


@pytest.mark.parametrize("query", ["mixed4c", "MIXED4C", "InceptionV1 mixed4c", "inceptionv1 4c"])
def test_search_finds_layers(client: Client, inceptionv1: NetworkModel, query: str) -> None:
    html = client.get("/search/", {"q": query}).content.decode()
    layers = html.split('id="layers-h"')[1].split("</section>")[0]
    assert '<a href="/models/inceptionv1/mixed4c/">InceptionV1 mixed4c</a>' in layers
    stored = inceptionv1.layers.get(name="mixed4c").num_units
    assert f"{stored} units" in layers
    assert "mixed4d" not in layers


def test_a_partial_layer_name_lists_every_layer_it_is_part_of(
    client: Client, inceptionv1: NetworkModel
) -> None:
    html = client.get("/search/", {"q": "Mixed4"}).content.decode()
    layers = html.split('id="layers-h"')[1].split("</section>")[0]
    for name in ("mixed4a", "mixed4b", "mixed4c", "mixed4d", "mixed4e"):
        assert f'href="/models/inceptionv1/{name}/"' in layers
    assert "mixed3a" not in layers


def test_a_new_version_is_found_once(client: Client, inceptionv1: NetworkModel) -> None:
    newer = model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=1))
    html = client.get("/search/", {"q": "mixed4c"}).content.decode()
    layers = html.split('id="layers-h"')[1].split("</section>")[0]
    assert layers.count("InceptionV1 mixed4c") == 1
    assert newer.slug == "inceptionv1"
