"""Class names on a classifier's output units, from the label list of its registry entry.

The import fills them (`model_import` calls `model_class_names_fill`); `python manage.py
class_names` fills them on models imported before, or once a label file has been put in
`settings.LABELS_DIR`. Pages, search and the API read `Unit.class_name`.
"""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from neurons.models import Layer, NetworkModel, Unit
from rendering.engine.zoo import UnknownModelError, get_entry
from rendering.engine.zoo.classes import ClassNamesUnavailable

NAME_MAX = 200  # Unit.class_name
NOTE_MAX = 400  # Layer.class_names_note


@dataclass(frozen=True)
class ClassNamesFilled:
    """What `model_class_names_fill` did: the layer it named and how many units, or why not."""

    layer: str
    units: int
    note: str


@transaction.atomic
def model_class_names_fill(*, model: NetworkModel, folder: Path | None = None) -> ClassNamesFilled:
    """Name the output units of `model`'s classifier layer after the classes they score.

    The names come from the registry entry's label list (a library's, or a file in `folder`,
    default `settings.LABELS_DIR`). Where there is none, the layer keeps a note saying why
    (pages show it) and its units stay unnamed. A model without a classifier layer is left
    alone.
    """
    try:
        entry = get_entry(model.registry_key)
    except (UnknownModelError, ValueError):
        return ClassNamesFilled("", 0, f"the registry has no entry {model.registry_key!r}")
    if not entry.class_names_layer or entry.class_names is None:
        return ClassNamesFilled("", 0, f"{entry.display_name} has no classifier output layer")
    layer = model.layers.filter(name=entry.class_names_layer).first()
    if layer is None:
        return ClassNamesFilled(
            entry.class_names_layer,
            0,
            f"{model} has no layer {entry.class_names_layer!r} (imported before the registry "
            "listed it; a new import adds it)",
        )
    try:
        names = entry.class_names(folder or Path(settings.LABELS_DIR))
        if len(names) != layer.num_units:
            raise ClassNamesUnavailable(
                f"the label list has {len(names):,} names; {layer.name} has "
                f"{layer.num_units:,} outputs"
            )
    except ClassNamesUnavailable as error:
        note = str(error)[:NOTE_MAX]
        Layer.objects.filter(pk=layer.pk).update(class_names_note=note)
        _touch(model)
        return ClassNamesFilled(layer.name, 0, note)
    units = list(layer.units.order_by("index"))
    for unit in units:
        unit.class_name = names[unit.index][:NAME_MAX]
    Unit.objects.bulk_update(units, ["class_name"], batch_size=1000)
    Layer.objects.filter(pk=layer.pk).update(class_names_note="")
    _touch(model)
    return ClassNamesFilled(layer.name, len(units), "")


def _touch(model: NetworkModel) -> None:
    from neurons.services import model_touch  # services imports this module

    model_touch(model.pk)
