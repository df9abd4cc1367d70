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
