"""What a registry entry is: a model (`ZooEntry`), its layers (`LayerSpec`) and the way images
are prepared for it (`Preprocessing`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rendering.engine.param import COLOR_CORRELATION_SVD_SQRT, ColorCorrelation
from rendering.engine.zoo.classes import ClassNames

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LayerSpec",
    "Preprocessing",
    "UnknownModelError",
    "ZooEntry",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """Maps an RGB image in [0, 1] to the model's input: (x * value_range - mean) / std."""

    value_range: float = 1.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    description: str = "ImageNet mean/std normalization of RGB in [0, 1]"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        return (images * self.value_range - mean) / std

    def as_dict(self) -> dict[str, object]:
        return {
            "value_range": self.value_range,
            "mean": list(self.mean),
            "std": list(self.std),
            "description": self.description,
        }


@dataclass(frozen=True)
class LayerSpec:
    name: str  # the literature's name, used in URLs
    module: str  # dotted path of the module whose output is the layer
    kind: str = "conv"  # conv | block | linear | attention (the last two are not spatial)


@dataclass(frozen=True)
class ZooEntry:
    key: str
    display_name: str
    family: str
    description: str
    build: Callable[[], nn.Module]  # architecture with random-init weights
    weights_url: str
    layers: tuple[LayerSpec, ...]
    input_size: int = 224
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    training_dataset: str = "ImageNet (ILSVRC-2012)"
    licence: str = ""
    citation: str = ""
    # State-dict keys that published files carry but the built model does not (auxiliary heads).
    ignored_key_prefixes: tuple[str, ...] = ()
    # The library's own pretrained loader; None: torch.hub from `weights_url`.
    download: Callable[[bool], dict[str, torch.Tensor]] | None = None
    source: str = "torchvision"  # the library the architecture comes from
    slug: str = ""  # the URL name of a first import; the key when empty
    torchvision_name: str = ""  # so `torchvision:<name>` finds this entry
    # The classifier's output layer (a `layers` name) and the names of its classes, in order.
    class_names_layer: str = ""
    class_names: ClassNames | None = None
    # The architecture revision: bump it whenever `build` computes a different forward pass
    # for the same weights (a fixed constant, a changed layer). A model version is its weights
    # *and* this revision, so a cited version never silently shows another network.
    revision: int = 1
    revision_note: str = ""  # what this revision's forward pass is, where it can be doubted
    # Weights trained here: train(seed, progress) -> training.TrainedWeights (model organisms).
    train: Callable[..., Any] | None = None
    # The renders' colour basis (param.FourierImage): ImageNet's colour statistics, right for
    # models trained on natural images; a model trained on other data may need its own.
    color_correlation: ColorCorrelation = COLOR_CORRELATION_SVD_SQRT

    def __post_init__(self) -> None:
        if not self.slug:
            object.__setattr__(self, "slug", self.key)

    def __str__(self) -> str:
        return self.key


class UnknownModelError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])
