"""Connections composed from the probe's tape, and checked against the network.

Composed, the usual way: between A and B the linearized network is convolutions, average
pools, paddings, batch norms, concatenations and sums, and `compose.compose` multiplies
their weights out into one convolution from A to B (a 1x1 bottleneck and the 3x3 convolution
after it compose by one matrix product per tap; a pool is a per-channel filter; a
concatenation stacks its branches' kernels in a common box, and each is laid out into the
result on its own, so the zeros around a small branch are never copied or summed). The
kernels are used only if they reproduce B's response to the random map, at up to 3 x 3 B
units whose kernel lies inside the map (for those no zero padding matters; where A's real map
is too small to hold one, a second forward on a larger random map). A real model is checked,
not trusted to be what the tape says.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from rendering.engine.compose import compose
from rendering.engine.connections_forward import Probe, hooked_forward, random_maps
from rendering.engine.connections_kernels import kernels_agree, norm_and_sum, support_box
from rendering.engine.conv_map import NotComposable, Stack
from rendering.engine.linearize import Tape

__all__ = ["composed_kernels"]

CHECKED_UNITS = 3  # B units per axis at which composed kernels must reproduce B's response


def composed_kernels(
    model: nn.Module, source: str, target: str, image: Tensor, probe: Probe
) -> tuple[np.ndarray, np.ndarray] | None:
    """(kernels (C_B, C_A, kh, kw), strength) multiplied out from the probe's tape, if B's
    response to a random map reproduces them; None where the tape holds an operation `compose`
    does not know, or the response does not (then the kernels are measured)."""
    c_a = probe.random_map.shape[0]
    assert probe.run.target_output is not None
    try:
        stack, stride, origin = compose(probe.tape, probe.run.target_output, c_a).dense()
    except NotComposable:
        return None
    finally:
        probe.tape = Tape()  # let go of the forward's tensors
    reproduced = _reproduces(stack, stride, origin, probe.random_map, probe.response)
    if reproduced is None:  # A's real map is too small to hold a B unit's whole kernel
        size = tuple(2 * k + 2 * s for k, s in zip(stack.size, stride, strict=True))
        maps = random_maps((c_a, *size)).to(image.device)
        run = hooked_forward(model, source, target, image, maps, meta_before=probe.meta_before)
        assert run.target_output is not None
        response = run.target_output[0] - run.target_output[1]
        reproduced = _reproduces(stack, stride, origin, maps[0], response)
    if not reproduced:
        return None
    box = support_box(_stack_magnitude(stack))
    return None if box is None else _laid_out(stack, box)


def _stack_magnitude(stack: Stack) -> Tensor:
    """The largest |kernel value| at each position of the stack's box, over all channels."""
    magnitude = torch.zeros(stack.size)
    for kernel, (y, x) in stack.parts:
        low, high = kernel.reshape(kernel.shape[0] * kernel.shape[1], -1).aminmax(dim=1)
        part = torch.maximum(high, -low).view(kernel.shape[:2]).float().cpu()
        region = magnitude[y : y + part.shape[0], x : x + part.shape[1]]
        region.copy_(torch.maximum(region, part))
    return magnitude


def _laid_out(stack: Stack, box: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    """(kernels (C_B, C_A, kh, kw) cut to `box`, strength), part by part: the zeros around a
    concatenation's small parts are never copied or summed."""
    (top, bottom), (left, right) = (box[0].start, box[0].stop), (box[1].start, box[1].stop)
    channels = sum(kernel.shape[2] for kernel, _ in stack.parts)
    sources = stack.parts[0][0].shape[3]
    # Zeros written in order (torch.zeros, not np.zeros): the pages of a fresh array faulted in
    # by the transposing copies below, out of order, cost several times the copies themselves.
    out = torch.zeros(channels, sources, bottom - top, right - left)
    norms, sums, start = [], [], 0
    for kernel, (y, x) in stack.parts:
        (rows, cols, count, _) = kernel.shape
        (y0, y1), (x0, x1) = _overlap(y, rows, top, bottom), _overlap(x, cols, left, right)
        piece = kernel[y0 - y : y1 - y, x0 - x : x1 - x].float().cpu()  # (h, w, count, C_A)
        out[start : start + count, :, y0 - top : y1 - top, x0 - left : x1 - left] = piece.permute(
            2, 3, 0, 1
        )
        norm, total = norm_and_sum(piece.reshape((y1 - y0) * (x1 - x0), count * sources))
        norms.append(norm.view(count, sources))
        sums.append(total.view(count, sources))
        start += count
    norm, total = torch.cat(norms), torch.cat(sums)
    return out.numpy(), torch.where(total < 0, -norm, norm).numpy()


def _overlap(start: int, length: int, low: int, high: int) -> tuple[int, int]:
    """The part of [start, start + length) inside [low, high), possibly empty."""
    first = max(start, low)
    return first, max(first, min(start + length, high))


def _reproduces(
    stack: Stack,
    stride: tuple[int, int],
    origin: tuple[int, int],
    random_map: Tensor,
    response: Tensor,
) -> bool | None:
    """Whether `response` (C_B, h, w) of B to `random_map` (C_A, H, W) is the convolution of
    the map with the kernels in `stack`, B unit y reading A from stride y + origin, at B
    units whose kernel lies inside the map (up to `CHECKED_UNITS` per axis, spread over them);
    None where no unit's does.

    Such a unit is exact: every unit on its paths from A has its kernel inside the map too,
    so it lies inside its own map, and no zero padding or partial window reaches it."""
    units = []
    for axis in range(2):
        s, o, k = stride[axis], origin[axis], stack.size[axis]
        size = random_map.shape[1 + axis]
        inside = [y for y in range(response.shape[1 + axis]) if 0 <= s * y + o <= size - k]
        if not inside:
            return None
        picks = np.linspace(0, len(inside) - 1, min(CHECKED_UNITS, len(inside))).round()
        units.append([inside[int(p)] for p in picks])
    (kh, kw), (sy, sx), (oy, ox) = stack.size, stride, origin
    patches = torch.stack(
        [
            random_map[:, sy * y + oy : sy * y + oy + kh, sx * x + ox : sx * x + ox + kw]
            for y in units[0]
            for x in units[1]
        ],
        dim=-1,
    )  # (C_A, kh, kw, units)
    expected = []
    for kernel, (y, x) in stack.parts:
        (rows, cols, count, sources) = kernel.shape
        seen = patches[:, y : y + rows, x : x + cols].permute(1, 2, 0, 3)
        products = torch.bmm(
            kernel.reshape(rows * cols, count, sources), seen.reshape(rows * cols, sources, -1)
        )
        expected.append(products.sum(dim=0))
    observed = response[:, units[0]][:, :, units[1]].reshape(response.shape[0], -1)
    return kernels_agree(torch.cat(expected), observed)
