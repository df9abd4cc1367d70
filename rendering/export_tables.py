"""Rendering's tables in a model's bulk export: renders, dataset examples, connections.
Registered with the catalogue's export when the app is ready (`RenderingConfig.ready`)."""

from collections.abc import Iterator
from typing import Any

from neurons.export_tables import export_table_register, file_url
from neurons.models import NetworkModel
from rendering.models import Connection, Render, UnitExamples


def _render_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    renders = (
        Render.objects.filter(layer__model=model)
        .select_related("layer", "unit", "technique")
        .order_by("layer__order", "unit__index", "technique__slug", "params_hash", "variant", "pk")
    )
    for render in renders.iterator(chunk_size=2000):
        yield {
            "id": render.pk,
            "layer": render.layer.name,
            "index": render.unit.index if render.unit is not None else None,
            "technique": render.technique.slug,
            "params": render.params,
            "params_hash": render.params_hash,
            "variant": render.variant,
            "image_path": render.image.name,
            "image_url": file_url(render.image.name),
            "thumbnail_url": file_url(render.thumbnail.name),
            "image_sha256": render.image_sha256,
            "objective": render.objective,
            "created": render.created.isoformat(),
        }


def _example_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    passes = (
        UnitExamples.objects.filter(unit__layer__model=model)
        .select_related("unit__layer", "dataset")
        .order_by("unit__layer__order", "unit__index", "dataset__slug", "params_hash")
    )
    for found in passes.iterator(chunk_size=500):
        for which, entries in (("top", found.top), ("bottom", found.bottom)):
            for rank, entry in enumerate(entries or []):
                yield {
                    "layer": found.unit.layer.name,
                    "index": found.unit.index,
                    "dataset": found.dataset.slug,
                    "dataset_manifest_sha256": found.dataset.manifest_sha256,
                    "params_hash": found.params_hash,
                    "negative_source": found.negative_source,
                    "which": which,
                    "rank": rank,
                    "image": entry.get("image"),
                    "path": entry.get("path"),
                    "value": entry.get("value"),
                    "y": entry.get("y"),
                    "x": entry.get("x"),
                    "box": entry.get("box"),
                    "full_path": entry.get("full"),
                }


def _connection_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    rows = (
        Connection.objects.filter(unit__layer__model=model)
        .select_related("unit__layer", "pair__source", "pair__target")
        .defer("kernels")
        .order_by("unit__layer__order", "unit__index", "direction", "pair_id")
    )
    for row in rows.iterator(chunk_size=2000):
        other = row.pair.source if row.direction == "in" else row.pair.target
        yield {
            "layer": row.unit.layer.name,
            "index": row.unit.index,
            "direction": row.direction,
            "other_layer": other.name,
            "method": row.pair.method,
            "other_indices": list(row.other_indices),
            "strengths": list(row.strengths),
        }


def register() -> None:
    export_table_register(
        "renders",
        "id:int layer:str index:int technique:str params:json params_hash:str variant:int "
        "image_path:str image_url:str thumbnail_url:str image_sha256:str objective:float "
        "created:str",
        _render_rows,
    )
    export_table_register(
        "dataset_examples",
        "layer:str index:int dataset:str dataset_manifest_sha256:str params_hash:str "
        "negative_source:str which:str rank:int image:int path:str value:float y:int x:int "
        "box:int_list full_path:str",
        _example_rows,
    )
    export_table_register(
        "connections",
        "layer:str index:int direction:str other_layer:str method:str other_indices:int_list "
        "strengths:float_list",
        _connection_rows,
    )
