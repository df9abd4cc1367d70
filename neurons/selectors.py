"""Reads shared by pages, the API and commands."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.cache import caches
from django.db import connection
from django.db.models import Count, F, QuerySet, Subquery, Sum, Window
from django.db.models.functions import Lower, RowNumber
from django.http import Http404

from microscope_site.errors import Moved
from microscope_site.rows import JoinedSelect, sql_row, sql_rows
from neurons.models import Layer, NetworkModel, Rename, Unit

if TYPE_CHECKING:
    from rendering.engine.zoo import ZooEntry


def model_versions() -> QuerySet[NetworkModel]:
    return NetworkModel.objects.filter(status=NetworkModel.Status.READY)


def latest_models() -> list[NetworkModel]:
    """The newest ready version of every model slug, in slug order."""
    latest: dict[str, NetworkModel] = {}
    for model in (
        model_versions()
        .annotate(layer_count=Count("layers"), unit_count=Sum("layers__num_units"))
        .order_by("slug", "-created", "-pk")
    ):
        latest.setdefault(model.slug, model)
    return list(latest.values())


# Every layer and unit page built, and the API's reads by name, look these up: SQL built once.
_MODEL = JoinedSelect(NetworkModel)
_LAYER = JoinedSelect(Layer)
_UNIT_WITH_LAYER = JoinedSelect(Unit, "layer__model")


def model_get(ref: str) -> NetworkModel:
    """`slug` (the newest ready version) or `slug@version` (exactly that version) or 404."""
    slug, _, version = ref.partition("@")
    where, params = "root.status = %s AND root.slug = %s", [NetworkModel.Status.READY, slug]
    if version:
        where, params = where + " AND root.version = %s", [*params, version]
    found = _MODEL.fetch(where, params, order_by="root.created DESC, root.id DESC", limit=1)
    model = found[0] if found else None
    if model is None:
        renamed = Rename.objects.filter(kind=Rename.Kind.MODEL, old=slug).first()
        if renamed is not None:
            raise Moved("model", slug, renamed.new)
        canonical = model_slug_for(slug)
        if canonical is not None and canonical != slug:
            raise Moved("model", slug, canonical)
        if version and version != version.lower():
            raise Moved("model", ref, f"{slug}@{version.lower()}")
        raise Http404(f"No model {ref!r}")
    return model


def model_or_none(ref: str) -> NetworkModel | None:
    """`model_get`, or None where it would answer 404 or a redirect to a new name."""
    try:
        return model_get(ref)
    except (Http404, Moved):
        return None


def model_slug_for(name: str) -> str | None:
    """The slug of the model that `name` means in any case: its slug, its registry key
    (`clip_rn50` for `clip-rn50`) or its display name (`InceptionV1`); the newest such model
    first. None when no ready model goes by that name."""
    from django.db.models import Q

    return (
        model_versions()
        .filter(Q(slug__iexact=name) | Q(registry_key__iexact=name) | Q(display_name__iexact=name))
        .order_by("-created", "-pk")
        .values_list("slug", flat=True)
        .first()
    )


def _renamed_layer(model: NetworkModel, name: str) -> None:
    renamed = Rename.objects.filter(kind=Rename.Kind.LAYER, model_slug=model.slug, old=name).first()
    if renamed is not None:
        raise Moved("layer", name, renamed.new)


def _layer_named(model: NetworkModel, name: str) -> Layer | None:
    found = _LAYER.fetch("root.model_id = %s AND root.name = %s", [model.pk, name], limit=1)
    if not found:
        return None
    found[0].model = model  # as `model.layers` gives it, with no query to reach it
    return found[0]


def layer_get(model: NetworkModel, name: str) -> Layer:
    layer = _layer_named(model, name)
    if layer is None:
        _renamed_layer(model, name)
        raise Http404(f"{model} has no layer {name!r}")
    return layer


def layer_get_or_alias(model: NetworkModel, name: str) -> Layer:
    """The layer, or the one an older spelling names: OpenAI Microscope's `mixed4c_0`
    (TensorFlow tensor names) and the Circuits thread's `4c` for InceptionV1."""
    layer = _layer_named(model, name)
    if layer is None:
        layer = layer_by_shorthand(model, name.removesuffix("_0"))
    return layer


def layer_by_shorthand(model: NetworkModel, short: str) -> Layer:
    for candidate in (short, f"mixed{short}", f"conv2d{short}"):
        layer = model.layers.filter(name=candidate).first()
        if layer is not None:
            return layer
    for candidate in (short, f"mixed{short}", f"conv2d{short}"):  # `MIXED4C`, `Mixed4c`
        layer = model.layers.filter(name__iexact=candidate).order_by("order").first()
        if layer is not None:
            return layer
    _renamed_layer(model, short)
    raise Http404(f"{model} has no layer {short!r}")


def unit_get(layer: Layer, index: int) -> Unit:
    # A layer's units are 0 … num_units - 1; checked first, as SQL refuses an index past 64 bits.
    found = (
        _UNIT_WITH_LAYER.fetch('root.layer_id = %s AND root."index" = %s', [layer.pk, index])
        if 0 <= index < layer.num_units
        else []
    )
    unit = found[0] if found else None
    if unit is None:
        raise Http404(f"{layer} has units 0–{layer.num_units - 1}, not {index}")
    return unit


def unit_current(model_ref: str, layer_name: str, index: int) -> Unit | None:
    """The unit these names give, with its layer and model, when they are current names (the
    newest ready version unless `model_ref` names one): one query. None otherwise."""
    slug, _, version = model_ref.partition("@")
    models = model_versions().filter(slug=slug)
    model = (
        models.filter(version=version)
        if version
        else models.filter(pk=Subquery(models.order_by("-created", "-pk").values("pk")[:1]))
    )
    return (
        Unit.objects.filter(layer__model__in=model, layer__name=layer_name, index=index)
        .select_related("layer__model")
        .first()
    )


@dataclass(frozen=True)
class PageVersion:
    """What a cached page of a model depends on (`neurons.pagecache`): the model version's
    content version and, on a unit's page, the unit's discussion version."""

    model_id: int
    content_version: int
    unit_id: int | None = None
    discussion_version: int | None = None


# The page cache asks this on every anonymous page, hit or miss. Written in SQL because the
# ORM spends ~2 ms of CPU building this query (a subquery, three tables) and psycopg ~0.15 ms
# running it; the columns are the models' own, and tests/neurons/test_page_cache.py checks the
# answer against `unit_current` and `model_get`.
_NEWEST_MODEL_SQL = (
    "SELECT id FROM {model} WHERE slug = %s AND status = %s{version}"
    " ORDER BY created DESC, id DESC LIMIT 1"
)


def page_version(
    slug: str, version: str, layer_name: str | None = None, index: int | None = None
) -> PageVersion | None:
    """The versions a model page (no layer), or a unit page (`layer_name` and `index`), of
    model `slug` (its newest ready version, or `version`) depends on; None when the names are
    not current (an unknown or renamed model, a layer alias, a unit that is not there)."""
    newest = _NEWEST_MODEL_SQL.format(
        model=NetworkModel._meta.db_table, version=" AND version = %s" if version else ""
    )
    params: list[Any] = [slug, NetworkModel.Status.READY] + ([version] if version else [])
    if layer_name is None:
        sql = f"SELECT id, content_version FROM {NetworkModel._meta.db_table} WHERE id = ({newest})"
    else:
        sql = (
            "SELECT m.id, m.content_version, u.id, u.discussion_version"
            f" FROM {Unit._meta.db_table} u JOIN {Layer._meta.db_table} l ON l.id = u.layer_id"
            f" JOIN {NetworkModel._meta.db_table} m ON m.id = l.model_id"
            f" WHERE m.id = ({newest}) AND l.name = %s"
            f" AND u.{connection.ops.quote_name('index')} = %s"  # a keyword in SQLite
        )
        params += [layer_name, index]
    row = sql_row(sql, params)
    return PageVersion(*row) if row is not None else None


def unit_at(model_ref: str, layer_name: str, index: int) -> Unit:
    """The unit a unit page's path names: `unit_current` (one query where the names are
    current; `model_get`, `layer_get_or_alias` and `unit_get` are three), else what those
    answer (a renamed model or layer, an alias, a 404)."""
    unit = unit_current(model_ref, layer_name, index)
    if unit is not None:
        return unit
    network = model_get(model_ref)
    return unit_get(layer_get_or_alias(network, layer_name), index)


def unit_by_id(unit_id: int) -> Unit:
    """A unit with its layer and model (Unit.DoesNotExist when there is none): the unit page's
    read, from SQL built once (`JoinedSelect`: ~0.5 ms of CPU against ~2.5 ms for the ORM's)."""
    found = _UNIT_WITH_LAYER.fetch("root.id = %s", [unit_id])
    if not found:
        raise Unit.DoesNotExist(f"no unit {unit_id}")
    return found[0]


def unit_neighbours(unit: Unit) -> dict[str, str | None]:
    """The API's neighbours of a unit: previous and next index, and the next layer's name."""
    layer = unit.layer
    previous = unit.index - 1 if unit.index > 0 else None
    following = unit.index + 1 if unit.index + 1 < layer.num_units else None
    next_layer = layer.model.layers.filter(order__gt=layer.order).order_by("order").first()
    return {
        "previous": f"{previous}" if previous is not None else None,
        "next": f"{following}" if following is not None else None,
        "next_layer": next_layer.name if next_layer else None,
    }


@dataclass
class LayerStep:
    """A layer as the model navigation lists it."""

    name: str
    num_units: int
    kind: str


def model_layers(model: NetworkModel) -> list[LayerStep]:
    """The model's layers in order, for the navigation every model page carries: one query,
    and none where this process has kept them for the model's content version (a changed
    layer changes it: `neurons.signals`)."""
    key = f"model-layers:{model.pk}:{model.content_version}"
    kept: list[LayerStep] | None = caches["fragments"].get(key)
    if kept is None:
        rows = model.layers.order_by("order").values_list("name", "num_units", "kind")
        kept = [LayerStep(name, units, kind) for name, units, kind in rows]
        caches["fragments"].set(key, kept)
    return kept


def layer_neighbours(layers: list[LayerStep], name: str) -> tuple[str | None, str | None]:
    """The names of the layers before and after `name` in `layers` (None at either end)."""
    names = [layer.name for layer in layers]
    at = names.index(name)
    return (names[at - 1] if at > 0 else None, names[at + 1] if at + 1 < len(names) else None)


def unit_by_shorthand(query: str) -> Unit | None:
    """`inceptionv1 4c:447`, `inceptionv1/mixed4c/447`, `mixed4c 447` or `4c:447` (the newest
    InceptionV1 when no model is named, as in the Circuits thread), or None. The model may be
    named in any case by its slug, registry key or display name (`InceptionV1 4c:447`,
    `clip_rn50 layer1.0:5`, `GoogLeNet (torchvision) inception4a:3`)."""
    import re

    match = re.fullmatch(
        r"(?:(?P<model>[^\s/][^/]*?)[\s/]+)?"
        r"(?P<layer>[A-Za-z0-9_.]+)[\s:/]+(?P<index>\d+)/?",
        query.strip(),
    )
    if match is None:
        return None
    return unit_following_renames(
        match["model"] or "inceptionv1", match["layer"], int(match["index"])
    )


def unit_following_renames(model_ref: str, layer_name: str, index: int) -> Unit | None:
    """The unit these names give, following renames of the model and the layer; or None."""
    for _ in range(3):
        try:
            model = model_get(model_ref)
            layer = layer_get_or_alias(model, layer_name)
            return unit_get(layer, index)
        except Http404:
            return None
        except Moved as moved:
            if moved.kind == "model":
                model_ref = moved.new + model_ref[len(moved.old) :]
            else:
                layer_name = moved.new
    return None


def units_by_label(query: str) -> QuerySet[Unit]:
    """Units whose curator label matches: full-text on PostgreSQL, substring on SQLite."""
    units = Unit.objects.exclude(curator_label="")  # the partial index `unit_labelled`
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        # An alias, not an annotation: filtered on, never read back with every unit.
        return units.alias(search=SearchVector("curator_label")).filter(
            search=SearchQuery(query, search_type="websearch")
        )
    return units.filter(curator_label__icontains=query)


def catalogue_version() -> str:
    """Changes whenever any model's pages change: the zoo page's cache key, and every cached
    API read's. Plain SQL, as `page_version` (a part of most cache hits)."""
    import hashlib

    table = NetworkModel._meta.db_table
    rows = sql_rows(f"SELECT id, content_version, status FROM {table} ORDER BY id")
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


# --- comparing units across models ---------------------------------------------------------


@dataclass
class ComparedModel:
    """One model's column of the compare view: its first matching units and how many match."""

    model: NetworkModel
    units: list[Unit]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.units)


@dataclass
class UnitTerm:
    """A curator label or family tag (case-folded) and how many units carry it."""

    text: str
    units: int
    models: int


def _latest_units(models: list[NetworkModel]) -> QuerySet[Unit]:
    return Unit.objects.filter(layer__model__in=[model.pk for model in models])


def units_compare(
    *,
    label: str = "",
    family: str = "",
    per_model: int = 48,
    models: list[NetworkModel] | None = None,
) -> list[ComparedModel]:
    """The units of the newest version of every model whose curator label contains `label`
    or whose family tag is `family` (both case-insensitive), grouped by model in slug order.

    At most `per_model` units per model (in layer order, then index), each column with the
    total that match; models without a match are left out. `models` defaults to
    `latest_models()`. One query (two without `models`) whatever matches.
    """
    if bool(label) == bool(family):
        raise ValueError("compare by a label or by a family tag: exactly one of the two")
    if models is None:
        models = latest_models()
    units = _latest_units(models)
    if label:
        units = units.filter(curator_label__icontains=label)
    else:
        units = units.filter(family_tag__iexact=family)
    ranked = (
        units.annotate(
            rank=Window(
                RowNumber(),
                partition_by=F("layer__model_id"),
                order_by=(F("layer__order").asc(), F("index").asc()),
            ),
            matches=Window(Count("pk"), partition_by=F("layer__model_id")),
        )
        .filter(rank__lte=per_model)
        .select_related("layer")
        .order_by("layer__model_id", "rank")
    )
    found: dict[int, list[Unit]] = {}
    totals: dict[int, int] = {}
    for match in ranked:
        found.setdefault(match.layer.model_id, []).append(match)
        totals[match.layer.model_id] = match.matches
    columns = []
    for model in models:
        for unit in found.get(model.pk, []):
            unit.layer.model = model  # spares a query per unit for its URL
        if model.pk in found:
            columns.append(ComparedModel(model, found[model.pk], totals[model.pk]))
    return columns


def unit_terms(
    field: str, *, limit: int = 200, models: list[NetworkModel] | None = None
) -> list[UnitTerm]:
    """The curator labels (`field="curator_label"`) or family tags (`"family_tag"`) that the
    newest version of any model (`models`, default `latest_models()`) uses, case-folded, most
    units first; at most `limit`."""
    if field not in ("curator_label", "family_tag"):
        raise ValueError(f"units are compared by curator_label or family_tag, not {field!r}")
    rows = (
        _latest_units(latest_models() if models is None else models)
        .exclude(**{field: ""})
        .values(text=Lower(field))
        .annotate(units=Count("pk"), models=Count("layer__model", distinct=True))
        .order_by("-units", "text")[:limit]
    )
    return [UnitTerm(row["text"], row["units"], row["models"]) for row in rows]


def units_by_family(tag: str) -> QuerySet[Unit]:
    """Units whose family tag is `tag`, case-insensitive (every version of every model)."""
    units = Unit.objects.exclude(family_tag="")  # the partial index `unit_tagged`
    return units.filter(family_tag__iexact=tag)


# --- the zoo: every registry entry, imported or not ------------------------------------------


@dataclass
class ZooRow:
    """A registry model on the home page: the registry's facts, and its newest imported
    version when there is one (then the facts are that version's, as imported)."""

    key: str
    display_name: str
    family: str
    description: str
    training_dataset: str
    input_size: int
    licence: str
    weights_url: str
    model: NetworkModel | None


def _zoo_row(key: str, facts: "ZooEntry | NetworkModel", model: NetworkModel | None) -> ZooRow:
    return ZooRow(
        key=key,
        display_name=facts.display_name,
        family=facts.family or "Other",
        description=facts.description,
        training_dataset=facts.training_dataset,
        input_size=facts.input_size,
        licence=facts.licence,
        weights_url=facts.weights_url,
        model=model,
    )


def zoo_families() -> list[tuple[str, list[ZooRow]]]:
    """Every registry entry and every imported model, grouped by family in registry order
    (models whose entry is gone come last). An imported model shows the facts it was imported
    with, not what the registry says today. One query."""
    from rendering.engine.zoo import ENTRIES  # the registry is pure PyTorch, no Django

    imported: dict[str, list[NetworkModel]] = {}
    for model in latest_models():
        imported.setdefault(model.registry_key, []).append(model)
    rows = []
    for key, entry in ENTRIES.items():
        models = imported.pop(key, [])
        rows += [_zoo_row(key, model, model) for model in models] or [_zoo_row(key, entry, None)]
    rows += [_zoo_row(m.registry_key, m, m) for models in imported.values() for m in models]
    families: dict[str, list[ZooRow]] = {}
    for row in rows:
        families.setdefault(row.family, []).append(row)
    return list(families.items())
