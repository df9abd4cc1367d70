"""Conversions between the arrays callers hold and the (N, 3, H, W) float batches we render."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ImageInput = np.ndarray | Tensor


def to_batch(images: ImageInput) -> Tensor:
    """A float (N, 3, H, W) batch in [0, 1] on the CPU.

    numpy arrays are channels-last, (N, H, W, 3) or (H, W, 3), as images are stored; tensors
    are channels-first, (N, 3, H, W) or (3, H, W), as torch uses them. uint8 means 0..255,
    anything else is taken to be in [0, 1] already.
    """
    if isinstance(images, np.ndarray):
        batch = torch.from_numpy(np.ascontiguousarray(images))
        if batch.dim() == 3:
            batch = batch[None]
        if batch.dim() != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected a (N, H, W, 3) or (H, W, 3) array, got {images.shape}")
        batch = batch.permute(0, 3, 1, 2)
    elif isinstance(images, Tensor):
        batch = images.detach().cpu()
        if batch.dim() == 3:
            batch = batch[None]
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, H, W) or (3, H, W) tensor, got {images.shape}")
    else:
        raise TypeError(f"expected a numpy array or torch tensor, got {type(images).__name__}")
    if batch.dtype == torch.uint8:
        return batch.float() / 255.0
    return batch.float()


def resize(batch: Tensor, size: int) -> Tensor:
    """Square `size` x `size`; antialiased so that shrinking a photo does not alias."""
    if batch.shape[-2:] == (size, size):
        return batch
    return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)


def to_uint8(batch: Tensor) -> np.ndarray:
    """(N, 3, H, W) floats in [0, 1] to the (N, H, W, 3) uint8 RGB arrays we store."""
    pixels = (batch.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()
