"""Renders and results saved or deleted one at a time (the admin) mark their model's pages as
changed; the services that write in bulk call `model_touch` themselves."""

from typing import Any

from django.db.models.signals import post_delete, post_save

from neurons.models import Unit
from neurons.services import model_touch
from rendering.models import Connection, LayerConnection, Render, TuningCurve, UnitExamples


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


def connect() -> None:
    for signal in (post_save, post_delete):
        signal.connect(_render_changed, sender=Render, dispatch_uid=f"render-{id(signal)}")
        signal.connect(
            _layer_pair_changed, sender=LayerConnection, dispatch_uid=f"pair-{id(signal)}"
        )
        for model in (Connection, UnitExamples, TuningCurve):
            signal.connect(
                _unit_result_changed, sender=model, dispatch_uid=f"{model.__name__}-{id(signal)}"
            )
