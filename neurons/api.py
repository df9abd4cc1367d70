"""The catalogue's API endpoints, and the conventions every API endpoint shares.

Shared: cursor pagination on every list (each viewset names a default `ordering`; the cursor
adds `pk`), strict query strings (`microscope_site.api_queries`), one error format
(`microscope_site.api_errors`), the 202 answer of job triggers, `Idempotency-Key` on writes
that create rows (`neurons.idempotency`). Lists and details are read by anyone; writes go
through the same service functions as pages, admin and commands.
"""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from drf_standardized_errors.handler import ExceptionHandler
from rest_framework import exceptions, generics, mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from microscope_site.api_queries import (
    BooleanFilter,
    IdFilter,
    StrictFilterSet,
    refuse_unknown_query_params,
)
from neurons import selectors
from neurons.apicache import CatalogueCachedReads
from neurons.idempotency import idempotent
from neurons.models import Export, ImportJob, Layer, NetworkModel, Technique, Unit
from neurons.serializers import (
    AcceptedSerializer,
    ImportJobSerializer,
    ImportRequestSerializer,
    LayerSerializer,
    NetworkModelDetailSerializer,
    NetworkModelSerializer,
    TechniqueSerializer,
    UnitDetailSerializer,
    UnitSerializer,
    absolute,
    model_api_url,
    model_ref,
)

MODEL_REF = r"[a-z0-9][a-z0-9_-]*(?:@[0-9a-f]{4,16})?"
LAYER_NAME = r"[A-Za-z0-9_.]+"


# --- conventions shared by every endpoint ----------------------------------------------------


def _refusal_status(exc: Exception) -> int | None:
    """The HTTP status of a service's refusal, or None for exceptions that are not refusals."""
    from annotations.errors import AnnotationRefused
    from annotations.tokens import TokenRefused
    from neurons.services import ImportFailed
    from rendering.datasets import DatasetRefused
    from rendering.services import RateLimited, RenderRefused

    if isinstance(exc, AnnotationRefused):
        return exc.status
    if isinstance(exc, RateLimited):
        return status.HTTP_429_TOO_MANY_REQUESTS
    if isinstance(exc, RenderRefused | ImportFailed | TokenRefused | DatasetRefused):
        return status.HTTP_400_BAD_REQUEST
    return None


class Refused(exceptions.APIException):
    """A service's refusal as DRF sees it; a 400 has a validation error's code (`invalid`).
    One that names the field at fault is raised as a `ValidationError` (`_api_exception`), so
    its detail is `{field: [message]}` like a serializer's."""

    def __init__(self, message: str, status_code: int, field: str | None = None) -> None:
        self.status_code = status_code
        codes = {400: "invalid", 403: "permission_denied", 404: "not_found", 429: "throttled"}
        super().__init__({field: [message]} if field else message, codes.get(status_code))


def _api_exception(exc: Exception) -> Exception:
    refused = _refusal_status(exc)
    field = getattr(exc, "field", None)
    if refused == status.HTTP_400_BAD_REQUEST and field:
        return exceptions.ValidationError({field: [str(exc)]})
    if refused is not None:
        return Refused(str(exc), refused, getattr(exc, "field", None))
    if isinstance(exc, Http404):
        return exceptions.NotFound(*exc.args)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    return exc


class ApiExceptionHandler(ExceptionHandler):
    """drf-standardized-errors' handler (`DRF_STANDARDIZED_ERRORS` in settings): services'
    refusals become 4xx with their message, a throttle keeps its `Retry-After`, and any other
    exception is a JSON 500 whatever DEBUG is, except two that middleware answers: a renamed
    model or layer (`RenamedRedirect`, 301) and a lost database (`DatabaseUnavailable`, 503)."""

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        return _api_exception(exc)

    def should_not_handle(self, exc: Exception) -> bool:
        return isinstance(exc, selectors.Moved | OperationalError | InterfaceError)

    def get_headers(self, exc: exceptions.APIException) -> dict[str, str]:
        headers = super().get_headers(exc)
        retry_after = getattr(self.exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return {name: str(value) for name, value in headers.items()}


def accepted(request: Request, jobs: list[Any], view_name: str, **extra: Any) -> Response:
    """202 with each job's URL (Location: the first), or 200 when there was nothing to do."""
    urls = [request.build_absolute_uri(reverse(view_name, kwargs={"pk": j.pk})) for j in jobs]
    body = {
        "jobs": [
            {
                "id": j.pk,
                "url": url,
                "status": j.status,
                # The row is saved but the broker was unreachable: the reaper sends it later.
                **({"note": j.error} if j.error.startswith("not queued:") else {}),
            }
            for j, url in zip(jobs, urls, strict=True)
        ],
        **extra,
    }
    if not jobs:
        return Response(body, status=status.HTTP_200_OK)
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": urls[0]})


def _model_or_none(ref: str) -> NetworkModel | None:
    try:
        return selectors.model_get(ref)
    except (Http404, selectors.Moved):
        return None


# --- models ---------------------------------------------------------------------------------


class NetworkModelFilter(StrictFilterSet):
    latest = BooleanFilter(method="filter_latest", label="only the newest version of each")

    class Meta:
        model = NetworkModel
        fields = ["slug", "family", "registry_key", "weights_source"]

    def filter_latest(
        self, queryset: QuerySet[NetworkModel], name: str, value: bool
    ) -> QuerySet[NetworkModel]:
        if not value:
            return queryset
        return queryset.filter(pk__in=[m.pk for m in selectors.latest_models()])


@extend_schema_view(
    list=extend_schema(summary="Model versions (one row per weights version)"),
    retrieve=extend_schema(
        summary="A model version by slug (the newest) or slug@version (exactly that one)",
        parameters=[
            OpenApiParameter("ref", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=MODEL_REF)
        ],
    ),
)
class NetworkModelViewSet(CatalogueCachedReads, viewsets.ReadOnlyModelViewSet[NetworkModel]):
    queryset = selectors.model_versions()
    serializer_class = NetworkModelSerializer
    lookup_field = "ref"
    lookup_value_regex = MODEL_REF
    filterset_class = NetworkModelFilter
    ordering = "pk"
    ordering_fields = ["slug", "created", "pk"]

    def get_serializer_class(self) -> type[BaseSerializer[NetworkModel]]:
        if self.action == "retrieve":
            return NetworkModelDetailSerializer
        return NetworkModelSerializer

    def get_object(self) -> NetworkModel:
        refuse_unknown_query_params(self.request, self)
        model = selectors.model_get(self.kwargs["ref"])
        self.check_object_permissions(self.request, model)
        return model

    @extend_schema(
        summary="The layers of a model version, in order",
        parameters=[
            OpenApiParameter("ref", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=MODEL_REF)
        ],
        responses=LayerSerializer(many=True),
        filters=False,
    )
    @action(
        detail=True,
        serializer_class=LayerSerializer,
        filterset_class=None,
        ordering_fields=["order", "pk"],
        ordering="order",
    )
    def layers(self, request: Request, ref: str) -> Response:
        model = self.get_object()
        page = self.paginate_queryset(
            Layer.objects.filter(model=model).select_related("model")  # type: ignore[arg-type]
        )
        serializer = LayerSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)


# --- layers and units -----------------------------------------------------------------------


class LayerFilter(StrictFilterSet):
    model = filters.CharFilter(method="filter_model", label="slug or slug@version")

    class Meta:
        model = Layer
        fields = ["name", "kind"]

    def filter_model(self, queryset: QuerySet[Layer], name: str, value: str) -> QuerySet[Layer]:
        model = _model_or_none(value)
        return queryset.filter(model=model) if model else queryset.none()


class LayerViewSet(CatalogueCachedReads, viewsets.ReadOnlyModelViewSet[Layer]):
    queryset = Layer.objects.filter(model__status=NetworkModel.Status.READY).select_related("model")
    serializer_class = LayerSerializer
    filterset_class = LayerFilter
    ordering = "pk"
    ordering_fields = ["order", "num_units", "pk"]


class UnitFilter(StrictFilterSet):
    model = filters.CharFilter(method="filter_model", label="slug or slug@version")
    layer_name = filters.CharFilter(field_name="layer__name", label="layer name")
    labelled = BooleanFilter(method="filter_labelled", label="has a curator label")
    label = filters.CharFilter(method="filter_label", label="curator label matches (search)")
    layer = IdFilter(field_name="layer", label="layer id")

    class Meta:
        model = Unit
        fields = ["layer", "index"]

    def filter_model(self, queryset: QuerySet[Unit], name: str, value: str) -> QuerySet[Unit]:
        model = _model_or_none(value)
        return queryset.filter(layer__model=model) if model else queryset.none()

    def filter_labelled(self, queryset: QuerySet[Unit], name: str, value: bool) -> QuerySet[Unit]:
        return queryset.exclude(curator_label="") if value else queryset.filter(curator_label="")

    def filter_label(self, queryset: QuerySet[Unit], name: str, value: str) -> QuerySet[Unit]:
        return queryset.filter(pk__in=selectors.units_by_label(value).values("pk"))


class UnitViewSet(CatalogueCachedReads, viewsets.ReadOnlyModelViewSet[Unit]):
    queryset = Unit.objects.filter(layer__model__status=NetworkModel.Status.READY).select_related(
        "layer__model"
    )
    serializer_class = UnitSerializer
    filterset_class = UnitFilter
    ordering = "pk"
    ordering_fields = ["index", "pk"]

    def get_serializer_class(self) -> type[BaseSerializer[Unit]]:
        if self.action == "retrieve":
            return UnitDetailSerializer
        return UnitSerializer


class LayerByKeyView(CatalogueCachedReads, generics.RetrieveAPIView[Layer]):
    """A layer by its names: `models/<slug[@version]>/layers/<layer>/`."""

    serializer_class = LayerSerializer
    queryset = Layer.objects.none()  # the object comes from the names in the URL

    @extend_schema(
        summary="A layer by model and layer name",
        parameters=[
            OpenApiParameter("ref", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=MODEL_REF),
            OpenApiParameter("layer", OpenApiTypes.STR, OpenApiParameter.PATH),
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_object(self) -> Layer:
        refuse_unknown_query_params(self.request, self)
        model = selectors.model_get(self.kwargs["ref"])
        return selectors.layer_get(model, self.kwargs["layer"])


class UnitByKeyView(CatalogueCachedReads, generics.RetrieveAPIView[Unit]):
    """A unit by its natural key: `models/<slug[@version]>/layers/<layer>/units/<index>/`."""

    serializer_class = UnitDetailSerializer
    queryset = Unit.objects.none()

    @extend_schema(
        summary="A unit by its natural key (model[@version], layer, index)",
        parameters=[
            OpenApiParameter("ref", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=MODEL_REF),
            OpenApiParameter("layer", OpenApiTypes.STR, OpenApiParameter.PATH),
            OpenApiParameter("index", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_object(self) -> Unit:
        refuse_unknown_query_params(self.request, self)
        model = selectors.model_get(self.kwargs["ref"])
        layer = selectors.layer_get(model, self.kwargs["layer"])
        return selectors.unit_get(layer, int(self.kwargs["index"]))


class TechniqueViewSet(viewsets.ReadOnlyModelViewSet[Technique]):
    queryset = Technique.objects.all()
    serializer_class = TechniqueSerializer
    lookup_field = "slug"
    filterset_fields = ["level"]
    ordering = "pk"
    ordering_fields = ["slug", "pk"]


# --- imports (staff) ------------------------------------------------------------------------


class ImportJobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ImportJob]
):
    """Import jobs: staff only (the log names server paths)."""

    queryset = ImportJob.objects.select_related("result")
    serializer_class = ImportJobSerializer
    permission_classes = [permissions.IsAdminUser]
    filterset_fields = ["status", "registry_key"]
    ordering = "pk"
    ordering_fields = ["created", "pk"]

    @extend_schema(
        summary="Import a registry model (staff): 202 with the job's URL",
        request=ImportRequestSerializer,
        responses={202: AcceptedSerializer},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        from neurons.services import import_job_create

        form = ImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = import_job_create(**form.validated_data, requested_by=request.user)
        return accepted(request, [job], "api:importjob-detail")


# --- bulk exports ---------------------------------------------------------------------------


class ExportFileSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="e.g. units.jsonl, units.parquet")
    table = serializers.CharField()
    format = serializers.ChoiceField(choices=["jsonl", "parquet"])
    rows = serializers.IntegerField()
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    path = serializers.CharField(help_text="the file's name in storage (its sha256)")
    url = serializers.URLField()


class ExportSerializer(serializers.ModelSerializer[Export]):
    url = serializers.HyperlinkedIdentityField(view_name="api:export-detail")
    model = serializers.SerializerMethodField(help_text="slug@version")
    model_url = serializers.SerializerMethodField()
    current = serializers.SerializerMethodField(
        help_text="succeeded, and nothing the model's pages show changed since"
    )
    files = serializers.SerializerMethodField()
    manifest_url = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField(help_text="staff only (tracebacks)")

    class Meta:
        model = Export
        fields = [
            "id",
            "url",
            "model",
            "model_url",
            "status",
            "progress",
            "attempts",
            "current",
            "manifest_url",
            "manifest_sha256",
            "files",
            "error",
            "created",
            "started",
            "finished",
            "heartbeat",
        ]
        read_only_fields = fields

    def get_model(self, export: Export) -> str:
        return model_ref(export.model)

    @extend_schema_field(OpenApiTypes.URI)
    def get_model_url(self, export: Export) -> str:
        return model_api_url(self.context, export.model)

    def get_current(self, export: Export) -> bool:
        from neurons.export import export_is_current

        return export_is_current(export)

    @extend_schema_field(ExportFileSerializer(many=True))
    def get_files(self, export: Export) -> list[dict[str, Any]]:
        return [
            {**file, "url": absolute(self.context, str(file["url"]))} for file in export.downloads()
        ]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_manifest_url(self, export: Export) -> str | None:
        if not export.manifest:
            return None
        return absolute(self.context, export.manifest.url)

    def get_error(self, export: Export) -> str | None:
        request = self.context.get("request")
        if request is None or not request.user.is_staff:
            return None
        return export.error


class ExportFilter(StrictFilterSet):
    model = filters.CharFilter(method="filter_model", label="slug or slug@version")

    class Meta:
        model = Export
        fields = ["status"]

    def filter_model(self, queryset: QuerySet[Export], name: str, value: str) -> QuerySet[Export]:
        model = _model_or_none(value)
        return queryset.filter(model=model) if model else queryset.none()


class ExportViewSet(viewsets.ReadOnlyModelViewSet[Export]):
    """Bulk exports of model versions: status, progress, and the files with their manifest."""

    queryset = Export.objects.filter(model__status=NetworkModel.Status.READY).select_related(
        "model"
    )
    serializer_class = ExportSerializer
    filterset_class = ExportFilter
    ordering = "-pk"
    ordering_fields = ["created", "pk"]


class StaffWrites(permissions.BasePermission):
    """Anyone reads; only staff write."""

    reads_are_public = True  # the schema documents no 403 for reads (ApiAutoSchema)

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_staff)


class ModelExportsView(generics.ListAPIView[Export]):
    """A model version's exports, newest first; staff POST asks for a new one."""

    serializer_class = ExportSerializer
    # IsAuthenticatedOrReadOnly first: what drf-spectacular reads to document that anyone may
    # list (the schema said a token was needed, the server answered anonymously).
    permission_classes = [permissions.IsAuthenticatedOrReadOnly, StaffWrites]
    queryset = Export.objects.none()
    ordering = "-pk"
    ordering_fields = ["created", "pk"]

    def get_queryset(self) -> QuerySet[Export]:
        model = selectors.model_get(self.kwargs["ref"])
        return Export.objects.filter(model=model).select_related("model").order_by("-pk")

    @extend_schema(
        summary="A model version's bulk exports, newest first",
        parameters=[
            OpenApiParameter("ref", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=MODEL_REF)
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Export a model version (staff): 202 with the export's URL",
        description="Asking while an export of this version is queued answers that one.",
        parameters=[
            OpenApiParameter("ref", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=MODEL_REF)
        ],
        request=None,
        responses={202: AcceptedSerializer},
    )
    @idempotent
    def post(self, request: Request, ref: str) -> Response:
        from neurons.export import ExportRefused, export_request

        model = selectors.model_get(ref)
        try:
            export = export_request(model=model, requested_by=request.user)
        except ExportRefused as error:
            raise Refused(str(error), status.HTTP_400_BAD_REQUEST) from None
        return accepted(request, [export], "api:export-detail")
