"""Cached API reads: what the model, layer, unit and render endpoints answer is the same for
every reader and changes only with a model's content version, so their JSON 200 answers are
kept in the cache, keyed on the URL and every model's content version
(`selectors.catalogue_version`, what the zoo page uses). Any change to any model's pages makes
a new key at once, in every process; nothing needs deleting. A view whose answers also depend
on other rows names their versions (`cache_versions`: the notes' for the notes endpoints), and
one whose answers differ by reader says whom an answer is for (`cache_scope`: for notes, the
reader, their institutions and whether they moderate), which becomes part of the key.

The lookup comes after authentication, permissions and throttling (`initial`), so a bad token
still gets its 401 and a busy client its 429; only the queries and the serializing are
skipped. The browsable API is never kept: it prints the signed-in user.
"""

import hashlib
from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpResponse, HttpResponseBase
from rest_framework.request import Request
from rest_framework.response import Response

from neurons import selectors
from neurons.pagecache import cached_response, response_keep

_KEPT_HEADERS = ("Content-Type",)


class _Cached(Exception):  # noqa: N818 (not an error: how a hit leaves `initial`)
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


class CatalogueCachedReads:
    """Mixin for DRF views (put it before the DRF base class): their JSON reads (GET)."""

    cache_versions: ClassVar[tuple[Callable[[], str], ...]] = ()
    _cache_key: str | None = None

    def cache_scope(self, request: Request) -> str:
        """Whom an answer is for: "" where every reader gets the same."""
        return ""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self._cache_key = None
        if request.method != "GET" or request.accepted_renderer.format != "json":
            return
        parts = [
            request.build_absolute_uri(),
            request.accepted_media_type,
            self.cache_scope(request),
        ]
        parts += [selectors.catalogue_version(), *(version() for version in self.cache_versions)]
        raw = "|".join(parts)
        self._cache_key = "api:catalogue:" + hashlib.sha256(raw.encode()).hexdigest()
        hit = cached_response(self._cache_key)
        if hit is not None:
            raise _Cached(hit)

    def handle_exception(self, exc: Exception) -> HttpResponseBase:
        if isinstance(exc, _Cached):
            return exc.response
        return super().handle_exception(exc)  # type: ignore[misc,no-any-return]

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        key = self._cache_key
        if key is not None and isinstance(response, Response) and response.status_code == 200:
            response.add_post_render_callback(
                lambda rendered: response_keep(key, rendered, _KEPT_HEADERS)
            )
            response["X-Page-Cache"] = "miss"
        return response
