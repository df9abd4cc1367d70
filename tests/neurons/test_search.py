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


def test_searches_of_labels_class_names_and_tags_read_only_the_units_that_have_them(
    inceptionv1,
) -> None:
    """Each of the search's unit queries can read a partial index (the few units with a label,
    class name or tag), not every unit: with sequential scans off, PostgreSQL still picks a
    sequential scan only where no index serves the query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from neurons.search import catalogue_search

    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN's wording is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a small test catalogue
        with CaptureQueriesContext(connection) as ran:
            catalogue_search("dog")
        unit_queries = [q["sql"] for q in ran.captured_queries if 'FROM "neurons_unit"' in q["sql"]]
        assert len(unit_queries) == 3  # class names, labels, family tags
        for sql in unit_queries:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on neurons_unit" not in plan, plan
            assert any(name in plan for name in ("unit_named", "unit_labelled", "unit_tagged"))


def test_listed_units_cost_the_same_queries_however_many_and_read_only_what_is_shown(
    client: Client, inceptionv1
) -> None:
    """A search page reads its units once per list with their layers' names, and takes each
    unit's model from the models it already read, not from every unit's row joined to its
    model's (description, citation, JSON fields)."""
    from django.core.cache import caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def search(label: str, count: int) -> tuple[str, list[str]]:
        units = Unit.objects.filter(layer__model=inceptionv1, layer__name="mixed4a")
        Unit.objects.filter(pk__in=units.order_by("index")[:count].values("pk")).update(
            curator_label=label, family_tag=label
        )
        caches["default"].clear()
        with CaptureQueriesContext(connection) as ran:
            html = client.get("/search/", {"q": label}).content.decode()
        return html, [q["sql"] for q in ran.captured_queries]

    few_html, few = search("zebra", 2)
    many_html, many = search("okapi", 40)
    assert len(few) == len(many)
    assert many_html.count('href="/models/inceptionv1/mixed4a/') == 80  # labelled and family
    assert 'href="/models/inceptionv1/mixed4a/39/">InceptionV1 mixed4a:39</a> — okapi' in many_html
    listed = [sql for sql in many if 'FROM "neurons_unit"' in sql]
    assert listed and not any("citation_bibtex" in sql for sql in listed)
