"""`{% comment_thread %}` prints a thread as the included template it replaced
(`thread_reference.html`, the old `annotations/_thread.html`) did, byte for byte, for every
reader and every state of a comment; and the pages that show threads use it."""

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from annotations import selectors
from annotations.comments import comment_create, comment_delete, comment_update
from annotations.models import Comment

pytestmark = pytest.mark.django_db

REFERENCE = (Path(__file__).parent / "thread_reference.html").read_text()
TAG = "{% load annotations_thread %}{% comment_thread thread interactive %}"


@pytest.fixture
def thread(people: dict[str, Any], unit: Any) -> list[selectors.ThreadEntry]:
    """Shown, edited, deleted and hidden comments, replies nested deeper than the style sheet
    indents, and text that must be escaped or is HTML already (the sanitized body)."""
    alice, bea = people["alice"], people["bea"]
    root = comment_create(author=alice, body="Fires on **curves** <script>x</script>", unit=unit)
    parent = root
    for depth in range(1, 9):
        parent = comment_create(author=bea if depth % 2 else alice, body=f"r{depth}", parent=parent)
    edited = comment_create(author=bea, body="first", unit=unit)
    comment_update(comment=edited, editor=bea, body="second & <b>final</b>")
    deleted = comment_create(author=alice, body="gone", unit=unit)
    comment_delete(comment=deleted, user=alice)
    hidden = comment_create(author=bea, body="spam", unit=unit)
    Comment.objects.filter(pk=hidden.pk).update(hidden=True)
    return selectors.flatten(selectors.comment_thread(Comment.objects.filter(unit=unit)))


def _contexts(people: dict[str, Any]) -> list[dict[str, Any]]:
    request = RequestFactory().get("/units/1/discussion/?q=<x>")
    readers = [
        (AnonymousUser(), False),
        (people["alice"], False),  # the author of some
        (people["sam"], False),  # signed in, author of none
        (people["bruno"], True),  # a curator: moderates
    ]
    return [
        {
            "thread": None,
            "interactive": interactive,
            "user": user,
            "is_moderator": moderator,
            "request": request,
            "csrf_token": token,
        }
        for user, moderator in readers
        for interactive in (False, True)
        for token in ("t0ken-<&>", None)
    ]


def test_the_tag_prints_what_the_template_printed(thread, people) -> None:
    assert len(thread) == 12 and max(entry.depth for entry in thread) == 8
    for values in _contexts(people):
        for entries in (thread, []):
            values["thread"] = entries
            expected = Template("{% load annotations_people %}" + REFERENCE).render(Context(values))
            assert Template(TAG).render(Context(values)) == expected, values


def test_the_pages_print_each_comment_with_its_forms(thread, people, unit, clients) -> None:
    shown = [e.comment for e in thread if e.comment.shown]
    page = clients["bruno"].get(f"/units/{unit.pk}/discussion/").content.decode()
    for comment in shown:
        assert f'<li id="comment-{comment.pk}" class="comment depth-' in page
        hide = reverse(
            "annotations:moderation-set-hidden", kwargs={"kind": "comment", "pk": comment.pk}
        )
        assert f'<form method="post" action="{hide}" class="inline moderate">' in page
    assert page.count('class="inline moderate"') == len(thread) - 1  # all but the deleted one
    assert 'name="csrfmiddlewaretoken"' in page
    assert "comment hidden by moderators" in page and "comment deleted" in page
    cached = clients["anon"].get(unit.get_absolute_url()).content.decode()
    assert cached.count('<li id="comment-') == len(thread)
    assert "csrfmiddlewaretoken" not in cached.split('<ol class="thread">')[1]
