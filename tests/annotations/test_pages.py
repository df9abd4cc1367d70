"""Every annotations page answers, and the index filters by model, author and institution."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_every_page_answers(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any], unit: Any
) -> None:
    from annotations.comments import comment_create
    from annotations.moderation import report_create

    note = make_note()
    comment = comment_create(author=people["bea"], body="A comment.", note=note)
    report_create(reporter=people["sam"], reason="check this", comment=comment)
    alice, bruno = clients["alice"], clients["bruno"]
    for client, url in [
        (alice, reverse("annotations:notes")),
        (alice, reverse("annotations:note-create")),
        (alice, reverse("annotations:note-edit", kwargs={"pk": note.pk})),
        (alice, reverse("annotations:comment-reply", kwargs={"pk": comment.pk})),
        (alice, reverse("annotations:comment-report", kwargs={"pk": comment.pk})),
        (alice, reverse("annotations:note-report", kwargs={"pk": note.pk})),
        (alice, reverse("annotations:profile")),
        (alice, reverse("annotations:inbox")),
        (alice, reverse("password_change")),
        (clients["bea"], reverse("annotations:comment-edit", kwargs={"pk": comment.pk})),
        (bruno, reverse("annotations:moderation")),
        (bruno, reverse("annotations:moderation") + "?status=dismissed"),
        (clients["anon"], reverse("annotations:institutions")),
        (clients["anon"], reverse("annotations:institution", kwargs={"slug": "eth"})),
        (clients["anon"], reverse("annotations:person", kwargs={"username": "bea"})),
        (clients["anon"], reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk})),
        (clients["anon"], reverse("annotations:signup")),
        (clients["anon"], reverse("login")),
    ]:
        assert client.get(url).status_code == 200, url
    queue = bruno.get(reverse("annotations:moderation")).content.decode()
    assert "check this" in queue and "A comment." in queue


def test_notes_index_filters(clients: dict[str, Client], make_note: Any) -> None:
    make_note(title="Alice on curves")
    make_note(author="bea", title="Bea on curves")
    url = reverse("annotations:notes")
    by_author = clients["anon"].get(url, {"author": "bea"}).content.decode()
    assert "Bea on curves" in by_author and "Alice on curves" not in by_author
    by_place = clients["anon"].get(url, {"institution": "mit"}).content.decode()
    assert "Alice on curves" in by_place and "Bea on curves" not in by_place
    by_model = clients["anon"].get(url, {"model": "inceptionv1"}).content.decode()
    assert "Alice on curves" in by_model and "Bea on curves" in by_model
    assert "curves" not in clients["anon"].get(url, {"model": "alexnet"}).content.decode()
