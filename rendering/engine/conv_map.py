"""A tensor computed from layer A as one convolution of A (`ConvMap`), and its algebra.

Convolutions, average pools, paddings, per-channel scalings, concatenations and sums of such
tensors are again such tensors; `ConvMap.dense` gives the kernels over A itself, a
concatenation's as a `Stack` of parts whose zero-padded kernel need not be built. Anything
else raises `NotComposable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

__all__ = ["ConvMap", "NotComposable", "Pair", "Stack", "concatenated", "summed"]

Pair = tuple[int, int]


class NotComposable(Exception):
    """The path from A to B holds an operation `compose` does not know."""


@dataclass(frozen=True, eq=False)
class _Prefix:
    """A per-channel filter of A: Z[a, z] = sum_l filters[l, a] A[a, stride z + origin + l]."""

    filters: Tensor  # (fh, fw, C_A or 1)
    stride: Pair
    origin: Pair


@dataclass(frozen=True, eq=False)
class Stack:
    """Kernels stacked along output channels, each in its own place of a common box, spatial
    axes first; a concatenation whose zero-padded kernel need not be built."""

    parts: tuple[tuple[Tensor, Pair], ...]  # (kernel (kh, kw, C_i, C_A), its offset in the box)
    size: Pair

    def solid(self) -> Tensor:
        """The stacked kernel (kh, kw, C, C_A), zero outside each part."""
        first = self.parts[0][0]
        channels = sum(kernel.shape[2] for kernel, _ in self.parts)
        out = first.new_zeros(*self.size, channels, first.shape[3])
        start = 0
        for kernel, (y, x) in self.parts:
            (rows, cols, count) = kernel.shape[:3]
            out[y : y + rows, x : x + cols, start : start + count] = kernel
            start += count
        return out


@dataclass(frozen=True, eq=False)
class ConvMap:
    """A tensor T computed from A, as a convolution of A (exact away from the maps' borders):
    T[c, y] = sum over a, i of kernel[i, c, a] Z[a, stride y + origin + i], per spatial axis,
    where Z is A through `prefix` (None: Z = A). `kernel` None is the identity, T[c] = Z[c].

    Kernels are stored spatial axes first, (kh, kw, C, C_A), so that shifting and adding them
    moves whole (C, C_A) blocks. Per-channel filters right after A (the pools that open a mixed
    layer) stay in `prefix`, so the convolutions after them compose on small kernels; `folded`
    multiplies them in.
    """

    channels: int  # C of T
    sources: int  # C_A
    dtype: torch.dtype
    device: torch.device
    kernel: Tensor | Stack | None = None  # (kh, kw, channels, sources)
    stride: Pair = (1, 1)
    origin: Pair = (0, 0)
    prefix: _Prefix | None = None

    def conv(
        self, weight: Tensor, stride: Pair, padding: Pair, dilation: Pair, groups: int
    ) -> ConvMap:
        if isinstance(self.kernel, Stack):
            return self._solid().conv(weight, stride, padding, dilation, groups)
        weight = _ungrouped(weight.detach().to(self.dtype), groups)
        if weight.shape[1] != self.channels:
            raise NotComposable(
                f"a convolution expects {weight.shape[1]} channels, not {self.channels}"
            )
        spacing = _mul(self.stride, dilation)
        if self.kernel is None:
            kernel = _dilated(weight, spacing)
        else:
            kernel = _conv_of_kernels(weight, spacing, self.kernel)
        return replace(
            self,
            channels=weight.shape[0],
            kernel=kernel,
            stride=_mul(self.stride, stride),
            origin=_sub(self.origin, _mul(self.stride, padding)),
        )

    def depthwise(self, filters: Tensor, stride: Pair, padding: Pair) -> ConvMap:
        """T'[c, y] = sum_j filters[j, c] T[c, stride y - padding + j]; filters (u, v, C or 1)."""
        if isinstance(self.kernel, Stack):
            return self._solid().depthwise(filters, stride, padding)
        filters = filters.to(self.dtype)
        if self.kernel is None:
            prefix = self._prefix_with_identity()
            return replace(
                self,
                stride=(1, 1),
                origin=(0, 0),
                prefix=_Prefix(
                    _spread(prefix.filters, (1, 1), filters, prefix.stride),
                    _mul(prefix.stride, stride),
                    _sub(prefix.origin, _mul(prefix.stride, padding)),
                ),
            )
        return replace(
            self,
            kernel=_spread(self.kernel, (1, 1), filters[..., None], self.stride),
            stride=_mul(self.stride, stride),
            origin=_sub(self.origin, _mul(self.stride, padding)),
        )

    def scaled(self, factor: Tensor | float) -> ConvMap:
        if not isinstance(factor, Tensor):
            factor = torch.full((1,), float(factor), dtype=self.dtype, device=self.device)
        return self.depthwise(factor.reshape(1, 1, -1), (1, 1), (0, 0))

    def padded(self, top: int, left: int) -> ConvMap:
        return replace(self, origin=_sub(self.origin, _mul(self.stride, (top, left))))

    def folded(self) -> ConvMap:
        """The same map with `prefix` multiplied into `kernel`."""
        if self.prefix is None:
            return self
        prefix = self.prefix
        return replace(
            self,
            kernel=_spread(self._dense_kernel(), prefix.stride, prefix.filters, (1, 1)),
            stride=_mul(prefix.stride, self.stride),
            origin=_add(prefix.origin, _mul(prefix.stride, self.origin)),
            prefix=None,
        )

    def dense(self) -> tuple[Stack, Pair, Pair]:
        """(kernels of T over A itself, stride, origin), a concatenation left in parts."""
        folded = self.folded()
        if isinstance(folded.kernel, Stack):
            return folded.kernel, folded.stride, folded.origin
        kernel = folded._dense_kernel()
        return (
            Stack(((kernel, (0, 0)),), (kernel.shape[0], kernel.shape[1])),
            folded.stride,
            folded.origin,
        )

    def _solid(self) -> ConvMap:
        return replace(self, kernel=self._dense_kernel())

    def _dense_kernel(self) -> Tensor:
        if isinstance(self.kernel, Stack):
            return self.kernel.solid()
        if self.kernel is not None:
            return self.kernel
        return torch.eye(self.sources, dtype=self.dtype, device=self.device)[None, None]

    def _prefix_with_identity(self) -> _Prefix:
        """The prefix that, with an identity kernel of stride 1 and origin 0, is this map."""
        prefix = self.prefix or _Prefix(
            torch.ones(1, 1, 1, dtype=self.dtype, device=self.device), (1, 1), (0, 0)
        )
        return _Prefix(
            prefix.filters,
            _mul(prefix.stride, self.stride),
            _add(prefix.origin, _mul(prefix.stride, self.origin)),
        )


def _mul(a: Pair, b: Pair) -> Pair:
    return a[0] * b[0], a[1] * b[1]


def _add(a: Pair, b: Pair) -> Pair:
    return a[0] + b[0], a[1] + b[1]


def _sub(a: Pair, b: Pair) -> Pair:
    return a[0] - b[0], a[1] - b[1]


def _ungrouped(weight: Tensor, groups: int) -> Tensor:
    """A grouped convolution's weight as the block-diagonal weight of an ungrouped one."""
    if groups == 1:
        return weight
    out_channels, per_group = weight.shape[:2]
    full = weight.new_zeros(out_channels, per_group * groups, *weight.shape[2:])
    rows = out_channels // groups
    for g in range(groups):
        full[g * rows : (g + 1) * rows, g * per_group : (g + 1) * per_group] = weight[
            g * rows : (g + 1) * rows
        ]
    return full


def _dilated(weight: Tensor, spacing: Pair) -> Tensor:
    """Convolution weight (O, C, u, v) as a kernel (kh, kw, O, C) with its taps `spacing` apart;
    a copy, never the model's own memory."""
    (o, c, u, v), (sy, sx) = weight.shape, spacing
    out = weight.new_zeros(sy * (u - 1) + 1, sx * (v - 1) + 1, o, c)
    out[::sy, ::sx] = weight.permute(2, 3, 0, 1)
    return out


def _spread(x: Tensor, x_step: Pair, taps: Tensor, tap_step: Pair) -> Tensor:
    """out[x_step i + tap_step j] = sum of x[i] taps[j] (spatial axes first, the others
    broadcast): the convolution of two filters, each with its own spacing."""
    if taps.shape[0] * taps.shape[1] > x.shape[0] * x.shape[1]:
        x, x_step, taps, tap_step = taps, tap_step, x, x_step
    (h, w), (u, v) = x.shape[:2], taps.shape[:2]
    rest = torch.broadcast_shapes(x.shape[2:], taps.shape[2:])
    x = x.reshape(h, w, *[1] * (len(rest) + 2 - x.dim()), *x.shape[2:])
    height = x_step[0] * (h - 1) + tap_step[0] * (u - 1) + 1
    width = x_step[1] * (w - 1) + tap_step[1] * (v - 1) + 1
    if (u, v) == (1, 1) and x_step == (1, 1):
        return x * taps[0, 0]  # a per-channel scaling (batch norm): one pass
    out = x.new_zeros(height, width, *rest)
    rows, cols = x_step[0] * (h - 1) + 1, x_step[1] * (w - 1) + 1
    # Pools filter every channel alike: then each tap is a number, one fused add.
    numbers = taps.flatten().tolist() if taps[0, 0].numel() == 1 else None
    for j in range(u):
        for k in range(v):
            y0, x0 = tap_step[0] * j, tap_step[1] * k
            block = out[y0 : y0 + rows : x_step[0], x0 : x0 + cols : x_step[1]]
            if numbers is None:
                block += x * taps[j, k]
            elif numbers[j * v + k] != 0:
                block.add_(x, alpha=numbers[j * v + k])
    return out


def _conv_of_kernels(weight: Tensor, spacing: Pair, kernel: Tensor) -> Tensor:
    """out[spacing j + i, o, a] = sum_c weight[o, c, j] kernel[i, c, a]: a convolution after
    the map `kernel`, one batch of matrix products per tap of whichever of the two has fewer."""
    (o, c, u, v), (kh, kw, _, a) = weight.shape, kernel.shape
    (sy, sx) = spacing
    # Contiguous taps: a product with a strided or permuted view is many times slower.
    taps = weight.permute(2, 3, 0, 1).contiguous()  # (u, v, O, C)
    out = kernel.new_zeros(sy * (u - 1) + kh, sx * (v - 1) + kw, o, a)
    if u * v <= kh * kw:
        for j in range(u):
            for k in range(v):
                out[sy * j : sy * j + kh, sx * k : sx * k + kw] += taps[j, k] @ kernel
    else:
        rows, cols = sy * (u - 1) + 1, sx * (v - 1) + 1
        flat = taps.view(u * v * o, c)
        for i in range(kh):
            for m in range(kw):
                product = (flat @ kernel[i, m]).view(u, v, o, a)
                out[i : i + rows : sy, m : m + cols : sx] += product
    return out


def _aligned(maps: Sequence[ConvMap]) -> tuple[ConvMap, Pair, list[tuple[Tensor, Pair]]]:
    """The maps' dense kernels on one prefix, stride and origin: (a map with the common prefix,
    stride and origin and no kernel, the common box's size, each kernel with its offset in it)."""
    first = maps[0]
    if not all(m.prefix is first.prefix and m.stride == first.stride for m in maps):
        maps = [m.folded() for m in maps]
        first = maps[0]
    if any(m.stride != first.stride or m.sources != first.sources for m in maps):
        raise NotComposable("tensors on different grids are combined")
    kernels = [m._dense_kernel() for m in maps]
    low = (min(m.origin[0] for m in maps), min(m.origin[1] for m in maps))
    high = (
        max(m.origin[0] + k.shape[0] for m, k in zip(maps, kernels, strict=True)),
        max(m.origin[1] + k.shape[1] for m, k in zip(maps, kernels, strict=True)),
    )
    placed = [(k, _sub(m.origin, low)) for m, k in zip(maps, kernels, strict=True)]
    return replace(first, kernel=None, origin=low), _sub(high, low), placed


def concatenated(maps: Sequence[ConvMap]) -> ConvMap:
    common, size, placed = _aligned(maps)
    channels = sum(m.channels for m in maps)
    return replace(common, channels=channels, kernel=Stack(tuple(placed), size))


def summed(maps: Sequence[ConvMap], signs: Sequence[float]) -> ConvMap:
    if any(m.channels != maps[0].channels for m in maps):
        raise NotComposable("tensors of different channel counts are added")
    common, (height, width), placed = _aligned(maps)
    out = placed[0][0].new_zeros(height, width, common.channels, common.sources)
    for (kernel, (y, x)), sign in zip(placed, signs, strict=True):
        out[y : y + kernel.shape[0], x : x + kernel.shape[1]] += sign * kernel
    return replace(common, kernel=out)
