"""Mentions: stored for, and mailed to, each person named who may see where they were named."""

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from annotations.mentions import MENTIONS_NOTIFIED, mentions_notify

pytestmark = pytest.mark.django_db


def test_mentions_email_the_mentioned_person_and_fill_their_inbox(
    clients: dict[str, Client],
    people: dict[str, Any],
    unit: Any,
    make_note: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from annotations.models import Mention

    discussion = reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk})
    with django_capture_on_commit_callbacks(execute=True):
        clients["alice"].post(discussion, {"body": "What do you think, @bea? (cc bob@example.org)"})
    assert [m.user.username for m in Mention.objects.all()] == ["bea"]
    assert [m.to for m in mail.outbox] == [["bea@ethz.ch"]]
    inbox = clients["bea"].get(reverse("annotations:inbox")).content.decode()
    assert "in a comment by <bdi>Alice A.</bdi>" in inbox
    # Someone who may not see an institution-only note is not told about it.
    note = make_note(visibility="institution", body="Ask @bea and @amir about this.")
    assert [m.user.username for m in Mention.objects.filter(note=note)] == ["amir"]


def test_the_author_and_unknown_names_are_not_notified_and_the_mail_waits_for_the_commit(
    people: dict[str, Any], unit: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from annotations.comments import comment_create
    from annotations.models import Mention

    comment = comment_create(author=people["alice"], body="Plain.", unit=unit)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        mentions_notify(
            "@alice asks @bea, @nobody and @amir", author=people["alice"], comment=comment
        )
    assert sorted(m.user.username for m in Mention.objects.filter(comment=comment)) == [
        "amir",
        "bea",
    ]
    assert mail.outbox == [] and len(callbacks) == 2  # sent once the write is committed
    for callback in callbacks:
        callback()
    assert sorted(m.to[0] for m in mail.outbox) == ["amir@mit.edu", "bea@ethz.ch"]
    assert mail.outbox[0].subject == "Alice A. mentioned you on Microscope"
    assert comment.get_absolute_url() in mail.outbox[0].body


def test_at_most_so_many_people_are_notified_per_text(
    people: dict[str, Any], unit: Any, django_user_model: Any
) -> None:
    from annotations.comments import comment_create
    from annotations.models import Mention

    names = [f"user{i:02d}" for i in range(MENTIONS_NOTIFIED + 5)]
    for name in names:
        django_user_model.objects.create_user(name, "", "pw-12345!")
    comment = comment_create(author=people["alice"], body="Plain.", unit=unit)
    mentions_notify(" ".join(f"@{name}" for name in names), author=people["alice"], comment=comment)
    notified = sorted(m.user.username for m in Mention.objects.filter(comment=comment))
    assert notified == sorted(names)[:MENTIONS_NOTIFIED]
    assert mail.outbox == []  # no addresses to mail
