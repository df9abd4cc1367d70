"""The catalogue as the API shows it: models (one per weights version), layers, units, techniques."""

from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.urls import get_script_prefix, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from microscope_site.links import reverse_kept
from neurons.models import ImportJob, Layer, NetworkModel, Technique, Unit
from neurons.panels import page_contents


def absolute(context: dict[str, Any], path: str) -> str:
    """`path` as an absolute URL when the serializer has a request (it always has in views)."""
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


def model_ref(model: NetworkModel) -> str:
    return f"{model.slug}@{model.version}"


def model_api_url(context: dict[str, Any], model: NetworkModel) -> str:
    return absolute(context, reverse_kept("api:model-detail", kwargs={"ref": model_ref(model)}))


_PK_SENTINEL = 987654321


@cache
def _unit_api_parts(view: str, script_prefix: str) -> tuple[str, str]:
    path = reverse(view, kwargs={"pk": _PK_SENTINEL})
    before, found, after = path.partition(str(_PK_SENTINEL))
    if not found:
        raise ImproperlyConfigured(f"{view}'s URL does not print its pk: {path}")
    return before, after


@cache
def _list_path(view: str, script_prefix: str) -> str:
    return reverse(view)


def unit_api_path(pk: int, view: str = "api:unit-detail") -> str:
    """`reverse(view, kwargs={"pk": pk})` for a unit's endpoint, at the cost of a format: API
    lists print one for every unit they mention, and hundreds of `reverse()` calls were most
    of a notes page's time. The parts come from `reverse()` once per view (and script
    prefix, which a deployment under a path sets)."""
    before, after = _unit_api_parts(view, get_script_prefix())
    return f"{before}{pk}{after}"


def unit_key(unit: Unit) -> str:
    return f"{model_ref(unit.layer.model)}/{unit.layer.name}/{unit.index}"


class NetworkModelSerializer(serializers.ModelSerializer[NetworkModel]):
    ref = serializers.SerializerMethodField(help_text="slug@version: what citations use")
    url = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField(help_text="the model's versioned page")
    layers_url = serializers.SerializerMethodField()
    untrained = serializers.BooleanField(read_only=True)

    class Meta:
        model = NetworkModel
        fields = [
            "id",
            "ref",
            "url",
            "html_url",
            "layers_url",
            "slug",
            "version",
            "display_name",
            "family",
            "registry_key",
            "weights_source",
            "weights_sha256",
            "untrained",
            "training_dataset",
            "input_size",
            "preprocessing",
            "description",
            "citation_bibtex",
            "licence",
            "created",
        ]

    def get_ref(self, model: NetworkModel) -> str:
        return model_ref(model)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, model: NetworkModel) -> str:
        return model_api_url(self.context, model)

    @extend_schema_field(OpenApiTypes.URI)
    def get_html_url(self, model: NetworkModel) -> str:
        return absolute(self.context, model.get_versioned_url())

    @extend_schema_field(OpenApiTypes.URI)
    def get_layers_url(self, model: NetworkModel) -> str:
        return absolute(
            self.context, reverse_kept("api:model-layers", kwargs={"ref": model_ref(model)})
        )


class ModelVersionSerializer(serializers.Serializer[NetworkModel]):
    ref = serializers.CharField()
    version = serializers.CharField()
    weights_source = serializers.CharField()
    created = serializers.DateTimeField()
    url = serializers.URLField()


class NetworkModelDetailSerializer(NetworkModelSerializer):
    versions = serializers.SerializerMethodField(help_text="every ready version of this slug")
    latest = serializers.SerializerMethodField(help_text="whether this is the newest version")

    class Meta(NetworkModelSerializer.Meta):
        fields = [*NetworkModelSerializer.Meta.fields, "latest", "versions"]

    def _versions(self, model: NetworkModel) -> list[NetworkModel]:
        from neurons.selectors import model_versions

        return list(model_versions().filter(slug=model.slug).order_by("-created", "-pk"))

    @extend_schema_field(ModelVersionSerializer(many=True))
    def get_versions(self, model: NetworkModel) -> list[dict[str, Any]]:
        return [
            {
                "ref": model_ref(v),
                "version": v.version,
                "weights_source": v.weights_source,
                "created": v.created,
                "url": model_api_url(self.context, v),
            }
            for v in self._versions(model)
        ]

    def get_latest(self, model: NetworkModel) -> bool:
        versions = self._versions(model)
        return bool(versions) and versions[0].pk == model.pk


class LayerSerializer(serializers.ModelSerializer[Layer]):
    url = serializers.HyperlinkedIdentityField(view_name="api:layer-detail")
    model = serializers.SerializerMethodField(help_text="slug@version")
    model_url = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField()
    units_url = serializers.SerializerMethodField()
    spatial = serializers.BooleanField(read_only=True)

    class Meta:
        model = Layer
        fields = [
            "id",
            "url",
            "html_url",
            "model",
            "model_url",
            "units_url",
            "name",
            "module_path",
            "order",
            "kind",
            "num_units",
            "output_shape",
            "spatial",
            "receptive_field",
            "receptive_field_stride",
            "class_names_note",
            "receptive_field_offset",
        ]

    def get_model(self, layer: Layer) -> str:
        return model_ref(layer.model)

    @extend_schema_field(OpenApiTypes.URI)
    def get_model_url(self, layer: Layer) -> str:
        return model_api_url(self.context, layer.model)

    @extend_schema_field(OpenApiTypes.URI)
    def get_html_url(self, layer: Layer) -> str:
        return absolute(self.context, layer.get_versioned_url())

    @extend_schema_field(OpenApiTypes.URI)
    def get_units_url(self, layer: Layer) -> str:
        return absolute(self.context, reverse_kept("api:unit-list") + f"?layer={layer.pk}")


class UnitSerializer(serializers.ModelSerializer[Unit]):
    url = serializers.HyperlinkedIdentityField(view_name="api:unit-detail")
    key = serializers.SerializerMethodField(help_text="model@version/layer/index")
    model = serializers.SerializerMethodField(help_text="slug@version")
    layer = serializers.CharField(source="layer.name", read_only=True)
    layer_url = serializers.HyperlinkedRelatedField(
        source="layer", view_name="api:layer-detail", read_only=True
    )
    html_url = serializers.SerializerMethodField(help_text="the unit's versioned (citable) page")
    links = serializers.SerializerMethodField(help_text="what the unit page shows, by endpoint")

    class Meta:
        model = Unit
        fields = [
            "id",
            "url",
            "key",
            "html_url",
            "model",
            "layer",
            "layer_url",
            "index",
            "class_name",
            "curator_label",
            "family_tag",
            "links",
        ]
        read_only_fields = ["index", "class_name", "curator_label", "family_tag"]

    def get_key(self, unit: Unit) -> str:
        return unit_key(unit)

    def get_model(self, unit: Unit) -> str:
        return model_ref(unit.layer.model)

    @extend_schema_field(OpenApiTypes.URI)
    def get_html_url(self, unit: Unit) -> str:
        return absolute(self.context, unit.get_versioned_url())

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_links(self, unit: Unit) -> dict[str, str]:
        links = {
            name: unit_api_path(unit.pk, f"api:unit-{name}") for name in ("connections", "label")
        }
        for name, view in (
            ("renders", "api:render-list"),
            ("examples", "api:examples-list"),
            ("tuning_curves", "api:tuningcurve-list"),
            ("notes", "api:note-list"),
            ("comments", "api:comment-list"),
        ):
            links[name] = _list_path(view, get_script_prefix()) + f"?unit={unit.pk}"
        return {name: absolute(self.context, path) for name, path in links.items()}


class UnitCitationSerializer(serializers.Serializer[Any]):
    bibtex = serializers.CharField()
    apa = serializers.CharField()
    csl = serializers.DictField(help_text="CSL-JSON")


class UnitLinkSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    url = serializers.URLField(help_text="the unit in the API")
    html_url = serializers.URLField(help_text="the unit's versioned page")


class LayerLinkSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    url = serializers.URLField(help_text="the layer in the API")
    html_url = serializers.URLField(help_text="the layer's versioned page")


class UnitNeighboursSerializer(serializers.Serializer[Any]):
    previous = UnitLinkSerializer(allow_null=True)
    next = UnitLinkSerializer(allow_null=True)
    next_layer = LayerLinkSerializer(allow_null=True)


class UnitDetailSerializer(UnitSerializer):
    """A unit with what its page shows besides the linked endpoints: kept off the lists."""

    citation = serializers.SerializerMethodField(
        help_text="naming the versioned page and today's date"
    )
    neighbours = serializers.SerializerMethodField()
    weights_png_url = serializers.SerializerMethodField(
        help_text="the weight matrix into this unit's layer, when it has been computed"
    )

    class Meta(UnitSerializer.Meta):
        fields = [*UnitSerializer.Meta.fields, "citation", "neighbours", "weights_png_url"]

    @extend_schema_field(UnitCitationSerializer)
    def get_citation(self, unit: Unit) -> dict[str, Any]:
        from django.utils import timezone

        from neurons.citations import unit_citation

        url = absolute(self.context, unit.get_versioned_url())
        cite = unit_citation(unit, url=url, accessed=timezone.now().date())
        return {"bibtex": cite["bibtex"], "apa": cite["apa"], "csl": cite["csl"]}

    def _unit_link(self, unit: Unit, index: int | None) -> dict[str, Any] | None:
        if index is None:
            return None
        ref = model_ref(unit.layer.model)
        kwargs = {"ref": ref, "layer": unit.layer.name, "index": index}
        page = {"model": ref, "layer": unit.layer.name, "index": index}
        return {
            "index": index,
            "url": absolute(self.context, reverse_kept("api:unit-by-key", kwargs=kwargs)),
            "html_url": absolute(self.context, reverse_kept("neurons:unit", kwargs=page)),
        }

    @extend_schema_field(UnitNeighboursSerializer)
    def get_neighbours(self, unit: Unit) -> dict[str, Any]:
        from neurons.selectors import unit_neighbours

        found = unit_neighbours(unit)
        ref = model_ref(unit.layer.model)
        next_layer = None
        if found["next_layer"] is not None:
            name = found["next_layer"]
            next_layer = {
                "name": name,
                "url": absolute(
                    self.context,
                    reverse_kept("api:layer-by-key", kwargs={"ref": ref, "layer": name}),
                ),
                "html_url": absolute(
                    self.context,
                    reverse_kept("neurons:layer", kwargs={"model": ref, "layer": name}),
                ),
            }
        return {
            "previous": self._unit_link(unit, _int_or_none(found["previous"])),
            "next": self._unit_link(unit, _int_or_none(found["next"])),
            "next_layer": next_layer,
        }

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_weights_png_url(self, unit: Unit) -> str | None:
        path = page_contents().layer_weights_png(model_ref(unit.layer.model), unit.layer)
        return absolute(self.context, path) if path else None


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None else None


class TechniqueSerializer(serializers.ModelSerializer[Technique]):
    class Meta:
        model = Technique
        fields = ["slug", "name", "description", "level", "default_params"]


class ImportJobSerializer(serializers.ModelSerializer[ImportJob]):
    url = serializers.HyperlinkedIdentityField(view_name="api:importjob-detail")
    result = serializers.SerializerMethodField(help_text="the imported model, once it succeeded")

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "url",
            "registry_key",
            "weights_source",
            "seed",
            "weights_path",
            "status",
            "progress",
            "attempts",
            "error",
            "log",
            "result",
            "created",
            "started",
            "finished",
        ]

    @extend_schema_field(serializers.URLField(allow_null=True))  # null until it succeeded
    def get_result(self, job: ImportJob) -> str | None:
        return model_api_url(self.context, job.result) if job.result is not None else None


class ImportRequestSerializer(serializers.Serializer[ImportJob]):
    registry_key = serializers.CharField(max_length=64, help_text="e.g. inceptionv1")
    weights_source = serializers.ChoiceField(
        choices=NetworkModel.Weights.choices, default=NetworkModel.Weights.PRETRAINED
    )
    seed = serializers.IntegerField(
        default=0, min_value=0, max_value=2**31 - 1, help_text="for random weights"
    )
    weights_path = serializers.CharField(
        max_length=512, default="", allow_blank=True, help_text="a state-dict file on the server"
    )


class JobLinkSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    url = serializers.URLField()
    status = serializers.CharField()


class AcceptedSerializer(serializers.Serializer[Any]):
    jobs = JobLinkSerializer(many=True, help_text="empty when everything asked for exists")
