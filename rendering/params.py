"""Render parameters: defaults per technique, validation, and the hash that identifies them."""

import hashlib
import json
from collections.abc import Mapping
from typing import Any

UNIT_TECHNIQUES = ("channel", "neuron", "negative", "diversity")
LAYER_TECHNIQUES = ("deepdream", "caricature")
# Computed, not optimized: its job targets the later layer and names the earlier one.
WEIGHT_TECHNIQUES = ("connections",)
# Computed from data: a pass over a dataset (its job targets the deepest of its layers) and
# the responses of a layer to synthetic stimuli.
DATA_TECHNIQUES = ("examples", "tuning")

COMMON: dict[str, Any] = {"size": 224, "steps": 512, "seed": 0, "lr": 0.05, "transforms": True}
EXTRA: dict[str, dict[str, Any]] = {
    "diversity": {"diversity": 4, "diversity_weight": 100.0},
    "caricature": {"image_sha256": "", "power": 0.0},  # Lucid's recipe: the plain dot product
}
WEIGHT_PARAMS: dict[str, Any] = {"source": "", "top": 50}
DATA_PARAMS: dict[str, dict[str, Any]] = {
    "examples": {
        "dataset": "",
        "manifest_sha256": "",
        "layers": "",  # comma-separated layer names, all of one model
        "k": 40,
        "crop": 64,
        "size": 224,
    },
    "tuning": {"stimuli": 1, "size": 224},  # bump "stimuli" when the generator changes
}
_LIMITS: dict[str, tuple[float, float]] = {
    "size": (16, 1024),
    "steps": (1, 20000),
    "seed": (0, 2**31 - 1),
    "lr": (1e-6, 10.0),
    "diversity": (2, 64),
    "diversity_weight": (0.0, 1e6),
    "power": (0.0, 10.0),
    "top": (1, 1000),
    "k": (1, 1000),
    "crop": (16, 256),
    "stimuli": (1, 1000),
}


class ParamsError(ValueError):
    """Parameters a render cannot take; the message names the bad key and what it accepts."""


def render_params(technique: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full, validated parameter set of a render: defaults with `overrides` applied."""
    every = (*UNIT_TECHNIQUES, *LAYER_TECHNIQUES, *WEIGHT_TECHNIQUES, *DATA_TECHNIQUES)
    if technique not in every:
        raise ParamsError(f"unknown technique {technique!r}; known techniques: {', '.join(every)}")
    if technique in WEIGHT_TECHNIQUES:
        params = dict(WEIGHT_PARAMS)
    elif technique in DATA_TECHNIQUES:
        params = dict(DATA_PARAMS[technique])
    else:
        params = {**COMMON, **EXTRA.get(technique, {})}
    for key, value in (overrides or {}).items():
        if key not in params:
            raise ParamsError(f"{technique} takes no parameter {key!r}; it takes {sorted(params)}")
        default = params[key]
        try:
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError
                params[key] = value
            elif isinstance(default, int):
                params[key] = int(value)
                if params[key] != float(value):
                    raise TypeError
            elif isinstance(default, float):
                params[key] = float(value)
            else:
                params[key] = str(value)
        except (TypeError, ValueError):
            raise ParamsError(f"{key}={value!r} is not a {type(default).__name__}") from None
        low, high = _LIMITS.get(key, (None, None))
        if low is not None and not low <= params[key] <= high:
            raise ParamsError(f"{key}={value!r} is outside [{low}, {high}]")
    if technique in WEIGHT_TECHNIQUES and not params["source"]:
        raise ParamsError("connections need the name of the source layer (source)")
    if technique == "examples" and not (params["dataset"] and params["layers"]):
        raise ParamsError("dataset examples need a dataset and a list of layers")
    if technique == "caricature" and len(params["image_sha256"]) != 64:
        raise ParamsError("caricature needs the sha256 of its input image (image_sha256)")
    return params


def params_hash(params: Mapping[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
