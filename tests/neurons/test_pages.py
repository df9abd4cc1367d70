import pytest
from django.test import Client

from neurons.models import NetworkModel


def test_model_list_links_each_model_and_says_untrained(
    client: Client, inceptionv1: NetworkModel
) -> None:
    response = client.get("/models/")
    assert response.status_code == 200
    assert b'href="/models/inceptionv1/"' in response.content
    assert b"untrained weights" in response.content


def test_model_page_lists_layers_with_unit_counts_and_version(
    client: Client, inceptionv1: NetworkModel
) -> None:
    response = client.get("/models/inceptionv1/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/models/inceptionv1/mixed4c/"' in html
    assert "<td>512</td>" in html  # mixed4c's units
    assert inceptionv1.version in html
    assert "224 × 224" in html
    assert "Untrained weights" in html


def test_layer_page_lists_units_and_pages(client: Client, inceptionv1: NetworkModel) -> None:
    response = client.get("/models/inceptionv1/mixed4c/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/models/inceptionv1/mixed4c/0/"' in html
    assert "page 1 of 3" in html
    second = client.get("/models/inceptionv1/mixed4c/?page=3").content.decode()
    assert 'href="/models/inceptionv1/mixed4c/447/"' in second


def test_unit_page_and_its_versioned_permalink_show_the_same_unit(
    client: Client, inceptionv1: NetworkModel
) -> None:
    latest = client.get("/models/inceptionv1/mixed4c/447/")
    versioned = client.get(f"/models/inceptionv1@{inceptionv1.version}/mixed4c/447/")
    assert latest.status_code == versioned.status_code == 200
    for response in (latest, versioned):
        html = response.content.decode()
        assert "mixed4c:447" in html
        assert f"/models/inceptionv1@{inceptionv1.version}/mixed4c/447/" in html
        assert "Untrained weights" in html


@pytest.mark.parametrize(
    "url",
    [
        "/models/nosuchmodel/",
        "/models/inceptionv1@000000000000/",
        "/models/inceptionv1/nosuchlayer/",
        "/models/inceptionv1/mixed4c/512/",
        "/models/inceptionv1/mixed4c/99999/",
        "/models/inceptionv1/mixed4c/-1/",
        "/models/inceptionv1/mixed4c/abc/",
        "/models/Inception V1/",
    ],
)
def test_unknown_models_layers_and_units_are_404(
    client: Client, inceptionv1: NetworkModel, url: str
) -> None:
    assert client.get(url).status_code == 404


def test_home_shows_the_zoo(client: Client, inceptionv1: NetworkModel) -> None:
    html = client.get("/").content.decode()
    assert "The model zoo" in html and 'href="/models/inceptionv1/"' in html
