"""The errors a refused annotation write raises, each with the HTTP status it answers with."""

from django.http import Http404

from microscope_site.errors import RateLimited, Refused

__all__ = ["AnnotationRefused", "NotAllowed", "NotVisible", "PostingTooFast"]


class AnnotationRefused(Refused):
    """Bad input: nothing was stored. `field` names the form field at fault, if one is."""


class NotAllowed(AnnotationRefused):
    status = 403


class NotVisible(AnnotationRefused, Http404):
    """What the user may not read: answered 404, like the thing itself (its existence stays
    private), on every channel. An `Http404` too, so a caller that does not catch it still
    answers 404."""

    status = 404


class PostingTooFast(AnnotationRefused, RateLimited):
    """The site's `RateLimited` (429 with `Retry-After`), as an annotation refusal."""

    def __init__(self, retry_after: int, message: str = "you are posting too fast") -> None:
        super().__init__(retry_after, message)
