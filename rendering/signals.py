"""Renders and results saved or deleted one at a time (the admin) mark their model's pages as
changed; the services that write in bulk call `model_touch` themselves."""

from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from neurons.models import NetworkModel, Unit
from neurons.services import model_touch
from neurons.signals import model_imported
from rendering.models import Connection, LayerConnection, Render, TuningCurve, UnitExamples
from rendering.services import render_jobs_create


def _render_changed(sender: Any, instance: Render, **kwargs: Any) -> None:
    from neurons.models import Layer

    model_id = Layer.objects.filter(pk=instance.layer_id).values_list("model_id", flat=True).first()
    if model_id is not None:
        model_touch(model_id)


def _unit_result_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    model_id = (
        Unit.objects.filter(pk=instance.unit_id).values_list("layer__model_id", flat=True).first()
    )
    if model_id is not None:
        model_touch(model_id)


def _layer_pair_changed(sender: Any, instance: LayerConnection, **kwargs: Any) -> None:
    # Unit pages and the API's units link to the target layer's weight matrix.
    from neurons.models import Layer

    model_id = (
        Layer.objects.filter(pk=instance.target_id).values_list("model_id", flat=True).first()
    )
    if model_id is not None:
        model_touch(model_id)


def _render_after_import(sender: Any, model: NetworkModel, **kwargs: Any) -> None:
    """`RENDER_AFTER_IMPORT`: the layers (names, or "all") rendered right after an import."""
    wanted = settings.RENDER_AFTER_IMPORT
    for layer in model.layers.all():
        if "all" in wanted or layer.name in wanted:
            render_jobs_create(layer=layer, technique=layer.grid_techniques[0])


def connect() -> None:
    model_imported.connect(_render_after_import, dispatch_uid="rendering-after-import")
    for signal in (post_save, post_delete):
        signal.connect(_render_changed, sender=Render, dispatch_uid=f"render-{id(signal)}")
        signal.connect(
            _layer_pair_changed, sender=LayerConnection, dispatch_uid=f"pair-{id(signal)}"
        )
        for model in (Connection, UnitExamples, TuningCurve):
            signal.connect(
                _unit_result_changed, sender=model, dispatch_uid=f"{model.__name__}-{id(signal)}"
            )
