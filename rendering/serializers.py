"""Renders, dataset examples, tuning curves, connections and jobs as the API shows them."""

from typing import Any

from django.core.files.storage import default_storage
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from microscope_site.api_queries import INT_MAX
from neurons.serializers import absolute, model_ref
from rendering.models import Dataset, Render, RenderJob, TuningCurve, UnitExamples
from rendering.params import LAYER_TECHNIQUES, UNIT_TECHNIQUES


class RenderSerializer(serializers.ModelSerializer[Render]):
    url = serializers.HyperlinkedIdentityField(view_name="api:render-detail")
    technique = serializers.CharField(source="technique.slug", read_only=True)
    unit_url = serializers.HyperlinkedRelatedField(
        source="unit", view_name="api:unit-detail", read_only=True, allow_null=True
    )
    layer_url = serializers.HyperlinkedRelatedField(
        source="layer", view_name="api:layer-detail", read_only=True
    )
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField(help_text="96 px")

    class Meta:
        model = Render
        fields = [
            "id",
            "url",
            "unit",
            "unit_url",
            "layer",
            "layer_url",
            "technique",
            "params",
            "params_hash",
            "variant",
            "image_url",
            "thumbnail_url",
            "image_sha256",
            "objective",
            "metrics",
            "created",
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_image_url(self, render: Render) -> str:
        return absolute(self.context, render.image.url)

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, render: Render) -> str:
        return absolute(self.context, render.thumbnail.url)


class DatasetSerializer(serializers.ModelSerializer[Dataset]):
    class Meta:
        model = Dataset
        fields = ["slug", "name", "description", "licence", "image_count", "manifest_sha256"]


class ExampleSerializer(serializers.Serializer[dict[str, Any]]):
    image = serializers.IntegerField(help_text="index in the dataset's manifest")
    path = serializers.CharField(help_text="relative path in the dataset")
    value = serializers.FloatField(help_text="the activation")
    y = serializers.IntegerField(help_text="row of the maximum in the layer's map")
    x = serializers.IntegerField(help_text="column of the maximum in the layer's map")
    box = serializers.ListField(
        child=serializers.IntegerField(), help_text="crop in input pixels: top, left, bottom, right"
    )
    full_url = serializers.URLField(help_text="the whole image as the model saw it")


class UnitExamplesSerializer(serializers.ModelSerializer[UnitExamples]):
    url = serializers.HyperlinkedIdentityField(view_name="api:examples-detail")
    unit_url = serializers.HyperlinkedRelatedField(
        source="unit", view_name="api:unit-detail", read_only=True
    )
    dataset = serializers.CharField(source="dataset.slug", read_only=True)
    top = serializers.SerializerMethodField(help_text="strongest first")
    bottom = serializers.SerializerMethodField(help_text="most negative first")
    sprite_top_url = serializers.SerializerMethodField(help_text="the top crops side by side")
    sprite_bottom_url = serializers.SerializerMethodField()
    statistics = serializers.JSONField(
        source="stats",
        read_only=True,
        help_text="count, mean, std, max, min, quantiles and histogram of the unit's activations",
    )

    class Meta:
        model = UnitExamples
        fields = [
            "id",
            "url",
            "unit",
            "unit_url",
            "dataset",
            "params_hash",
            "negative_source",
            "crop_size",
            "top",
            "bottom",
            "sprite_top_url",
            "sprite_bottom_url",
            "statistics",
            "created",
        ]

    def _entries(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keep = ("image", "path", "value", "y", "x", "box")
        return [
            {
                **{key: entry.get(key) for key in keep},
                "full_url": absolute(self.context, default_storage.url(entry["full"])),
            }
            for entry in entries
        ]

    @extend_schema_field(ExampleSerializer(many=True))
    def get_top(self, row: UnitExamples) -> list[dict[str, Any]]:
        return self._entries(row.top)

    @extend_schema_field(ExampleSerializer(many=True))
    def get_bottom(self, row: UnitExamples) -> list[dict[str, Any]]:
        return self._entries(row.bottom)

    @extend_schema_field(OpenApiTypes.URI)
    def get_sprite_top_url(self, row: UnitExamples) -> str:
        return absolute(self.context, row.sprite_top.url)

    @extend_schema_field(OpenApiTypes.URI)
    def get_sprite_bottom_url(self, row: UnitExamples) -> str:
        return absolute(self.context, row.sprite_bottom.url)


class TuningCurveSerializer(serializers.ModelSerializer[TuningCurve]):
    url = serializers.HyperlinkedIdentityField(view_name="api:tuningcurve-detail")
    unit_url = serializers.HyperlinkedRelatedField(
        source="unit", view_name="api:unit-detail", read_only=True
    )

    class Meta:
        model = TuningCurve
        fields = [
            "id",
            "url",
            "unit",
            "unit_url",
            "family",
            "params_hash",
            "grid",
            "responses",
            "summary",
            "svg",
            "created",
        ]


class ConnectedUnitSerializer(serializers.Serializer[dict[str, Any]]):
    direction = serializers.ChoiceField(choices=["in", "out"])
    rank = serializers.IntegerField(help_text="0 is the strongest")
    layer = serializers.CharField()
    index = serializers.IntegerField()
    unit = serializers.IntegerField(help_text="the other unit's id")
    url = serializers.URLField(help_text="the other unit in the API")
    strength = serializers.FloatField(help_text="signed L2 norm of the kernel")
    sign = serializers.ChoiceField(
        choices=["excitatory", "inhibitory", "mixed"],
        help_text="the sign of the kernel's sum, or mixed when |sum| < 0.25 × its L1 norm",
    )
    method = serializers.CharField(help_text="direct or expanded weights")
    kernel = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="k × k weights (input positions), float16 precision",
    )
    thumbnail_url = serializers.URLField(allow_null=True)


class ConnectionsSerializer(serializers.Serializer[dict[str, Any]]):
    unit = serializers.URLField()
    connections = ConnectedUnitSerializer(many=True)


class RenderJobSerializer(serializers.ModelSerializer[RenderJob]):
    url = serializers.HyperlinkedIdentityField(view_name="api:renderjob-detail")
    model = serializers.SerializerMethodField(help_text="slug@version")
    layer_url = serializers.HyperlinkedRelatedField(
        source="layer", view_name="api:layer-detail", read_only=True
    )
    technique = serializers.CharField(source="technique.slug", read_only=True)
    error = serializers.SerializerMethodField(help_text="staff only (tracebacks)")

    class Meta:
        model = RenderJob
        fields = [
            "id",
            "url",
            "model",
            "layer",
            "layer_url",
            "technique",
            "params",
            "unit_start",
            "unit_stop",
            "status",
            "progress",
            "attempts",
            "error",
            "created",
            "started",
            "finished",
            "heartbeat",
        ]

    def get_model(self, job: RenderJob) -> str:
        return model_ref(job.layer.model)

    def get_error(self, job: RenderJob) -> str | None:
        request = self.context.get("request")
        staff = request is not None and getattr(request.user, "is_staff", False)
        return job.error if staff else None


class RenderRequestSerializer(serializers.Serializer[Any]):
    layers = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=200)
    technique = serializers.ChoiceField(
        choices=[*UNIT_TECHNIQUES, *LAYER_TECHNIQUES], default="channel"
    )
    params = serializers.DictField(
        required=False, help_text="overrides of the technique's default parameters (steps, size, …)"
    )
    units = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=INT_MAX),
        required=False,
        help_text="unit indices; default: every unit of each layer",
    )


class ConnectionsRequestSerializer(serializers.Serializer[Any]):
    top = serializers.IntegerField(min_value=1, max_value=500, default=50)


class ExamplesRequestSerializer(serializers.Serializer[Any]):
    dataset = serializers.SlugField(help_text="a registered dataset's slug")
    layers = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="default: every layer"
    )
    k = serializers.IntegerField(min_value=1, max_value=1000, default=40)


class TuningRequestSerializer(serializers.Serializer[Any]):
    layers = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="default: every layer"
    )
