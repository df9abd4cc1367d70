"""Mentions: a person `@named` in a note or a comment who may see it is told, once, by e-mail."""

from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

from annotations import selectors
from annotations.markdown import mentioned_usernames
from annotations.models import Comment, Mention, Note

MENTIONS_NOTIFIED = 20


def mentions_notify(
    text: str, *, author: Any, note: Note | None = None, comment: Comment | None = None
) -> None:
    """Store a mention and e-mail each person `@named` in `text` who may see it."""
    names = sorted(mentioned_usernames(text))[:MENTIONS_NOTIFIED]
    if not names:
        return
    users = get_user_model().objects.filter(username__in=names).exclude(pk=author.pk)
    where = note if note is not None else comment
    assert where is not None
    seen_note = note if note is not None else (comment.note if comment is not None else None)
    for user in users:
        if seen_note is not None and not selectors.note_visible(seen_note, user):
            continue
        Mention.objects.create(user=user, note=note, comment=comment)
        if user.email:
            subject = f"{selectors.author_name(author)} mentioned you on Microscope"
            url = where.get_absolute_url()
            address = user.email
            message = f"{subject}:\n\n{text[:500]}\n\n{url}\n"
            transaction.on_commit(
                partial(send_mail, subject, message, None, [address], fail_silently=True)
            )
