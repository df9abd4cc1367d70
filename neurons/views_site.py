"""Small site-wide answers that belong to no page: the favicon browsers ask every site for."""

from functools import cache

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe


@cache
def _favicon() -> bytes:
    path = finders.find("favicon.ico")
    if path is None:  # collected for production: STATIC_ROOT holds it
        from django.conf import settings

        path = str(settings.STATIC_ROOT / "favicon.ico")
    with open(str(path), "rb") as handle:
        return handle.read()


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """`/favicon.ico`, which browsers fetch for every page that names no icon (the admin, the
    API docs, the embed card included)."""
    response = HttpResponse(_favicon(), content_type="image/vnd.microsoft.icon")
    response["Cache-Control"] = "public, max-age=604800"
    return response


REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
# Redoc's footer shows Redocly's logo from its CDN; pages here load nothing from the internet
# (the CSP refuses it, and the browser reports the refusal). An empty data: URL fails to load,
# and Redoc's own error handler then leaves the logo out.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def _redoc_bundle() -> bytes:
    path = finders.find(REDOC_BUNDLE)
    if path is None:
        from django.conf import settings

        path = str(settings.STATIC_ROOT / REDOC_BUNDLE)
    with open(str(path), "rb") as handle:
        return handle.read().replace(REDOC_LOGO, b"data:,")


@require_safe
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    """drf-spectacular-sidecar's Redoc bundle, with no request to Redocly's CDN."""
    response = HttpResponse(_redoc_bundle(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response
