"""The unit page's notes panel shows each reader the notes they may read, and never lets a
signed-in reader's notes into the anonymous page that the page cache keeps for everyone."""

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db

UNIT = "/models/inceptionv1/mixed4c/447/"


@pytest.fixture
def notes(make_note: Any) -> dict[str, Any]:
    return {
        "public": make_note(title="Public curve note"),
        "institution": make_note(title="MIT-only curve note", visibility="institution"),
        "private": make_note(title="Alice private curve note", visibility="private"),
        "draft": make_note(title="Alice draft curve note", publish=False),
    }


def _titles(html: str, notes: dict[str, Any]) -> set[str]:
    """The notes the panel lists, by key, from their links."""
    return {key for key, note in notes.items() if f'href="{note.get_absolute_url()}"' in html}


def test_a_member_sees_the_institution_only_note_on_the_unit_page(
    clients: dict[str, Client], notes: dict[str, Any]
) -> None:
    page = clients["amir"].get(UNIT)
    html = page.content.decode()
    assert page.status_code == 200
    assert _titles(html, notes) == {"public", "institution"}
    assert 'MIT-only curve note</bdi></a> <span class="tag">my institution only</span>' in html
    assert not page.has_header("X-Page-Cache")  # never from, nor into, the shared cache
    # The author also sees her private note; drafts stay on her notes list.
    assert _titles(clients["alice"].get(UNIT).content.decode(), notes) == {
        "public",
        "institution",
        "private",
    }


def test_others_signed_in_see_public_notes_only(
    clients: dict[str, Client], notes: dict[str, Any]
) -> None:
    for who in ("bea", "sam", "bruno"):
        assert _titles(clients[who].get(UNIT).content.decode(), notes) == {"public"}, who


def test_the_cached_anonymous_page_never_holds_a_members_notes(
    clients: dict[str, Client], notes: dict[str, Any]
) -> None:
    anon = Client()
    for member_first in (True, False):
        cache.clear()
        if member_first:  # a member's visit first: nothing of it may be kept for others
            assert "MIT-only curve note" in clients["amir"].get(UNIT).content.decode()
        miss = anon.get(UNIT)
        assert miss["X-Page-Cache"] == "miss"
        assert _titles(miss.content.decode(), notes) == {"public"}
        assert "MIT-only" not in miss.content.decode()
        # A member after an anonymous visit is not served the cached page either.
        assert "MIT-only curve note" in clients["amir"].get(UNIT).content.decode()
        hit = anon.get(UNIT)
        assert hit["X-Page-Cache"] == "hit"
        assert _titles(hit.content.decode(), notes) == {"public"}
        assert "MIT-only" not in hit.content.decode()
