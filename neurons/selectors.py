"""Reads shared by pages, the API and commands."""

from django.db.models import Count, QuerySet
from django.http import Http404

from neurons.models import Layer, NetworkModel, Unit


def model_versions() -> QuerySet[NetworkModel]:
    return NetworkModel.objects.filter(status=NetworkModel.Status.READY)


def latest_models() -> list[NetworkModel]:
    """The newest ready version of every model slug, in slug order."""
    latest: dict[str, NetworkModel] = {}
    for model in (
        model_versions().annotate(layer_count=Count("layers")).order_by("slug", "-created", "-pk")
    ):
        latest.setdefault(model.slug, model)
    return list(latest.values())


def model_get(ref: str) -> NetworkModel:
    """`slug` (the newest ready version) or `slug@version` (exactly that version) or 404."""
    slug, _, version = ref.partition("@")
    versions = model_versions().filter(slug=slug)
    model = (
        versions.filter(version=version).first()
        if version
        else versions.order_by("-created", "-pk").first()
    )
    if model is None:
        raise Http404(f"No model {ref!r}")
    return model


def layer_get(model: NetworkModel, name: str) -> Layer:
    layer = model.layers.filter(name=name).first()
    if layer is None:
        raise Http404(f"{model} has no layer {name!r}")
    return layer


def layer_get_or_alias(model: NetworkModel, name: str) -> Layer:
    """The layer, or the one an older spelling names: OpenAI Microscope's `mixed4c_0`
    (TensorFlow tensor names) and the Circuits thread's `4c` for InceptionV1."""
    layer = model.layers.filter(name=name).first()
    if layer is None:
        layer = layer_by_shorthand(model, name.removesuffix("_0"))
    return layer


def layer_by_shorthand(model: NetworkModel, short: str) -> Layer:
    for candidate in (short, f"mixed{short}", f"conv2d{short}"):
        layer = model.layers.filter(name=candidate).first()
        if layer is not None:
            return layer
    raise Http404(f"{model} has no layer {short!r}")


def unit_get(layer: Layer, index: int) -> Unit:
    unit = layer.units.filter(index=index).select_related("layer__model").first()
    if unit is None:
        raise Http404(f"{layer} has units 0–{layer.num_units - 1}, not {index}")
    return unit


def unit_neighbours(unit: Unit) -> dict[str, str | None]:
    layer = unit.layer
    previous = unit.index - 1 if unit.index > 0 else None
    following = unit.index + 1 if unit.index + 1 < layer.num_units else None
    next_layer = layer.model.layers.filter(order__gt=layer.order).order_by("order").first()
    return {
        "previous": f"{previous}" if previous is not None else None,
        "next": f"{following}" if following is not None else None,
        "next_layer": next_layer.name if next_layer else None,
    }


def unit_by_shorthand(query: str) -> Unit | None:
    """`inceptionv1 4c:447`, `inceptionv1/mixed4c/447`, `mixed4c 447` or `4c:447` (the newest
    InceptionV1 when no model is named, as in the Circuits thread), or None."""
    import re

    match = re.fullmatch(
        r"(?:(?P<model>[a-z0-9][a-z0-9_-]*(?:@[0-9a-f]{4,16})?)[\s/]+)?"
        r"(?P<layer>[A-Za-z0-9_.]+)[\s:/]+(?P<index>\d+)/?",
        query.strip(),
    )
    if match is None:
        return None
    try:
        model = model_get(match["model"] or "inceptionv1")
        layer = layer_get_or_alias(model, match["layer"])
        return unit_get(layer, int(match["index"]))
    except Http404:
        return None


def units_by_label(query: str) -> QuerySet[Unit]:
    """Units whose curator label matches: full-text on PostgreSQL, substring on SQLite."""
    from django.db import connection

    units = Unit.objects.exclude(curator_label="").select_related("layer__model")
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        return units.annotate(search=SearchVector("curator_label")).filter(
            search=SearchQuery(query, search_type="websearch")
        )
    return units.filter(curator_label__icontains=query)
