"""Pieces shared by the analyses that run a network with its non-linear steps made linear."""

from typing import Any

import torch.nn.functional as F
from torch import Tensor


def avg_pool_like_max(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:
    """Average pooling over the window a max-pool call would use (same signature)."""
    if dilation not in (1, (1, 1)):
        raise ValueError("dilated max-pooling cannot be linearized here")
    if return_indices:
        raise ValueError("max-pooling that returns indices cannot be linearized here")
    return F.avg_pool2d(input, kernel_size, stride or kernel_size, padding, ceil_mode, True)
