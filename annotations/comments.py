"""Comments on a unit or a note, and replies; edited by their author, deleted softly.

A comment on a unit is shown only on that unit's pages: a change touches the unit
(`comment_touch`), so its cached pages refresh at once.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations import selectors
from annotations.errors import AnnotationRefused, NotAllowed
from annotations.markdown import render_markdown
from annotations.mentions import mentions_notify
from annotations.models import COMMENT_BODY_MAX, Comment, CommentRevision, Note
from annotations.write_rules import clean_text, rate_limit, require_author
from neurons.models import Unit
from neurons.services import unit_touch


def comment_create(
    *,
    author: Any,
    body: str,
    unit: Unit | None = None,
    note: Note | None = None,
    parent: Comment | None = None,
) -> Comment:
    """A comment on a unit or a note, or a reply (which joins its parent's thread)."""
    if not author.is_authenticated:
        raise NotAllowed("log in to comment")
    if parent is not None:
        if parent.deleted is not None or parent.hidden:
            raise AnnotationRefused("that comment was removed; reply to the thread instead")
        unit, note = parent.unit, parent.note
    if (unit is None) == (note is None):
        raise AnnotationRefused("a comment is about one unit or one note")
    if note is not None and (note.published is None and note.author_id != author.pk):
        raise NotAllowed("this note is not published")
    if note is not None and not selectors.note_visible(note, author):
        raise NotAllowed("you cannot see this note")
    rate_limit(author)
    text = clean_text(body, field="body", limit=COMMENT_BODY_MAX)
    with transaction.atomic():
        comment = Comment.objects.create(
            author=author,
            unit=unit,
            note=note,
            parent=parent,
            body=text,
            body_html=render_markdown(text, model=selectors.model_written_about(unit, note)),
        )
        if unit is not None:
            unit_touch(unit.pk)
        mentions_notify(text, comment=comment, author=author)
    return comment


def comment_update(*, comment: Comment, editor: Any, body: str) -> Comment:
    require_author(editor, comment.author_id, "comment")
    if comment.deleted is not None:
        raise AnnotationRefused("a deleted comment cannot be edited")
    rate_limit(editor)
    text = clean_text(body, field="body", limit=COMMENT_BODY_MAX)
    with transaction.atomic():
        CommentRevision.objects.create(
            comment=comment, body=comment.body, created=comment.edited or comment.created
        )
        comment.body = text
        comment.body_html = render_markdown(
            text, model=selectors.model_written_about(comment.unit, comment.note)
        )
        comment.edited = timezone.now()
        comment.save(update_fields=["body", "body_html", "edited"])
        comment_touch(comment)
    return comment


def comment_delete(*, comment: Comment, user: Any) -> Comment:
    """Soft delete: the thread keeps a "comment deleted" line; the text stays for moderators."""
    require_author(user, comment.author_id, "comment")
    if comment.deleted is None:
        comment.deleted = timezone.now()
        comment.save(update_fields=["deleted"])
        comment_touch(comment)
    return comment


def comment_touch(comment: Comment) -> None:
    if comment.unit_id is not None:
        unit_touch(comment.unit_id)
