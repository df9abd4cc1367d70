"""NUL bytes in a URL are refused before any view runs."""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBadRequest


class RefuseNulBytes:
    """A NUL byte in the path or the query string is refused with 400 before any view runs:
    PostgreSQL cannot store or compare text holding one, so a lookup by it would be a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        values = [value for _key, values in request.GET.lists() for value in values]
        if "\x00" in request.path_info or any("\x00" in v for v in [*request.GET, *values]):
            return HttpResponseBadRequest("NUL bytes are not allowed in URLs.")
        return self.get_response(request)
