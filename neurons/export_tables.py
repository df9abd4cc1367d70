"""The tables of a model version's bulk export (`neurons.export`): each app registers its own.

The catalogue registers layers and units here; rendering (renders, dataset examples,
connections) and annotations (notes) register theirs in their `AppConfig.ready()`, so the
export knows no app above the catalogue. Tables are written in the order they are registered.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.files.storage import default_storage

from neurons.models import Layer, NetworkModel, Unit


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # int, float, str, json, int_list, float_list


Rows = Callable[[NetworkModel], Iterable[dict[str, Any]]]

# Table name → its columns, and → the function that yields its rows for one model version.
TABLES: dict[str, tuple[Column, ...]] = {}
TABLE_ROWS: dict[str, Rows] = {}


def export_table_register(name: str, columns: str, rows: Rows) -> None:
    """Add a table: `columns` as `"name:type name:type …"` (a table reads better as a line)."""
    TABLES[name] = tuple(Column(*item.split(":")) for item in columns.split())
    TABLE_ROWS[name] = rows


def unit_key(model: NetworkModel, layer: str, index: int) -> str:
    """A unit's key across the tables: `slug@version/layer/index`."""
    return f"{model.slug}@{model.version}/{layer}/{index}"


def file_url(name: str | None) -> str:
    """The file's URL: site-relative for local media, absolute for a bucket."""
    return default_storage.url(name) if name else ""


def _layer_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    for layer in Layer.objects.filter(model=model).select_related("model").order_by("order"):
        yield {
            "id": layer.pk,
            "name": layer.name,
            "module_path": layer.module_path,
            "order": layer.order,
            "kind": layer.kind,
            "num_units": layer.num_units,
            "output_shape": list(layer.output_shape),
            "receptive_field": layer.receptive_field,
            "receptive_field_stride": layer.receptive_field_stride,
            "url": layer.get_versioned_url(),
        }


def _unit_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    units = (
        Unit.objects.filter(layer__model=model)
        .select_related("layer__model")
        .order_by("layer__order", "index")
    )
    for unit in units.iterator(chunk_size=2000):
        yield {
            "id": unit.pk,
            "layer": unit.layer.name,
            "index": unit.index,
            "key": unit_key(model, unit.layer.name, unit.index),
            "curator_label": unit.curator_label,
            "url": unit.get_versioned_url(),
        }


export_table_register(
    "layers",
    "id:int name:str module_path:str order:int kind:str num_units:int output_shape:int_list "
    "receptive_field:int receptive_field_stride:int url:str",
    _layer_rows,
)
export_table_register(
    "units", "id:int layer:str index:int key:str curator_label:str url:str", _unit_rows
)
