"""API endpoints for what the workers compute: renders, dataset examples and statistics, tuning
curves, connections, and the jobs that make them (staff trigger them: 202 with the job URLs)."""

from typing import Any

import numpy as np
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from microscope_site.api_exceptions import accepted
from microscope_site.api_queries import IdFilter, StrictFilterSet, StrictQueryParams
from neurons import selectors
from neurons.api import MODEL_REF
from neurons.apicache import CatalogueCachedReads
from neurons.idempotency import idempotent
from neurons.models import NetworkModel, Unit
from neurons.serializers import AcceptedSerializer, absolute
from rendering.connections import connection_jobs_create
from rendering.engine.connections import kernel_sign
from rendering.examples import examples_jobs_create
from rendering.models import Connection, Dataset, Render, RenderJob, TuningCurve, UnitExamples
from rendering.serializers import (
    ConnectionsRequestSerializer,
    ConnectionsSerializer,
    DatasetSerializer,
    ExamplesRequestSerializer,
    RenderJobSerializer,
    RenderRequestSerializer,
    RenderSerializer,
    TuningCurveSerializer,
    TuningRequestSerializer,
    UnitExamplesSerializer,
)
from rendering.services import render_jobs_create
from rendering.tuning import tuning_jobs_create

READY = NetworkModel.Status.READY


class _ModelRefFilter(StrictFilterSet):
    model = filters.CharFilter(method="filter_model", label="slug or slug@version")
    model_field = "layer__model"

    def filter_model(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        model = selectors.model_or_none(value)
        return queryset.filter(**{self.model_field: model}) if model else queryset.none()


class RenderFilter(_ModelRefFilter):
    technique = filters.CharFilter(field_name="technique__slug", label="technique slug")
    unit = IdFilter(field_name="unit", label="unit id")
    layer = IdFilter(field_name="layer", label="layer id")

    class Meta:
        model = Render
        fields = ["unit", "layer", "variant", "params_hash"]


class RenderViewSet(CatalogueCachedReads, viewsets.ReadOnlyModelViewSet[Render]):
    queryset = Render.objects.filter(layer__model__status=READY).select_related("technique")
    serializer_class = RenderSerializer
    filterset_class = RenderFilter
    ordering = "pk"
    ordering_fields = ["created", "objective", "pk"]


class ExamplesFilter(_ModelRefFilter):
    model_field = "unit__layer__model"
    dataset = filters.CharFilter(field_name="dataset__slug", label="dataset slug")
    layer = IdFilter(field_name="unit__layer", label="layer id")
    unit = IdFilter(field_name="unit", label="unit id")

    class Meta:
        model = UnitExamples
        fields = ["unit", "params_hash"]


class UnitExamplesViewSet(viewsets.ReadOnlyModelViewSet[UnitExamples]):
    """Dataset examples and activation statistics: one row per unit and pass over a dataset."""

    queryset = UnitExamples.objects.filter(unit__layer__model__status=READY).select_related(
        "dataset"
    )
    serializer_class = UnitExamplesSerializer
    filterset_class = ExamplesFilter
    ordering = "pk"
    ordering_fields = ["created", "pk"]


class TuningFilter(_ModelRefFilter):
    model_field = "unit__layer__model"
    layer = IdFilter(field_name="unit__layer", label="layer id")
    unit = IdFilter(field_name="unit", label="unit id")

    class Meta:
        model = TuningCurve
        fields = ["unit", "family", "params_hash"]


class TuningCurveViewSet(viewsets.ReadOnlyModelViewSet[TuningCurve]):
    queryset = TuningCurve.objects.filter(unit__layer__model__status=READY)
    serializer_class = TuningCurveSerializer
    filterset_class = TuningFilter
    ordering = "pk"
    ordering_fields = ["family", "created", "pk"]


class DatasetViewSet(viewsets.ReadOnlyModelViewSet[Dataset]):
    queryset = Dataset.objects.all()
    serializer_class = DatasetSerializer
    lookup_field = "slug"
    ordering = "pk"
    ordering_fields = ["slug", "pk"]


class RenderJobFilter(_ModelRefFilter):
    technique = filters.CharFilter(field_name="technique__slug", label="technique slug")
    layer = IdFilter(field_name="layer", label="layer id")

    class Meta:
        model = RenderJob
        fields = ["status", "layer"]


class RenderJobViewSet(viewsets.ReadOnlyModelViewSet[RenderJob]):
    """Render, connection, dataset-example and tuning jobs: status and progress."""

    queryset = RenderJob.objects.select_related("layer__model", "technique")
    serializer_class = RenderJobSerializer
    filterset_class = RenderJobFilter
    ordering = "pk"
    ordering_fields = ["created", "pk"]


# --- connections ----------------------------------------------------------------------------


class ConnectionsQuery(serializers.Serializer[Any]):
    direction = serializers.ChoiceField(choices=["in", "out"], required=False)
    top = serializers.IntegerField(min_value=1, max_value=500, default=12)


class UnitConnectionsView(generics.GenericAPIView[Unit]):
    """A unit's strongest inputs (`in`, from the layer before) and outputs (`out`, into the
    layer after), strongest first, with their kernels and thumbnails."""

    queryset = Unit.objects.filter(layer__model__status=READY).select_related("layer__model")
    serializer_class = ConnectionsSerializer
    pagination_class = None
    filter_backends: list[Any] = [StrictQueryParams]
    extra_query_params = ("direction", "top")

    @extend_schema(summary="A unit's strongest connections", parameters=[ConnectionsQuery])
    def get(self, request: Request, pk: int) -> Response:
        unit = self.get_object()
        query = ConnectionsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        directions = (
            [query.validated_data["direction"]]
            if "direction" in query.validated_data
            else ["in", "out"]
        )
        top = query.validated_data["top"]
        rows = list(
            Connection.objects.filter(unit=unit, direction__in=directions)
            .select_related("pair__source", "pair__target")
            .order_by("direction", "pk")
        )
        wanted = Q(pk__in=[])
        for row in rows:
            other = row.pair.source if row.direction == "in" else row.pair.target
            wanted |= Q(layer=other, index__in=row.other_indices[:top])
        others = {(u.layer_id, u.index): u.pk for u in Unit.objects.filter(wanted)}
        thumbs: dict[tuple[int, int], Render] = {}
        for render in (
            Render.objects.filter(technique__slug="channel", variant=0, unit__in=others.values())
            .select_related("unit")
            .order_by("-created")
        ):
            assert render.unit is not None
            thumbs.setdefault((render.layer_id, render.unit.index), render)
        found = []
        for row in rows:
            other = row.pair.source if row.direction == "in" else row.pair.target
            k = row.pair.kernel_size
            kernels = np.frombuffer(bytes(row.kernels), dtype=np.float16).reshape(-1, k, k)
            for rank, index in enumerate(row.other_indices[:top]):
                other_pk = others[(other.pk, index)]
                thumb = thumbs.get((other.pk, index))
                found.append(
                    {
                        "direction": row.direction,
                        "rank": rank,
                        "layer": other.name,
                        "index": index,
                        "unit": other_pk,
                        "url": self._unit_url(request, other_pk),
                        "strength": row.strengths[rank],
                        "sign": kernel_sign(kernels[rank]),
                        "method": row.pair.method,
                        "kernel": kernels[rank].astype(float).round(6).tolist(),
                        "thumbnail_url": absolute({"request": request}, thumb.thumbnail.url)
                        if thumb
                        else None,
                    }
                )
        return Response({"unit": self._unit_url(request, unit.pk), "connections": found})

    def _unit_url(self, request: Request, pk: int) -> str:
        return absolute({"request": request}, reverse("api:unit-detail", kwargs={"pk": pk}))


# --- triggers (staff) -----------------------------------------------------------------------


class _Trigger(generics.GenericAPIView[NetworkModel]):
    permission_classes = [permissions.IsAdminUser]
    queryset = NetworkModel.objects.none()
    pagination_class = None
    filter_backends: list[Any] = []

    def model(self) -> NetworkModel:
        return selectors.model_get(self.kwargs["ref"])

    def form(self, request: Request) -> dict[str, Any]:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


_REF = OpenApiParameter("ref", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=MODEL_REF)


def _trigger_schema(summary: str, request: type[serializers.Serializer[Any]]) -> Any:
    return extend_schema(
        summary=summary,
        parameters=[_REF],
        request=request,
        responses={202: AcceptedSerializer, 200: AcceptedSerializer},
    )


class RenderTrigger(_Trigger):
    serializer_class = RenderRequestSerializer

    @_trigger_schema("Render units or layers (staff)", RenderRequestSerializer)
    @idempotent
    def post(self, request: Request, ref: str) -> Response:
        model, form = self.model(), self.form(request)
        layers = [selectors.layer_get(model, name) for name in form["layers"]]
        jobs = []
        for layer in layers:
            jobs += render_jobs_create(
                layer=layer,
                technique=form["technique"],
                params=form.get("params"),
                units=form.get("units"),
                requested_by=request.user,
            )
        return accepted(request, jobs, "api:renderjob-detail")


class ConnectionsTrigger(_Trigger):
    serializer_class = ConnectionsRequestSerializer

    @_trigger_schema(
        "Compute connections between consecutive layers (staff)", ConnectionsRequestSerializer
    )
    @idempotent
    def post(self, request: Request, ref: str) -> Response:
        jobs = connection_jobs_create(model=self.model(), top=self.form(request)["top"])
        return accepted(request, jobs, "api:renderjob-detail")


class ExamplesTrigger(_Trigger):
    serializer_class = ExamplesRequestSerializer

    @_trigger_schema("Find dataset examples and statistics (staff)", ExamplesRequestSerializer)
    @idempotent
    def post(self, request: Request, ref: str) -> Response:
        model, form = self.model(), self.form(request)
        dataset = get_object_or_404(Dataset, slug=form["dataset"])
        jobs = examples_jobs_create(
            model=model, dataset=dataset, layers=form.get("layers"), k=form["k"]
        )
        return accepted(request, jobs, "api:renderjob-detail")


class TuningTrigger(_Trigger):
    serializer_class = TuningRequestSerializer

    @_trigger_schema("Measure tuning curves (staff)", TuningRequestSerializer)
    @idempotent
    def post(self, request: Request, ref: str) -> Response:
        jobs = tuning_jobs_create(model=self.model(), layers=self.form(request).get("layers"))
        return accepted(request, jobs, "api:renderjob-detail")
