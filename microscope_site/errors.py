"""The one base class of every service's refusal, carrying the HTTP status it is answered with."""


class Refused(Exception):
    """A request a service cannot take as asked: nothing was stored, and the message says why.

    Every channel answers it the same way: pages and the API with `status`, commands with the
    message and exit code 1. `field` names the form or API field at fault, if one is.
    """

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RateLimited(Refused):
    """Too many requests from one client in a window; answered 429 with `Retry-After`."""

    status = 429

    def __init__(self, retry_after: int, message: str = "too many requests") -> None:
        super().__init__(f"{message}; try again in {retry_after} s")
        self.retry_after = retry_after


class Moved(Exception):
    """A name that was renamed: the request's URL, with `old` replaced by `new`, answers it (301).

    Raised by lookups of renamed things (`kind` "model" or "layer"), and answered by
    `neurons.renamed.RenamedRedirect` on pages and in the API alike.
    """

    def __init__(self, kind: str, old: str, new: str) -> None:
        super().__init__(f"{kind} {old!r} is now {new!r}")
        self.kind, self.old, self.new = kind, old, new
