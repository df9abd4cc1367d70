from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="neurons:models", permanent=False), name="home"),
    path("models/", include("neurons.urls")),
    path("admin/", admin.site.urls),
]
if not settings.AWS_STORAGE_BUCKET_NAME and settings.MEDIA_URL.startswith("/"):
    # Media from the local folder (the embedded default); a bucket serves its own files.
    prefix = settings.MEDIA_URL.strip("/")
    urlpatterns += [
        re_path(rf"^{prefix}/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})
    ]
