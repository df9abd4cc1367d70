"""Builders and weight downloads for models that come from timm, open_clip and torchvision.

Each builder returns the architecture with random-init weights; each download goes through the
library's own pretrained-weights code (timm's and open_clip's Hugging Face / URL loaders,
torch.hub for plain URLs) and returns a state dict for the module the builder makes.
"""

from collections.abc import Callable

import torch
from torch import nn

StateDict = dict[str, torch.Tensor]


def torchvision_builder(name: str, **kwargs: object) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        model = torchvision.models.get_model(name, weights=None, **kwargs)
        for aux in ("aux1", "aux2", "AuxLogits"):  # auxiliary training heads are not studied
            if getattr(model, aux, None) is not None:
                setattr(model, aux, None)
        if hasattr(model, "aux_logits"):
            model.aux_logits = False
        return model

    return build


def timm_builder(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)

    return build


def timm_download(name: str) -> Callable[[bool], StateDict]:
    """timm's own loader (Hugging Face hub `timm/<name>`), cached in its usual folder."""

    def download(progress: bool) -> StateDict:
        import timm

        return timm.create_model(name, pretrained=True).state_dict()

    return download


def clip_visual_builder(name: str) -> Callable[[], nn.Module]:
    """The image tower of an open_clip model (the text tower is built, then dropped)."""

    def build() -> nn.Module:
        import open_clip

        return open_clip.create_model(name, pretrained=None).visual

    return build


def clip_visual_download(name: str, tag: str) -> Callable[[bool], StateDict]:
    def download(progress: bool) -> StateDict:
        import open_clip

        model = open_clip.create_model(name, pretrained=tag, require_pretrained=True)
        return model.visual.state_dict()

    return download


def checkpoint_state_dict(loaded: object) -> object:
    """The state dict inside a training checkpoint: `{"state_dict": …}` unwrapped and
    DataParallel's `module.` segments removed (the Places365 files have both)."""
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if isinstance(loaded, dict) and any(isinstance(k, str) and "module." in k for k in loaded):
        loaded = {
            k.replace("module.", "") if isinstance(k, str) else k: v for k, v in loaded.items()
        }
    return loaded
