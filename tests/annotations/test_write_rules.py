from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from annotations.errors import AnnotationRefused, NotAllowed, PostingTooFast
from annotations.write_rules import RATE_WINDOW_S, clean_text, rate_limit, require_author

pytestmark = pytest.mark.django_db


def test_text_loses_bidi_controls_and_carriage_returns_and_keeps_its_limits() -> None:
    assert clean_text("  a\u202eb\r\nc  ", field="body", limit=10) == "ab\nc"
    assert clean_text("   ", field="units", limit=10, required=False) == ""
    with pytest.raises(AnnotationRefused, match="required") as empty:
        clean_text(" \u200f ", field="title", limit=10)
    assert empty.value.field == "title" and empty.value.status == 400
    with pytest.raises(AnnotationRefused, match="at most 3 characters, not 4") as long:
        clean_text("abcd", field="body", limit=3)
    assert long.value.field == "body"


def test_only_the_author_passes(people: dict[str, Any]) -> None:
    alice = people["alice"]
    require_author(alice, alice.pk, "note")
    with pytest.raises(NotAllowed, match="only its author may change this comment"):
        require_author(people["bea"], alice.pk, "comment")
    with pytest.raises(NotAllowed):
        require_author(AnonymousUser(), alice.pk, "note")


def test_writes_per_user_and_minute_are_limited(people: dict[str, Any], settings: Any) -> None:
    settings.ANNOTATIONS_POSTS_PER_MINUTE = 2
    rate_limit(people["alice"])
    rate_limit(people["alice"])
    with pytest.raises(PostingTooFast) as limited:
        rate_limit(people["alice"])
    assert limited.value.retry_after == RATE_WINDOW_S == 60 and limited.value.status == 429
    rate_limit(people["bea"])  # counted per user
