"""What the site search finds in the catalogue, case-insensitively: models (by slug, registry
key or display name), layers (`mixed4c`, `InceptionV1 mixed4c`, `4c`), units by class name
(`tabby`, `golden retriever`), by curator label and by family tag. A unit shorthand
(`InceptionV1 4c:447`) is `selectors.unit_by_shorthand`'s, which the view tries first.

Only the newest version of each model is searched, so a model imported twice is found once.
Apps above the catalogue add their own result sections (annotations: the notes a visitor may
see) with `search_section_register` in their `AppConfig.ready()`.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from neurons import selectors
from neurons.models import Layer, NetworkModel, Unit

SHOWN = 100


@dataclass(frozen=True)
class SearchSection:
    """Results an app adds to the search page: `matching(query, user=…)` gives them, and
    `version()` changes whenever they may have (part of the cached page's key)."""

    matching: Callable[..., Iterable[Any]]
    version: Callable[[], str]


# Context name on the search page → its section (e.g. "notes", from annotations).
SECTIONS: dict[str, SearchSection] = {}


def search_section_register(name: str, section: SearchSection) -> None:
    SECTIONS[name] = section


def sections_version() -> str:
    """Every registered section's version, for the search page's cache key."""
    return ":".join(section.version() for section in SECTIONS.values())


@dataclass
class CatalogueMatches:
    models: list[NetworkModel] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    classes: list[Unit] = field(default_factory=list)
    labelled: list[Unit] = field(default_factory=list)
    tagged: list[Unit] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.models, self.layers, self.classes, self.labelled, self.tagged))


def _names(model: NetworkModel) -> tuple[str, ...]:
    return (model.slug.lower(), model.registry_key.lower(), model.display_name.lower())


def _model_named(models: list[NetworkModel], name: str) -> list[NetworkModel]:
    wanted = name.lower().strip()
    return [model for model in models if wanted in _names(model)]


def models_matching(query: str, models: list[NetworkModel]) -> list[NetworkModel]:
    """Models whose slug, registry key or display name contains `query` (any case)."""
    wanted = query.lower()
    return [model for model in models if any(wanted in name for name in _names(model))]


def layers_matching(query: str, models: list[NetworkModel]) -> list[Layer]:
    """Layers named by `query`: `<layer>` or `<model> <layer>` (the model by any of its
    names), the layer by its name in any case, its Circuits shorthand (`4c`) or a part of its
    name (`mixed4`); exact names first."""
    model_part, _, layer_part = query.strip().rpartition(" ")
    scope = _model_named(models, model_part) if model_part else models
    if not scope or not layer_part:
        return []
    layers = Layer.objects.filter(model__in=[model.pk for model in scope])
    short = layer_part.lower()
    exact = (
        Q(name__iexact=short) | Q(name__iexact=f"mixed{short}") | Q(name__iexact=f"conv2d{short}")
    )
    found = list(layers.filter(exact).order_by("model__slug", "order")[:SHOWN])
    if not model_part or not found:
        seen = {layer.pk for layer in found}
        found += [
            layer
            for layer in layers.filter(name__icontains=short).order_by("model__slug", "order")[
                :SHOWN
            ]
            if layer.pk not in seen
        ]
    by_pk = {model.pk: model for model in scope}
    for layer in found:
        layer.model = by_pk[layer.model_id]  # spares a query per layer for its URL
    return found[:SHOWN]


def _in(models: list[NetworkModel]) -> QuerySet[Unit]:
    return Unit.objects.filter(layer__model__in=[model.pk for model in models])


# What a listed unit shows (its link, its model's name, its layer's, its label, class, family).
_LISTED = ("index", "curator_label", "class_name", "family_tag", "layer__name", "layer__model")


def _listed(units: QuerySet[Unit], models: list[NetworkModel]) -> list[Unit]:
    """The first `SHOWN` of `units` (all of them units of `models`), each with its layer's name
    and its model from `models`: the page reads nothing else of them, and joining each model's
    whole row (its description, citation, JSON fields) to every unit listed was about a third
    of a long search page's CPU (100 labelled units and 50 notes: ~32 → ~22 ms)."""
    by_pk = {model.pk: model for model in models}
    found = list(units.select_related("layer").only(*_LISTED)[:SHOWN])
    for unit in found:
        unit.layer.model = by_pk[unit.layer.model_id]
    return found


def units_by_class_name(query: str, models: list[NetworkModel]) -> list[Unit]:
    """Classifier outputs whose class name contains `query` (any case)."""
    units = (
        _in(models)
        .exclude(class_name="")  # the partial index `unit_named`
        .filter(class_name__icontains=query)
        .order_by("layer__model__slug", "index")
    )
    return _listed(units, models)


def catalogue_search(query: str, *, model: str = "") -> CatalogueMatches:
    """Everything in the catalogue `query` names; `model` (a slug) keeps one model's units."""
    latest = selectors.latest_models()
    if model:
        latest = [found for found in latest if found.slug == model]
    latest_ids = [found.pk for found in latest]
    labelled = selectors.units_by_label(query).filter(layer__model__in=latest_ids)
    tagged = selectors.units_by_family(query).filter(layer__model__in=latest_ids)
    return CatalogueMatches(
        models=[] if model else models_matching(query, latest),
        layers=layers_matching(query, latest),
        classes=units_by_class_name(query, latest),
        labelled=_listed(labelled, latest),
        tagged=_listed(tagged.order_by("layer__model__slug", "layer__order", "index"), latest),
    )
