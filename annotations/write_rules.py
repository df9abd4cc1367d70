"""Rules every annotation write checks itself, so that no caller can forget them: who may
change a thing, how long a text may be, how often one may post. A refused write raises before
anything is stored.
"""

from typing import Any

from django.conf import settings

from annotations.bidi import strip_bidi
from annotations.errors import AnnotationRefused, NotAllowed, PostingTooFast
from microscope_site.ratelimit import hits_in_window

__all__ = ["RATE_WINDOW_S", "clean_text", "rate_limit", "require_author"]

RATE_WINDOW_S = 60


def rate_limit(user: Any) -> None:
    """At most ANNOTATIONS_POSTS_PER_MINUTE writes per user per minute (cache-based)."""
    limit = getattr(settings, "ANNOTATIONS_POSTS_PER_MINUTE", 10)
    if hits_in_window(f"annotations:posts:{user.pk}", RATE_WINDOW_S) > limit:
        raise PostingTooFast(retry_after=RATE_WINDOW_S)


def require_author(user: Any, author_id: int, what: str) -> None:
    if not user.is_authenticated or user.pk != author_id:
        raise NotAllowed(f"only its author may change this {what}")


def clean_text(value: str, *, field: str, limit: int, required: bool = True) -> str:
    """`value` without bidi controls, with "\n" line ends, stripped; refused when empty (if
    `required`) or longer than `limit`."""
    value = strip_bidi(value).replace("\r\n", "\n").strip()
    if required and not value:
        raise AnnotationRefused("this field is required", field=field)
    if len(value) > limit:
        raise AnnotationRefused(f"at most {limit:,} characters, not {len(value):,}", field=field)
    return value
