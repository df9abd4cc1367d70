"""Edits made one row at a time (the admin, the API) mark the model's pages as changed.

Services that write in bulk call `model_touch` themselves: bulk writes send no signals.
"""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal

from neurons.models import Layer, NetworkModel, Unit
from neurons.services import model_touch

# Sent by the import task once a model version is imported (`model`: the NetworkModel); apps
# that build on the catalogue connect here instead of the catalogue calling them.
model_imported = Signal()


def _unit_changed(sender: Any, instance: Unit, **kwargs: Any) -> None:
    model_id = Layer.objects.filter(pk=instance.layer_id).values_list("model_id", flat=True).first()
    if model_id is not None:
        model_touch(model_id)


def _layer_changed(sender: Any, instance: Layer, **kwargs: Any) -> None:
    model_touch(instance.model_id)


def _model_changed(sender: Any, instance: NetworkModel, **kwargs: Any) -> None:
    model_touch(instance.pk)


def connect() -> None:
    for signal in (post_save, post_delete):
        signal.connect(_unit_changed, sender=Unit, dispatch_uid=f"unit-{id(signal)}")
        signal.connect(_layer_changed, sender=Layer, dispatch_uid=f"layer-{id(signal)}")
    post_save.connect(_model_changed, sender=NetworkModel, dispatch_uid="model-saved")
