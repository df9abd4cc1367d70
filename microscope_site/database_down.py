"""A lost database answers 503 with `Retry-After` (our page, or the API's error shape), never a
traceback, on every page and endpoint of the site."""

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 10
LOG_EVERY_S = 60.0
_DATABASE_DOWN = (OperationalError, InterfaceError)
_last_logged = [float("-inf")]
_MARK = "_database_unavailable"


def database_unavailable(request: HttpRequest, error: BaseException) -> HttpResponse:
    """503 with `Retry-After`: our page, or the API's error shape under /api/."""
    now = time.monotonic()
    if now - _last_logged[0] >= LOG_EVERY_S:  # one line a minute, not one per request
        _last_logged[0] = now
        logger.error("database unavailable, answering 503: %s: %s", type(error).__name__, error)
    if request.path.startswith("/api/"):
        detail = "The database is unavailable; try again shortly."
        body = {"error": {"status": 503, "code": "database_unavailable", "detail": detail}}
        response: HttpResponse = JsonResponse(body, status=503)
    else:
        html = render_to_string("503.html", {"retry_after": RETRY_AFTER_S})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


def _mark_database_errors(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Django turns an exception raised inside a middleware into a 500 before an outer
    # middleware sees it; this mark lets `DatabaseUnavailable` recognize that 500.
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, _DATABASE_DOWN):
        setattr(request, _MARK, error)


got_request_exception.connect(
    _mark_database_errors, dispatch_uid="microscope_site.database_unavailable"
)


class DatabaseUnavailable:
    """A lost database answers 503 with our page and `Retry-After`, never a traceback.

    First in MIDDLEWARE (after SecurityMiddleware), so it also covers the page cache's lookup.
    The connections heal by themselves: Django drops a connection that failed
    (`CONN_HEALTH_CHECKS` checks a reused one before each request), so the first request
    after the database is back gets a fresh connection, with no restart of the web workers.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except _DATABASE_DOWN as error:  # only when exceptions propagate (tests, DEBUG_PROPAGATE)
            return database_unavailable(request, error)
        marked = getattr(request, _MARK, None)
        if marked is not None and response.status_code == 500:
            return database_unavailable(request, marked)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, _DATABASE_DOWN):
            return database_unavailable(request, exception)
        return None
