from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from annotations.comments import comment_create, comment_delete, comment_touch, comment_update
from annotations.errors import AnnotationRefused, NotAllowed
from annotations.models import Comment, CommentRevision

pytestmark = pytest.mark.django_db


def _discussion_version(unit: Any) -> int:
    unit.refresh_from_db()
    return int(unit.discussion_version)


def test_a_comment_on_a_unit_is_stored_rendered_and_refreshes_that_unit(
    people: dict[str, Any], unit: Any
) -> None:
    before = _discussion_version(unit)
    comment = comment_create(author=people["bea"], body=" Looks like **curves**. ", unit=unit)
    stored = Comment.objects.get()
    assert (stored.pk, stored.unit, stored.note, stored.body) == (
        comment.pk,
        unit,
        None,
        "Looks like **curves**.",
    )
    assert "<strong>curves</strong>" in stored.body_html
    assert _discussion_version(unit) == before + 1


def test_a_reply_joins_its_parents_thread(people: dict[str, Any], make_note: Any) -> None:
    note = make_note()
    question = comment_create(author=people["bea"], body="Why?", note=note)
    answer = comment_create(author=people["alice"], body="Because.", parent=question)
    assert (answer.note, answer.unit, answer.parent) == (note, None, question)
    comment_delete(comment=question, user=people["bea"])
    with pytest.raises(AnnotationRefused, match="was removed"):
        comment_create(author=people["amir"], body="And?", parent=question)
    assert Comment.objects.count() == 2


def test_a_comment_needs_one_subject_a_login_and_a_note_it_may_see(
    people: dict[str, Any], unit: Any, make_note: Any
) -> None:
    note = make_note()
    with pytest.raises(AnnotationRefused, match="one unit or one note"):
        comment_create(author=people["bea"], body="Both", unit=unit, note=note)
    with pytest.raises(AnnotationRefused, match="one unit or one note"):
        comment_create(author=people["bea"], body="Neither")
    with pytest.raises(NotAllowed, match="log in"):
        comment_create(author=AnonymousUser(), body="Hi", unit=unit)
    draft = make_note(publish=False)
    with pytest.raises(NotAllowed, match="not published"):
        comment_create(author=people["bea"], body="Early", note=draft)
    internal = make_note(visibility="institution")
    with pytest.raises(NotAllowed, match="cannot see"):
        comment_create(author=people["bea"], body="Hm", note=internal)  # bea is at ETH
    assert not Comment.objects.exists()


def test_an_edit_keeps_the_old_body_as_a_revision(people: dict[str, Any], unit: Any) -> None:
    comment = comment_create(author=people["bea"], body="First.", unit=unit)
    before = _discussion_version(unit)
    comment_update(comment=comment, editor=people["bea"], body="Second.")
    stored = Comment.objects.get()
    assert stored.body == "Second." and stored.edited is not None
    revision = CommentRevision.objects.get()
    assert (revision.comment, revision.body, revision.created) == (stored, "First.", stored.created)
    assert _discussion_version(unit) == before + 1
    with pytest.raises(NotAllowed):
        comment_update(comment=stored, editor=people["alice"], body="Not mine.")
    comment_delete(comment=stored, user=people["bea"])
    with pytest.raises(AnnotationRefused, match="deleted comment"):
        comment_update(comment=stored, editor=people["bea"], body="Back.")
    assert Comment.objects.get().body == "Second." and CommentRevision.objects.count() == 1


def test_a_delete_is_soft_and_only_the_authors(people: dict[str, Any], unit: Any) -> None:
    comment = comment_create(author=people["bea"], body="Oops.", unit=unit)
    with pytest.raises(NotAllowed):
        comment_delete(comment=comment, user=people["alice"])
    assert Comment.objects.get().deleted is None
    deleted = comment_delete(comment=comment, user=people["bea"]).deleted
    assert deleted is not None
    stored = Comment.objects.get()
    assert stored.deleted == deleted and stored.body == "Oops."  # kept for moderators
    assert comment_delete(comment=stored, user=people["bea"]).deleted == deleted


def test_touching_a_comment_refreshes_only_a_units_pages(
    people: dict[str, Any], unit: Any, make_note: Any
) -> None:
    on_unit = comment_create(author=people["bea"], body="On the unit.", unit=unit)
    on_note = comment_create(author=people["bea"], body="On the note.", note=make_note())
    before = _discussion_version(unit)
    comment_touch(on_unit)
    assert _discussion_version(unit) == before + 1
    comment_touch(on_note)  # a note's comments are on no unit page
    assert _discussion_version(unit) == before + 1
