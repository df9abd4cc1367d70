"""Objectives as one vectorized expression over the batch.

Every function maps a layer's activations to one value per image, the quantity that image
maximizes; the loss is minus their sum. Because image b only enters term b (diversity: only
its own unit's group), one optimization over the batch equals one per unit, without a Python
closure per unit as Lucent builds them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Lucid's diversity notebook weights the penalty by 1e2 against a channel objective.
DEFAULT_DIVERSITY_WEIGHT = 100.0
# Lucid's caricature recipe floors the cosine so that early, unaligned steps still get signal.
CARICATURE_COSSIM_FLOOR = 0.1


def as_spatial(acts: Tensor) -> Tensor:
    """(N, C) outputs of linear layers become (N, C, 1, 1): one position, same code paths."""
    if acts.dim() == 2:
        return acts[:, :, None, None]
    if acts.dim() != 4:
        raise ValueError(f"expected layer output of shape (N, C) or (N, C, H, W), got {acts.shape}")
    return acts


def channel(acts: Tensor, units: Tensor) -> Tensor:
    """Mean activation of channel units[b] over all positions of image b."""
    acts = as_spatial(acts)
    picked = acts[torch.arange(acts.shape[0], device=acts.device), units]
    return picked.float().mean(dim=(1, 2))


def neuron(acts: Tensor, units: Tensor) -> Tensor:
    """Activation of channel units[b] at the spatial centre (bottom-right of the centre 2x2)."""
    acts = as_spatial(acts)
    _, _, height, width = acts.shape
    rows = torch.arange(acts.shape[0], device=acts.device)
    return acts[rows, units, height // 2, width // 2].float()


def negative(acts: Tensor, units: Tensor) -> Tensor:
    """Minus the channel objective: images that the unit responds to least."""
    return -channel(acts, units)


def gram_similarity(acts: Tensor, group: int) -> Tensor:
    """Cosine similarity of every image's channel Gram matrix to each other in its group.

    Images are grouped as consecutive runs of `group`; returns (N // group, group, group).
    """
    acts = as_spatial(acts).float()
    batch, chans = acts.shape[:2]
    flat = acts.reshape(batch, chans, -1)
    grams = flat @ flat.transpose(1, 2)
    grams = F.normalize(grams.reshape(batch, -1), dim=1, eps=1e-10)
    grams = grams.reshape(batch // group, group, -1)
    return grams @ grams.transpose(1, 2)


def diversity(acts: Tensor, units: Tensor, group: int, weight: float) -> Tensor:
    """Channel objective minus a penalty on style (Gram) similarity to the image's siblings.

    Lucid's `objectives.diversity` for one unit: mean over the group of the channel objective
    minus weight * sum over ordered pairs i != j of cos(G_i, G_j) / group. Term i here is
    act_i - weight * sum_{j != i} cos(G_i, G_j), so the mean over a group is exactly Lucid's.
    """
    if acts.shape[0] % group:
        raise ValueError(f"batch of {acts.shape[0]} is not whole groups of {group}")
    sims = gram_similarity(acts, group)
    others = sims.sum(dim=2) - torch.diagonal(sims, dim1=1, dim2=2)
    return channel(acts, units) - weight * others.reshape(-1)


def deepdream(acts: Tensor) -> Tensor:
    """Mean squared activation of the whole layer, per image (Mordvintsev et al., 2015)."""
    acts = as_spatial(acts).float()
    return acts.pow(2).mean(dim=(1, 2, 3))


def caricature(acts: Tensor, target: Tensor, power: float = 0.0) -> Tensor:
    """dot(act, target) * max(dot(act, target) / |act|, 0.1) ** power, per image.

    Lucid's caricature recipe (lucid/recipes/caricature.py, `dot_compare`), term for term:
    `acts` are the optimized image's activations, `target` the input image's; the "cosine"
    divides the dot product by the norm of the *optimized* image's activations only (it is the
    target's length along the image's direction, not a true cosine), floored at 0.1. Lucid's
    default power is 0: the plain dot product. A higher power favours images whose activation
    direction follows the target's over ones that are merely large; the power used is recorded
    with every render.
    """
    acts = as_spatial(acts).float().flatten(1)
    target = as_spatial(target).float().flatten(1)
    dot = (acts * target).sum(dim=1)
    cossim = dot / (acts.norm(dim=1) + 1e-6)
    return dot * cossim.clamp(min=CARICATURE_COSSIM_FLOOR) ** power
