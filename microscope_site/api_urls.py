"""/api/v1/: the API for circuits tooling (docs/API.md). Namespace `api`."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework.routers import DefaultRouter

from annotations import api as annotations_api
from neurons import api as neurons_api
from neurons import views_site
from rendering import api as rendering_api
from rendering import api_weights

app_name = "api"

router = DefaultRouter()
# No `<route>.json` aliases: undocumented, and they call every view with a `format` argument.
router.include_format_suffixes = False
router.register("models", neurons_api.NetworkModelViewSet, basename="model")
router.register("layers", neurons_api.LayerViewSet, basename="layer")
router.register("units", neurons_api.UnitViewSet, basename="unit")
router.register("techniques", neurons_api.TechniqueViewSet, basename="technique")
router.register("import-jobs", neurons_api.ImportJobViewSet, basename="importjob")
router.register("renders", rendering_api.RenderViewSet, basename="render")
router.register("examples", rendering_api.UnitExamplesViewSet, basename="examples")
router.register("tuning-curves", rendering_api.TuningCurveViewSet, basename="tuningcurve")
router.register("datasets", rendering_api.DatasetViewSet, basename="dataset")
router.register("jobs", rendering_api.RenderJobViewSet, basename="renderjob")
router.register("notes", annotations_api.NoteViewSet, basename="note")
router.register("comments", annotations_api.CommentViewSet, basename="comment")
router.register("institutions", annotations_api.InstitutionViewSet, basename="institution")
router.register("tokens", annotations_api.TokenViewSet, basename="token")
router.register("exports", neurons_api.ExportViewSet, basename="export")

MODEL = rf"models/(?P<ref>{neurons_api.MODEL_REF})"
LAYER = rf"{MODEL}/layers/(?P<layer>{neurons_api.LAYER_NAME})"

urlpatterns = [
    re_path(rf"^{LAYER}/$", neurons_api.LayerByKeyView.as_view(), name="layer-by-key"),
    re_path(
        rf"^{LAYER}/units/(?P<index>[0-9]+)/$",
        neurons_api.UnitByKeyView.as_view(),
        name="unit-by-key",
    ),
    re_path(rf"^{MODEL}/jobs/render/$", rendering_api.RenderTrigger.as_view(), name="model-render"),
    re_path(
        rf"^{MODEL}/jobs/connections/$",
        rendering_api.ConnectionsTrigger.as_view(),
        name="model-connections",
    ),
    re_path(
        rf"^{MODEL}/jobs/dataset-examples/$",
        rendering_api.ExamplesTrigger.as_view(),
        name="model-examples",
    ),
    re_path(rf"^{MODEL}/jobs/tuning/$", rendering_api.TuningTrigger.as_view(), name="model-tuning"),
    re_path(rf"^{MODEL}/exports/$", neurons_api.ModelExportsView.as_view(), name="model-exports"),
    path(
        "units/<int:pk>/connections/",
        rendering_api.UnitConnectionsView.as_view(),
        name="unit-connections",
    ),
    path("layers/<int:pk>/weights/", api_weights.LayerWeightsView.as_view(), name="layer-weights"),
    path("units/<int:pk>/label/", annotations_api.UnitLabelView.as_view(), name="unit-label"),
    path("reports/", annotations_api.ReportView.as_view(), name="report-create"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start-up script is served as a file (?script), not inline: the CSP has no
    # 'unsafe-inline' for scripts (docs/SECURITY.md).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # Redoc styles itself with <style> elements and searches in a blob: worker; this page shows
    # only our own schema, so it alone may do both (docs/SECURITY.md).
    path(
        "redoc/",
        csp_update({"style-src-elem": [UNSAFE_INLINE], "worker-src": ["blob:"]})(
            SpectacularRedocView.as_view(url_name="api:schema")
        ),
        name="redoc",
    ),
    path("redoc/redoc.standalone.js", views_site.redoc_bundle, name="redoc-bundle"),
    path("", include(router.urls)),
]
