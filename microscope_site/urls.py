from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import include, path, re_path
from django.views.static import serve

from neurons import views as neurons_views

urlpatterns = [
    path("", neurons_views.model_list, name="home"),
    path("models/", include("neurons.urls")),
    path("search/", neurons_views.search, name="search"),
    # The Circuits thread's shorthand, e.g. /inceptionv1/4c:447
    re_path(
        r"^(?P<model>[a-z0-9][a-z0-9_-]*(?:@[0-9a-f]{4,16})?)/(?P<shorthand>[A-Za-z0-9_.]+:\d+)/?$",
        neurons_views.circuits_shorthand,
        name="circuits-shorthand",
    ),
    path("admin/", admin.site.urls),
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
