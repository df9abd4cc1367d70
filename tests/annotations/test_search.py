"""The site search finds notes by title and text, and only the notes the searcher may see:
each visibility rule against an anonymous visitor, another member of the institution, another
institution and the author. Runs on SQLite (substring) and PostgreSQL (full-text search)."""

import re
from typing import Any

import pytest
from django.test import Client

from annotations.moderation import moderation_set_hidden
from annotations.search import notes_matching
from neurons.pagecache import content_version
from tests.annotations.test_input import XSS_PAYLOADS, _problems, _user_markup

pytestmark = pytest.mark.django_db

SEARCH = "/search/"


def _found(client: Client, query: str) -> set[int]:
    """The primary keys of the notes the search page lists for `query`."""
    response = client.get(SEARCH, {"q": query})
    assert response.status_code == 200
    html = response.content.decode()
    section = html.split('<section aria-labelledby="notes-h">', 1)[1].split("</section>", 1)[0]
    return {int(pk) for pk in re.findall(r'<li><a href="/notes/(\d+)/">', section)}


@pytest.fixture
def notes(make_note: Any) -> dict[str, Any]:
    """One zebra note of each kind, all by alice (MIT)."""
    return {
        "public": make_note(title="Zebra public", visibility="public"),
        "institution": make_note(title="Zebra for MIT", visibility="institution"),
        "private": make_note(title="Zebra private", visibility="private"),
        "draft": make_note(title="Zebra draft", visibility="public", publish=False),
    }


def test_anonymous_visitors_find_only_public_published_notes(
    clients: dict[str, Client], notes: dict[str, Any]
) -> None:
    assert _found(clients["anon"], "zebra") == {notes["public"].pk}


def test_title_and_body_text_match_whatever_the_case(
    clients: dict[str, Client], make_note: Any
) -> None:
    by_title = make_note(title="Curve detectors in mixed3b", body="Nothing else.")
    by_body = make_note(title="Untitled", body="These units respond to **curves** of any angle.")
    dogs = make_note(title="Dog heads", body="Snouts and ears.")
    assert _found(clients["anon"], "CURVE") == {by_title.pk, by_body.pk}
    assert _found(clients["anon"], "snouts") == {dogs.pk}
    assert _found(clients["anon"], "okapi") == set()
    page = clients["anon"].get(SEARCH, {"q": "okapi"}).content.decode()
    assert "No note you can see mentions “okapi”" in page


def test_members_of_the_institution_find_its_institution_only_notes(
    clients: dict[str, Client], notes: dict[str, Any]
) -> None:
    expected = {notes["public"].pk, notes["institution"].pk}
    assert _found(clients["amir"], "zebra") == expected


@pytest.mark.parametrize("who", ["bea", "bruno", "sam", "staff"])
def test_another_institution_does_not_find_institution_only_notes(
    clients: dict[str, Client], notes: dict[str, Any], who: str
) -> None:
    # bruno is a curator (at ETH) and staff can moderate: neither makes them MIT members.
    assert _found(clients[who], "zebra") == {notes["public"].pk}


def test_private_notes_and_drafts_are_found_only_by_their_author(
    clients: dict[str, Client], notes: dict[str, Any]
) -> None:
    assert _found(clients["alice"], "zebra") == {n.pk for n in notes.values()}
    for other in ("amir", "bea", "anon"):
        found = _found(clients[other], "zebra")
        assert notes["private"].pk not in found and notes["draft"].pk not in found, other
    page = clients["alice"].get(SEARCH, {"q": "zebra draft"}).content.decode()
    assert '<span class="tag">draft</span>' in page


def test_hidden_notes_are_never_found(
    clients: dict[str, Client], notes: dict[str, Any], people: dict[str, Any]
) -> None:
    from annotations.models import Membership
    from annotations.people import user_signup

    # Moderators act only on what they may read: MIT's note is hidden by an MIT curator.
    mit_curator = user_signup(
        username="carol", email="carol@mit.edu", password="pw-12345!", email_verified=True
    )
    Membership.objects.filter(user=mit_curator).update(role=Membership.Role.CURATOR)
    moderation_set_hidden(moderator=people["bruno"], hidden=True, note=notes["public"])
    moderation_set_hidden(moderator=mit_curator, hidden=True, note=notes["institution"])
    for who in ("anon", "alice", "amir", "bruno", "staff"):
        found = _found(clients[who], "zebra")
        assert notes["public"].pk not in found and notes["institution"].pk not in found, who
    moderation_set_hidden(moderator=people["bruno"], hidden=False, note=notes["public"])
    assert _found(clients["anon"], "zebra") == {notes["public"].pk}


def test_xss_in_a_note_title_and_body_is_escaped_on_the_search_page(
    clients: dict[str, Client], make_note: Any
) -> None:
    note = make_note(
        title="<script>alert('zebra')</script><img src=x onerror=alert(1)>",
        body="zebra\n\n" + "\n\n".join(XSS_PAYLOADS),
    )
    for who in ("anon", "alice"):
        response = clients[who].get(SEARCH, {"q": "zebra"})
        html = response.content.decode()
        assert f'href="/notes/{note.pk}/"' in html, who
        assert "&lt;script&gt;alert(&#x27;zebra&#x27;)&lt;/script&gt;" in html, who
        assert _problems(_user_markup(html)) == [], who


def test_the_query_is_escaped_too(clients: dict[str, Client], inceptionv1: Any) -> None:
    html = clients["anon"].get(SEARCH, {"q": "<svg onload=alert(1)>"}).content.decode()
    assert "&lt;svg onload=alert(1)&gt;" in html
    assert _problems(_user_markup(html)) == []


def test_anonymous_search_pages_are_cached_until_a_note_changes_members_never(
    clients: dict[str, Client], notes: dict[str, Any], make_note: Any, people: dict[str, Any]
) -> None:
    assert content_version(SEARCH) is None  # not PageCache's: the view keeps its own copies
    first = clients["anon"].get(SEARCH, {"q": "zebra"})
    member = clients["amir"].get(SEARCH, {"q": "zebra"})
    again = clients["anon"].get(SEARCH, {"q": "zebra"})
    assert first["X-Page-Cache"] == "miss" and again["X-Page-Cache"] == "hit"
    assert first.content == again.content
    assert "X-Page-Cache" not in member  # a visitor with a session: built for them, not kept
    assert "Cookie" in member["Vary"]  # a shared HTTP cache must not give it to others
    assert f'href="/notes/{notes["institution"].pk}/"' in member.content.decode()
    assert f'href="/notes/{notes["institution"].pk}/"' not in again.content.decode()

    # Every change to what an anonymous search shows makes the next one a miss.
    newer = make_note(title="Zebra second public", visibility="public", units="", edges="")
    assert _found(clients["anon"], "zebra") == {notes["public"].pk, newer.pk}
    moderation_set_hidden(moderator=people["bruno"], hidden=True, note=newer)
    assert _found(clients["anon"], "zebra") == {notes["public"].pk}
    moderation_set_hidden(moderator=people["bruno"], hidden=False, note=newer)
    assert _found(clients["anon"], "zebra") == {notes["public"].pk, newer.pk}
    draft = notes["draft"]
    from annotations.notes import note_publish

    note_publish(note=draft, user=people["alice"])
    assert _found(clients["anon"], "zebra") == {notes["public"].pk, newer.pk, draft.pk}
    assert clients["anon"].get(SEARCH, {"q": "zebra"})["X-Page-Cache"] == "hit"


def test_a_unit_shorthand_still_goes_straight_to_the_unit(
    clients: dict[str, Client], notes: dict[str, Any]
) -> None:
    response = clients["alice"].get(SEARCH, {"q": "inceptionv1 4c:447"})
    assert response.status_code == 302
    assert response["Location"] == "/models/inceptionv1/mixed4c/447/"


def test_notes_matching_answers_nothing_for_an_empty_query(
    people: dict[str, Any], notes: dict[str, Any]
) -> None:
    assert list(notes_matching("  ", user=people["alice"])) == []
    assert [n.pk for n in notes_matching("zebra public", user=people["alice"])] == [
        notes["public"].pk
    ]


def test_the_kept_search_vector_follows_every_write_and_is_indexed(
    clients: dict[str, Client], people: dict[str, Any], make_note: Any
) -> None:
    """PostgreSQL: the trigger of migration 0004 keeps each note's vector, whoever writes the
    row (the service, a bulk update), and the search reads it through the GIN index."""
    from django.contrib.postgres.search import SearchQuery
    from django.db import connection

    from annotations.models import Note
    from annotations.notes import note_update
    from annotations.search import TEXT_SEARCH_CONFIG

    if connection.vendor != "postgresql":
        pytest.skip("the kept vector and its index exist on PostgreSQL only")
    in_body = make_note(title="Untitled", body="Where the okapi looks.")
    in_title = make_note(title="Okapi detectors", body="Stripes.")
    assert Note.objects.filter(pk=in_body.pk, search_vector__isnull=False).exists()
    # Title (weight A) ranks above body (B), and stemming finds the plural.
    assert [n.pk for n in notes_matching("okapis", user=people["sam"])] == [
        in_title.pk,
        in_body.pk,
    ]
    note_update(note=in_body, editor=people["alice"], title="Untitled", body="Zebras.", units="")
    Note.objects.filter(pk=in_title.pk).update(title="Quagga detectors")  # no save(): bulk
    assert _found(clients["anon"], "okapi") == set()
    assert _found(clients["anon"], "zebra") == {in_body.pk}
    assert _found(clients["anon"], "quagga") == {in_title.pk}
    # The match can use the index (with a few rows the planner prefers others unless told).
    terms = SearchQuery("quagga", search_type="websearch", config=TEXT_SEARCH_CONFIG)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = Note.objects.filter(search_vector=terms).explain()
    assert "annotations_note_search_gin" in plan, plan
