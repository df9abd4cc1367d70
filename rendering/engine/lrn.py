"""Local response normalization, computed faster on the CPU than torch's own.

`F.local_response_norm` sums squares over the channel window with `avg_pool3d` on a 5-D
view, which on the CPU costs about as much as the convolutions around it (InceptionV1 has two
LRN layers on its largest feature maps). We compute the same
y_c = x_c / (k + alpha / size * S_c)^beta, with S_c the sum of x^2 over c's channel window,
by adding shifted channel slices in place, and write the backward by hand so that autograd
does not allocate a full-size zero tensor per slice:

    dL/dx_j = g_j D_j^-beta - (2 alpha beta / size) x_j sum_{c : j in window(c)} g_c x_c D_c^(-beta-1)

where D_c = k + alpha / size * S_c, and the sum runs over the mirrored window. The traced
graph's LRN calls are swapped for this one; truncation checks the traced forward and gradient
against the eager model before trusting it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx
from torch.autograd.function import once_differentiable


def _window_sum(values: Tensor, before: int, after: int) -> Tensor:
    """Sum over channels c - before .. c + after (zeros beyond the edges), for every c."""
    channels = values.shape[1]
    padded = F.pad(values, (0, 0, 0, 0, before, after))
    total = padded[:, :channels].clone()
    for offset in range(1, before + after + 1):
        total.add_(padded[:, offset : offset + channels])
    return total


class _LocalResponseNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, size: int, alpha: float, beta: float, k: float) -> Tensor:
        # Torch pads size // 2 channels before and (size - 1) // 2 after.
        before, after = size // 2, (size - 1) // 2
        denom = _window_sum(x * x, before, after).mul_(alpha / size).add_(k)
        ctx.save_for_backward(x, denom)
        ctx.constants = (size, alpha, beta, before, after)
        return x * denom.pow(-beta)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, denom = ctx.saved_tensors
        size, alpha, beta, before, after = ctx.constants
        scale = denom.pow(-beta)
        spread = grad * x * scale / denom
        # The transpose of a window (before, after) is the window (after, before).
        mirrored = _window_sum(spread, after, before)
        grad_x = grad * scale - (2 * alpha * beta / size) * x * mirrored
        return grad_x, None, None, None, None


def local_response_norm(
    input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """Same signature and result as `torch.nn.functional.local_response_norm`."""
    if input.dim() != 4 or size < 1:
        return F.local_response_norm(input, size, alpha=alpha, beta=beta, k=k)
    result: Tensor = _LocalResponseNorm.apply(input, size, alpha, beta, k)
    return result


def speed_up_lrn(graph_module: fx.GraphModule) -> int:
    """Point every traced `F.local_response_norm` call at ours; returns how many."""
    swapped = 0
    for node in graph_module.graph.nodes:
        if node.op == "call_function" and node.target is F.local_response_norm:
            node.target = local_response_norm
            swapped += 1
    if swapped:
        graph_module.recompile()
    return swapped
