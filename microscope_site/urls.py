from django.conf import settings
from django.contrib import admin
from django.contrib.sitemaps import views as sitemap_views
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve

import neurons.urls  # noqa: F401  (registers the modelref and layername converters)
from neurons import views as neurons_views
from neurons import views_site
from neurons.sitemaps import SITEMAPS, sitemap_section

handler400 = "microscope_site.api_errors.bad_request"  # the API's error format under /api/

urlpatterns = [
    path("", neurons_views.model_list, name="home"),
    path("models/", include("neurons.urls")),
    path("models/", include("rendering.urls")),  # weight matrices, "Render now"
    path("search/", neurons_views.search, name="search"),
    path("favicon.ico", views_site.favicon, name="favicon"),
    path(
        "compare/",
        RedirectView.as_view(pattern_name="neurons:compare", query_string=True, permanent=True),
    ),
    path("u/<int:unit_id>", neurons_views.short_link, name="short-unit"),
    path(
        "embed/models/<modelref:model>/<layername:layer>/<int:index>/",
        neurons_views.unit_embed,
        name="unit-embed",
    ),
    path("oembed", neurons_views.oembed, name="oembed"),
    path(
        "sitemap.xml",
        sitemap_views.index,
        {"sitemaps": SITEMAPS, "sitemap_url_name": "sitemap-section"},
        name="sitemap",
    ),
    path("sitemap-<section>.xml", sitemap_section, name="sitemap-section"),
    # The Circuits thread's shorthand, e.g. /inceptionv1/4c:447
    re_path(
        r"^(?P<model>[A-Za-z0-9][A-Za-z0-9_-]*(?:@[0-9A-Fa-f]{4,16})?)/"
        r"(?P<shorthand>[A-Za-z0-9_.]+:\d+)/?$",
        neurons_views.circuits_shorthand,
        name="circuits-shorthand",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("microscope_site.api_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("annotations.urls")),
]
if not settings.AWS_STORAGE_BUCKET_NAME and settings.MEDIA_URL.startswith("/"):
    # Media from the local folder (the embedded default); a bucket serves its own files.
    prefix = settings.MEDIA_URL.strip("/")

    def media(request: HttpRequest, path: str) -> HttpResponseBase:
        response = serve(request, path, document_root=str(settings.MEDIA_ROOT))
        # Content-addressed names never change meaning: cache them forever.
        response["Cache-Control"] = "public, max-age=31536000, immutable"
        return response

    urlpatterns += [re_path(rf"^{prefix}/(?P<path>.*)$", media)]
