"""Who sees and who changes what: each rule against another user, another institution and
an anonymous visitor, on every page that lists or shows notes."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _visible(client: Client, note: Any) -> bool:
    response = client.get(note.get_absolute_url())
    assert response.status_code in (200, 404)
    return response.status_code == 200


def test_public_note_is_visible_to_everyone(clients: dict[str, Client], make_note: Any) -> None:
    note = make_note(visibility="public")
    assert all(_visible(c, note) for c in clients.values())


def test_institution_note_is_visible_only_to_members_of_that_institution(
    clients: dict[str, Client], make_note: Any
) -> None:
    note = make_note(visibility="institution", title="MIT only")
    assert _visible(clients["alice"], note)
    assert _visible(clients["amir"], note)  # same institution
    assert not _visible(clients["bea"], note)  # another institution
    assert not _visible(clients["bruno"], note)  # a curator elsewhere is no member
    assert not _visible(clients["sam"], note)
    assert not _visible(clients["anon"], note)


def test_private_note_is_visible_only_to_its_author(
    clients: dict[str, Client], make_note: Any
) -> None:
    note = make_note(visibility="private", title="Mine")
    assert _visible(clients["alice"], note)
    for other in ("amir", "bea", "sam", "anon"):
        assert not _visible(clients[other], note), other


def test_draft_is_visible_only_to_its_author_until_published(
    clients: dict[str, Client], make_note: Any
) -> None:
    note = make_note(visibility="public", publish=False)
    assert _visible(clients["alice"], note)
    assert not _visible(clients["amir"], note)
    assert not _visible(clients["anon"], note)
    response = clients["alice"].post(reverse("annotations:note-publish", kwargs={"pk": note.pk}))
    assert response.status_code == 302
    assert _visible(clients["anon"], note)


def test_only_the_author_may_publish(clients: dict[str, Client], make_note: Any) -> None:
    note = make_note(visibility="institution", publish=False)
    # amir may not even see alice's draft, so it is a 404, and the draft stays a draft.
    response = clients["amir"].post(reverse("annotations:note-publish", kwargs={"pk": note.pk}))
    assert response.status_code == 404
    note.refresh_from_db()
    assert note.published is None


@pytest.mark.parametrize("page", ["note-revision", "note-history", "note-cite", "note-short"])
def test_every_page_of_a_private_note_is_hidden_from_others(
    clients: dict[str, Client], make_note: Any, page: str
) -> None:
    note = make_note(visibility="institution")
    kwargs = {"pk": note.pk, "number": 1} if page == "note-revision" else {"pk": note.pk}
    url = reverse(f"annotations:{page}", kwargs=kwargs)
    assert clients["bea"].get(url).status_code == 404
    assert clients["anon"].get(url).status_code == 404
    assert clients["amir"].get(url).status_code in (200, 301)


def test_lists_feed_and_sitemap_show_only_what_the_visitor_may_see(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any]
) -> None:
    make_note(title="Open to all")
    make_note(visibility="institution", title="Members of MIT")
    make_note(visibility="private", title="Secret draft")
    anon = clients["anon"].get(reverse("annotations:notes")).content.decode()
    assert "Open to all" in anon and "Members of MIT" not in anon and "Secret draft" not in anon
    amir = clients["amir"].get(reverse("annotations:notes")).content.decode()
    assert "Open to all" in amir and "Members of MIT" in amir and "Secret draft" not in amir
    bea = clients["bea"].get(reverse("annotations:notes")).content.decode()
    assert "Members of MIT" not in bea
    for url in (
        reverse("annotations:feed"),
        reverse("annotations:person", kwargs={"username": "alice"}),
        reverse("annotations:institution", kwargs={"slug": "mit"}),
        "/sitemap-notes.xml",
    ):
        for who in ("anon", "amir"):  # public pages show only public work, even to members
            body = clients[who].get(url).content.decode()
            assert "Members of MIT" not in body and "Secret draft" not in body, url
    feed = clients["anon"].get(reverse("annotations:feed")).content.decode()
    assert "Open to all" in feed
    sitemap = clients["anon"].get("/sitemap-notes.xml").content.decode()
    assert sitemap.count("<url>") == 1


def test_only_the_author_edits_a_note(clients: dict[str, Client], make_note: Any) -> None:
    note = make_note()
    url = reverse("annotations:note-edit", kwargs={"pk": note.pk})
    data = {"title": "Hijacked", "body": "x", "units": "", "edges": "", "visibility": "public"}
    assert clients["amir"].post(url, data).status_code == 403
    assert clients["bea"].post(url, data).status_code == 403
    response = clients["anon"].post(url, data)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    note.refresh_from_db()
    assert note.title == "Curve detectors"
    assert note.revisions.count() == 1


def test_only_the_author_edits_or_deletes_a_comment(
    clients: dict[str, Client], people: dict[str, Any], unit: Any
) -> None:
    from annotations.comments import comment_create

    comment = comment_create(author=people["alice"], body="Looks like a curve.", unit=unit)
    edit = reverse("annotations:comment-edit", kwargs={"pk": comment.pk})
    delete = reverse("annotations:comment-delete", kwargs={"pk": comment.pk})
    assert clients["bea"].post(edit, {"body": "changed"}).status_code == 403
    assert clients["amir"].post(delete).status_code == 403
    assert clients["anon"].post(delete).status_code == 302  # to the login page
    comment.refresh_from_db()
    assert comment.body == "Looks like a curve." and comment.deleted is None


def test_comments_on_an_institution_note_are_hidden_with_it(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any]
) -> None:
    note = make_note(visibility="institution")
    ok = clients["amir"].post(
        reverse("annotations:note-comment", kwargs={"pk": note.pk}), {"body": "inside MIT"}
    )
    assert ok.status_code == 302
    comment = note.comments.get()
    for url in (
        reverse("annotations:comment-history", kwargs={"pk": comment.pk}),
        reverse("annotations:comment-reply", kwargs={"pk": comment.pk}),
        reverse("annotations:note-comment", kwargs={"pk": note.pk}),
    ):
        assert clients["bea"].post(url, {"body": "from outside"}).status_code == 404
    assert note.comments.count() == 1
    person = clients["anon"].get(reverse("annotations:person", kwargs={"username": "amir"}))
    assert "inside MIT" not in person.content.decode()


def test_the_affiliation_shown_must_be_a_membership(
    clients: dict[str, Client], institutions: dict[str, Any], people: dict[str, Any]
) -> None:
    url = reverse("annotations:profile")
    response = clients["sam"].post(
        url, {"display_name": "Sam", "institution": institutions["mit"].pk}
    )
    assert response.status_code == 400
    people["sam"].profile.refresh_from_db()
    assert people["sam"].profile.institution is None
    ok = clients["alice"].post(
        url, {"display_name": "Dr Alice", "institution": institutions["mit"].pk}
    )
    assert ok.status_code == 302
    people["alice"].profile.refresh_from_db()
    assert people["alice"].profile.display_name == "Dr Alice"


def test_moderation_queue_is_for_curators_and_staff(
    clients: dict[str, Client], staff_client: Client
) -> None:
    url = reverse("annotations:moderation")
    assert clients["alice"].get(url).status_code == 403
    assert clients["anon"].get(url).status_code == 302
    assert clients["bruno"].get(url).status_code == 200  # curator at ETH
    assert staff_client.get(url).status_code == 200
