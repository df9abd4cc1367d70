"""Revisions, diffs, comment history, soft delete, threads, and the unit page's panel."""

from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _edit(client: Client, note: Any, **changes: str) -> Any:
    data = {
        "title": note.title,
        "body": note.body,
        "units": "inceptionv1 4c:447, input\ninceptionv1/mixed4c/448",
        "edges": "1 -> 2",
        "visibility": note.visibility,
    }
    data.update(changes)
    return client.post(reverse("annotations:note-edit", kwargs={"pk": note.pk}), data)


def test_every_edit_is_kept_as_a_revision_with_author_and_a_diff(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any]
) -> None:
    note = make_note(body="Curves are detected.\nSecond line.")
    assert (
        _edit(clients["alice"], note, body="Curves are detected early.\nSecond line.").status_code
        == 302
    )
    assert _edit(clients["alice"], note, edges="1 -| 2").status_code == 302
    revisions = list(note.revisions.order_by("number"))
    assert [r.number for r in revisions] == [1, 2, 3]
    assert {r.author for r in revisions} == {people["alice"]}
    assert revisions[0].body == "Curves are detected.\nSecond line."
    assert revisions[1].body == "Curves are detected early.\nSecond line."
    assert revisions[2].edges == "1 -| 2"
    note.refresh_from_db()
    assert note.edges.get().kind == "inhibitory"
    history = reverse("annotations:note-history", kwargs={"pk": note.pk})
    page = clients["anon"].get(history, {"from": 1, "to": 2}).content.decode()
    assert '<span class="del">-Curves are detected.</span>' in page
    assert '<span class="add">+Curves are detected early.</span>' in page
    page = clients["anon"].get(history, {"from": 2, "to": 3}).content.decode()
    assert '<span class="add">+1 -| 2</span>' in page
    assert clients["anon"].get(history, {"from": 1, "to": 9}).status_code == 404
    assert clients["anon"].get(history, {"from": "x"}).status_code == 400
    # An old revision keeps its text at its own URL (what citations name).
    old = clients["anon"].get(
        reverse("annotations:note-revision", kwargs={"pk": note.pk, "number": 1})
    )
    assert "Curves are detected." in old.content.decode()
    assert "early" not in old.content.decode()


def test_a_refused_edit_keeps_the_note_and_its_history(
    clients: dict[str, Client], make_note: Any
) -> None:
    note = make_note()
    response = _edit(clients["alice"], note, title="New", units="inceptionv1 4c:100000")
    assert response.status_code == 400
    note.refresh_from_db()
    assert note.title == "Curve detectors"
    assert note.revisions.count() == 1
    assert note.note_units.count() == 2


def test_note_page_draws_the_circuit_and_links_each_unit(
    clients: dict[str, Client], make_note: Any, unit: Any
) -> None:
    note = make_note()
    html = clients["anon"].get(note.get_absolute_url()).content.decode()
    assert '<svg class="circuit"' in html
    assert f'<a href="{unit.get_versioned_url()}" class="node">' in html
    assert 'marker-end="url(#arrow)"' in html
    assert "mixed4c:447 excites mixed4c:448" in html
    assert "@misc{microscope_note_" in html  # the Cite box
    assert reverse("annotations:note-short", kwargs={"pk": note.pk}) in html


def test_comment_edits_keep_history_and_deletes_are_soft(
    clients: dict[str, Client], unit: Any
) -> None:
    from annotations.models import Comment

    discussion = reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk})
    clients["alice"].post(discussion, {"body": "First thought."})
    comment = Comment.objects.get()
    clients["bea"].post(
        reverse("annotations:comment-reply", kwargs={"pk": comment.pk}),
        {"body": "A reply from ETH."},
    )
    edit = reverse("annotations:comment-edit", kwargs={"pk": comment.pk})
    assert clients["alice"].post(edit, {"body": "Second thought."}).status_code == 302
    comment.refresh_from_db()
    assert comment.body == "Second thought." and comment.edited is not None
    assert list(comment.revisions.values_list("body", flat=True)) == ["First thought."]
    history = clients["anon"].get(reverse("annotations:comment-history", kwargs={"pk": comment.pk}))
    assert "First thought." in history.content.decode()

    delete = reverse("annotations:comment-delete", kwargs={"pk": comment.pk})
    assert clients["alice"].post(delete).status_code == 302
    comment.refresh_from_db()
    assert comment.deleted is not None and comment.body == "Second thought."  # kept
    page = clients["anon"].get(discussion).content.decode()
    assert "comment deleted" in page
    assert "Second thought." not in page
    assert "A reply from ETH." in page  # the reply stays in the thread
    assert "Bea B." in page and "ETH Zürich" in page  # author and institution
    assert (
        clients["anon"]
        .get(reverse("annotations:comment-history", kwargs={"pk": comment.pk}))
        .status_code
        == 404
    )
    assert clients["alice"].post(edit, {"body": "undelete?"}).status_code == 400


def test_unit_panel_shows_public_notes_and_the_thread_and_touches_the_model_or_unit(
    clients: dict[str, Client], make_note: Any, unit: Any, inceptionv1: Any, people: dict[str, Any]
) -> None:
    from annotations.comments import comment_create
    from annotations.selectors import unit_annotations

    version = inceptionv1.content_version
    make_note(title="Public curve note")
    make_note(title="MIT curve note", visibility="institution")
    make_note(title="Draft curve note", publish=False)
    inceptionv1.refresh_from_db()
    assert inceptionv1.content_version == version + 1  # only the public note changes the page
    comment = comment_create(author=people["bea"], body="Seen from ETH.", unit=unit)
    comment_create(author=people["alice"], body="Agreed.", parent=comment)
    inceptionv1.refresh_from_db()
    unit.refresh_from_db()
    assert inceptionv1.content_version == version + 1  # comments show on their unit's page only
    assert unit.discussion_version == 2
    data = unit_annotations(unit)
    assert [n.title for n in data["notes"]] == ["Public curve note"]
    assert [(e.comment.body, e.depth) for e in data["thread"]] == [
        ("Seen from ETH.", 0),
        ("Agreed.", 1),
    ]
    html = Template("{% load annotations_panel %}{% unit_annotations_panel unit %}").render(
        Context({"unit": unit})
    )
    assert (
        "Public curve note" in html
        and "MIT curve note" not in html
        and "Draft curve note" not in html
    )
    assert "Seen from ETH." in html and "csrfmiddlewaretoken" not in html and "<form" not in html
    assert data["write_note_url"] in html and data["discussion_url"] in html


def test_the_write_a_note_link_prefills_the_unit(clients: dict[str, Client], unit: Any) -> None:
    page = (
        clients["alice"].get(reverse("annotations:note-create"), {"unit": unit.pk}).content.decode()
    )
    assert f"inceptionv1@{unit.layer.model.version}/mixed4c/447" in page
