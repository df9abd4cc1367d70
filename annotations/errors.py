"""The errors a refused annotation write raises, each with the HTTP status it answers with."""

from django.http import Http404

__all__ = ["AnnotationRefused", "NotAllowed", "NotVisible", "RateLimited"]


class AnnotationRefused(Exception):
    """Bad input: nothing was stored. `field` names the form field at fault, if one is."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotAllowed(AnnotationRefused):
    status = 403


class NotVisible(AnnotationRefused, Http404):
    """What the user may not read: answered 404, like the thing itself (its existence stays
    private), on every channel. An `Http404` too, so a caller that does not catch it still
    answers 404."""

    status = 404


class RateLimited(AnnotationRefused):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"you are posting too fast; try again in {retry_after} s")
        self.retry_after = retry_after
