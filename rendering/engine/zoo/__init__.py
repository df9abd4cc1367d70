"""The model registry (pure PyTorch): what each model is, how to load it, what its layers are."""

from rendering.engine.zoo.entries import ENTRIES, get_entry
from rendering.engine.zoo.introspect import LayerInfo, inspect_layers
from rendering.engine.zoo.spec import LayerSpec, Preprocessing, UnknownModelError, ZooEntry
from rendering.engine.zoo.weights import (
    LoadedModel,
    WeightsError,
    WeightsSpec,
    load_model,
    state_dict_sha256,
)

__all__ = [
    "ENTRIES",
    "LayerInfo",
    "LayerSpec",
    "LoadedModel",
    "Preprocessing",
    "UnknownModelError",
    "WeightsError",
    "WeightsSpec",
    "ZooEntry",
    "get_entry",
    "inspect_layers",
    "load_model",
    "state_dict_sha256",
]
