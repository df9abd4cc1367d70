"""Whole-page cache for anonymous readers, invalidated by the model's `content_version`.

The key holds everything a page depends on: its absolute URL (pages print absolute permalinks),
the model's content version (bumped by `model_touch` on every change its pages show; the zoo
uses all of them), for a unit's pages the unit's discussion version (bumped by `unit_touch`
when its comments change, which no other page shows) and the date (the Cite box names the
access date). A changed page therefore gets a new key at once, in every process, whatever the
cache backend; nothing needs deleting.

`PageCache` sits near the top of the middleware stack, so a hit costs one indexed query (the
content version) and one cache read, and skips sessions, CSRF, auth and the view. Only views
marked `@page_cacheable` are stored; visitors with a session (staff, signed-in researchers)
always get a fresh page.
"""

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone
from django.utils.cache import get_conditional_response, set_response_etag

from microscope_site.database_down import database_unavailable

TIMEOUT_S = 24 * 3600
_MODEL_PAGE = re.compile(
    r"^/(?:embed/)?models/(?P<slug>[a-z0-9][a-z0-9_-]*)(?:@(?P<version>[0-9a-f]{4,16}))?/"
    r"(?:(?P<layer>[^/]+)/(?P<index>[0-9]{1,9})/)?"
)
_ZOO_PAGES = ("/", "/models/")
_KEPT_HEADERS = ("Content-Type", "ETag", "X-Frame-Options", "Content-Language", "Vary")
_PAGE_UNIT = "_page_cache_unit"


def page_cacheable(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Mark a view's 200 responses as the same for every anonymous visitor."""

    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        response.page_cacheable = True  # type: ignore[attr-defined]
        return response

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def content_version(path: str) -> str | None:
    """What the page at `path` depends on, or None for pages this cache does not keep."""
    return _content_version(path)[0]


def _content_version(path: str) -> tuple[str | None, int | None]:
    """`content_version`, and for a unit's page the unit's id, which the same query gives."""
    from neurons.selectors import catalogue_version, page_version

    if path in _ZOO_PAGES:
        return catalogue_version(), None
    match = _MODEL_PAGE.match(path)
    if match is None:
        return None, None
    slug, version = match["slug"], match["version"] or ""
    if match["layer"] is not None:
        found = page_version(slug, version, match["layer"], int(match["index"]))
        if found is not None:
            return (
                f"{found.model_id}.{found.content_version}.{found.discussion_version}",
                found.unit_id,
            )
        # Not a current name (an alias the view redirects, or a 404): the model's version.
    found = page_version(slug, version)
    if found is None:
        return None, None  # unknown or renamed: the view answers (404 or 301)
    return f"{found.model_id}.{found.content_version}", None


def cached_response(key: str) -> HttpResponse | None:
    """The answer kept under `key` (by `response_keep`), marked as a hit; None on a miss."""
    hit = cache.get(key)
    if hit is None:
        return None
    content, headers, *kept_status = hit  # entries kept before the status was: all 200
    response = HttpResponse(content, headers=headers, status=kept_status[0] if kept_status else 200)
    response["X-Page-Cache"] = "hit"
    return response


def response_keep(key: str, response: HttpResponse, headers: Iterable[str]) -> None:
    """Keep `response`'s status, body and the `headers` it has under `key`, for
    `cached_response`."""
    kept = {name: response[name] for name in headers if response.has_header(name)}
    cache.set(key, (response.content, kept, response.status_code), TIMEOUT_S)


def page_unit_id(request: HttpRequest) -> int | None:
    """The id of the unit `PageCache` found for this request's unit page while building its
    key (None when it did not look, or the names were not current)."""
    return getattr(request, _PAGE_UNIT, None)


class PageCache:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            key = self._key(request)
        except (OperationalError, InterfaceError) as error:
            # The first query of most anonymous requests: answer 503 here, without a traceback
            # in the log for every request while the database is down.
            return database_unavailable(request, error)
        if key is not None:
            cached = cached_response(key)
            if cached is not None:
                conditional = get_conditional_response(request, etag=cached.get("ETag"))
                return conditional or cached
        response = self.get_response(request)
        if (
            key is not None
            and getattr(response, "page_cacheable", False)
            and response.status_code == 200
            and isinstance(response, HttpResponse)
            and not response.cookies
        ):
            if not response.has_header("ETag"):
                set_response_etag(response)
            response_keep(key, response, _KEPT_HEADERS)
            response["X-Page-Cache"] = "miss"
        return response

    @staticmethod
    def _key(request: HttpRequest) -> str | None:
        if request.method not in ("GET", "HEAD"):
            return None
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            return None
        version, unit_id = _content_version(request.path)
        if version is None:
            return None
        setattr(request, _PAGE_UNIT, unit_id)
        raw = f"{request.build_absolute_uri()}|{version}|{timezone.now().date()}"
        return "page:" + hashlib.sha256(raw.encode()).hexdigest()
