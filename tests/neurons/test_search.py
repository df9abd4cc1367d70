import re

import pytest
from django.test import Client

from neurons.models import Unit

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "query",
    ["inceptionv1 4c:447", "inceptionv1/mixed4c/447", "mixed4c 447", "4c:447", "mixed4c_0 447"],
)
def test_a_unit_shorthand_goes_straight_to_the_unit(
    client: Client, inceptionv1, query: str
) -> None:
    response = client.get("/search/", {"q": query})
    assert response.status_code == 302
    assert response["Location"] == "/models/inceptionv1/mixed4c/447/"


def test_a_shorthand_redirect_is_kept_until_the_catalogue_changes(
    client: Client, inceptionv1
) -> None:
    from neurons.services import layer_rename

    first = client.get("/search/", {"q": "inceptionv1 mixed4c 447"})
    again = client.get("/search/", {"q": "inceptionv1 mixed4c 447"})
    assert (first.status_code, first["X-Page-Cache"]) == (302, "miss")
    assert (again.status_code, again["X-Page-Cache"]) == (302, "hit")
    assert first["Location"] == again["Location"] == "/models/inceptionv1/mixed4c/447/"
    # A rename changes where the name leads at once: the kept redirect is not used.
    layer_rename(model_slug="inceptionv1", name="mixed4c", new_name="mixed4c_renamed")
    renamed = client.get("/search/", {"q": "inceptionv1 mixed4c 447"})
    assert renamed["X-Page-Cache"] == "miss"
    assert renamed["Location"] == "/models/inceptionv1/mixed4c_renamed/447/"
    # Signed-in readers are never served from it.
    client.cookies["sessionid"] = "anything"
    assert "X-Page-Cache" not in client.get("/search/", {"q": "inceptionv1 mixed4c 447"})


def test_curator_labels_are_searchable(client: Client, inceptionv1) -> None:
    Unit.objects.filter(layer__model=inceptionv1, layer__name="mixed3b", index=379).update(
        curator_label="curve detector"
    )
    Unit.objects.filter(layer__model=inceptionv1, layer__name="mixed4a", index=1).update(
        curator_label="high-low frequency"
    )
    html = client.get("/search/", {"q": "curve"}).content.decode()
    assert 'href="/models/inceptionv1/mixed3b/379/"' in html and "curve detector" in html
    assert "mixed4a/1/" not in html
    nothing = client.get("/search/", {"q": "zebra"}).content.decode()
    assert "No model, layer or unit matches" in nothing


def test_the_layer_grid_switches_technique(client: Client, inceptionv1) -> None:
    html = client.get("/models/inceptionv1/mixed3a/?technique=negative").content.decode()
    assert re.search(
        r'<a href="\?technique=negative" data-tab="negative" aria-current="page"', html
    )
    bogus = client.get("/models/inceptionv1/mixed3a/?technique=<script>")
    # No such technique: a 404 (which names the ones there are), never the name echoed raw.
    assert bogus.status_code == 404 and "<script>" not in bogus.content.decode()
