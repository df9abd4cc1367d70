"""Connections measured by impulses or by a batched backward, where they cannot be composed.

Measured, where the tape holds an operation `compose` does not know or the check fails: by
impulses (forward) or by a batched backward, whichever is cheaper (`BACKWARD_ADVANTAGE`);
never one gradient per B unit on the full map. Impulses: one batched forward per chunk; A's
output is replaced by a small map holding one impulse per image (channel a, or a random mix
of channels when checking), at s x s phases around the centre, plus an all-zero image.
Translation equivariance turns the response of B's units to an impulse at a fixed A position
into the response of B's centre unit to impulses at all A positions. The map is the smallest
on which the kernels of a random mix of A channels equal those on a larger reference map that
no longer changes as it grows, so zero padding at its border truncates no path. Backward
(cheaper when C_B < C_A s^2 / 2, as across a stride-2 pool): A's output is a batch of zero
maps of that size, and image n gets the gradient of B channel n's centre unit; custom autograd
functions that the mode has made the identity (RedirectedReLU) are bypassed, and the kernels
are used only if they reproduce the random mix's exact kernels from impulses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import BackwardCFunction

from rendering.engine.connections_forward import Run, hooked_forward
from rendering.engine.connections_kernels import CHUNK_ELEMENTS, kernels_agree, support_box

__all__ = ["BACKWARD_ADVANTAGE", "MAX_GROWTH", "measured_kernels"]

MAX_GROWTH = 8  # times the map may grow before we give up on finding the kernel's support
# Impulses cost one forward of C_A x stride^2 images; the backward a forward and a backward of
# C_B images, about twice as much per image (InceptionV1, CPU): the backward wins below this.
BACKWARD_ADVANTAGE = 0.5


@dataclass(frozen=True)
class _Geometry:
    channels: int  # C_A
    stride: tuple[int, int]  # A pixels per B pixel, rows and columns

    @property
    def phases(self) -> list[tuple[int, int]]:
        return [(dy, dx) for dy in range(self.stride[0]) for dx in range(self.stride[1])]


def _impulses(vectors: Tensor, geometry: _Geometry, size: tuple[int, int]) -> Tensor:
    """Image (j, phase) holds vectors[j] at the centre + phase; one zero image last."""
    phases = geometry.phases
    count = vectors.shape[0] * len(phases)
    images = vectors.new_zeros(count + 1, geometry.channels, *size)
    cy, cx = size[0] // 2, size[1] // 2
    for p, (dy, dx) in enumerate(phases):
        images[p : count : len(phases), :, cy + dy, cx + dx] = vectors
    return images


def _centre_gradient(responses: Tensor, geometry: _Geometry, size: tuple[int, int]) -> Tensor:
    """From responses (J, P, C_B, h, w) of B to impulses at A position c + phase, the gradient
    of B's centre unit over A positions: (J, C_B, H, W), NaN where no impulse tells it.

    Equivariance: B[q* + t] sees A[p] as B[q*] sees A[p - s t], so with p = c + phase,
    d B[q*] / d A[c + phase - s t] = d B[q* + t] / d A[c + phase].
    """
    jobs, _, c_b, h, w = responses.shape
    canvas = responses.new_full((jobs, c_b, *size), math.nan)
    (sy, sx), (qy, qx) = geometry.stride, (h // 2, w // 2)
    cy, cx = size[0] // 2, size[1] // 2
    for p, (dy, dx) in enumerate(geometry.phases):
        rows = torch.arange(h)
        cols = torch.arange(w)
        ys = cy + dy - sy * (rows - qy)
        xs = cx + dx - sx * (cols - qx)
        keep_y = (ys >= 0) & (ys < size[0])
        keep_x = (xs >= 0) & (xs < size[1])
        ys, rows = ys[keep_y], rows[keep_y]
        xs, cols = xs[keep_x], cols[keep_x]
        block = responses[:, p][:, :, rows][:, :, :, cols]
        canvas[:, :, ys[:, None], xs[None, :]] = block
    return canvas


def _support(canvas: Tensor) -> tuple[slice, slice] | None:
    """The box of A positions the centre unit sees (None if it sees nothing). On a map too
    small for the kernel the box is cut off; `_smallest_exact_size` compares against a larger
    map to rule that out."""
    return support_box(_magnitude(canvas))


def _magnitude(canvas: Tensor) -> Tensor:
    return canvas.abs().nan_to_num(0).amax(dim=(0, 1))


@dataclass
class _Measured:
    kernels: Tensor | None  # (J, C_B, kh, kw), None when the map was too small
    conv_weights: list[Tensor]


def _measure(
    model: nn.Module,
    source: str,
    target: str,
    image: Tensor,
    vectors: Tensor,
    geometry: _Geometry,
    size: tuple[int, int],
) -> _Measured:
    """Kernels of B's centre unit over the mixes of A channels in `vectors`, on an A map of
    `size`, in chunks that bound memory."""
    per_image = geometry.channels * size[0] * size[1] * len(geometry.phases)
    chunk = max(1, CHUNK_ELEMENTS // per_image)
    gradients, weights = [], []
    for start in range(0, vectors.shape[0], chunk):
        part = vectors[start : start + chunk]
        run = hooked_forward(model, source, target, image, _impulses(part, geometry, size))
        assert run.target_output is not None
        out = run.target_output
        responses = (out[:-1] - out[-1:]).reshape(
            part.shape[0], len(geometry.phases), -1, *out.shape[2:]
        )
        gradients.append(_centre_gradient(responses, geometry, size))
        weights = run.conv_weights
    canvas = torch.cat(gradients)
    box = _support(canvas)
    kernels = None if box is None else canvas[:, :, box[0], box[1]]
    return _Measured(kernels, weights)


@contextmanager
def _identity_custom_functions(model: nn.Module) -> Iterator[None]:
    """Modules whose output comes from a custom autograd function but equals their input (how
    lucent's RedirectedReLU looks once the mode makes its clamp the identity) return their
    input instead, so a backward sees the identity, not the function's own backward."""

    def bypass(_module: nn.Module, inputs: tuple[Any, ...], output: object) -> Tensor | None:
        if not isinstance(output, Tensor) or not isinstance(output.grad_fn, BackwardCFunction):
            return None
        tensors = [x for x in inputs if isinstance(x, Tensor)]
        if len(tensors) != 1 or tensors[0].shape != output.shape:
            return None
        return tensors[0] if torch.equal(tensors[0], output) else None

    handles = [module.register_forward_hook(bypass) for module in model.modules()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _measure_backward(
    model: nn.Module,
    source: str,
    target: str,
    image: Tensor,
    geometry: _Geometry,
    size: tuple[int, int],
    c_b: int,
) -> Tensor | None:
    """Kernels (C_B, C_A, kh, kw) of B's centre unit on an A map of `size`, by backward: A's
    output is a batch of zero maps, image n's gradient is that of B channel n's centre unit
    (one backward per chunk of B channels; on CPU this beats a vmapped backward severalfold).
    None when B's centre sees nothing of A."""
    chunk = max(1, CHUNK_ELEMENTS // (geometry.channels * size[0] * size[1]))
    gradients = []
    with torch.enable_grad(), _identity_custom_functions(model):
        for start in range(0, c_b, chunk):
            channels = torch.arange(start, min(start + chunk, c_b), device=image.device)
            maps = image.new_zeros(len(channels), geometry.channels, *size, requires_grad=True)
            run = hooked_forward(model, source, target, image, maps)
            assert run.target_output is not None
            out = run.target_output
            centre = out[
                torch.arange(len(channels)), channels, out.shape[2] // 2, out.shape[3] // 2
            ]
            if not centre.requires_grad:
                return None
            (gradient,) = torch.autograd.grad(centre.sum(), maps)
            gradients.append(gradient)
    # Crop chunk by chunk: the full canvas and its temporaries would be gigabytes on late layers.
    box = support_box(torch.stack([g.abs().amax(dim=(0, 1)) for g in gradients]).amax(dim=0))
    return None if box is None else torch.cat([g[:, :, box[0], box[1]] for g in gradients])


def _exact_backward(
    model: nn.Module,
    source: str,
    target: str,
    image: Tensor,
    geometry: _Geometry,
    size: tuple[int, int],
    reference: Tensor,
) -> Tensor | None:
    """`_measure_backward`'s kernels where they reproduce the exact kernels of the random mix
    (`reference`, from impulses), on `size` or a map up to two B positions larger; else None.

    The two methods see a small map's zero border differently (the backward looks at B's centre
    unit only), and a custom autograd function may not be the identity we assume."""
    mix = _mix(geometry.channels, image.device)
    (sy, sx) = geometry.stride
    for grow in range(3):
        grown = (size[0] + 2 * grow * sy, size[1] + 2 * grow * sx)
        kernels = _measure_backward(
            model, source, target, image, geometry, grown, reference.shape[1]
        )
        if kernels is None:
            return None
        if kernels_agree(torch.einsum("bahw,a->bhw", kernels, mix)[None], reference):
            return kernels
    return None


def _smallest_exact_size(
    model: nn.Module,
    source: str,
    target: str,
    image: Tensor,
    geometry: _Geometry,
    start: tuple[int, int],
) -> tuple[tuple[int, int], Tensor]:
    """The smallest A map on which the kernels of a random mix of A channels are exact, and
    those exact kernels (1, C_B, kh, kw).

    Exact means: equal to those on a reference map that itself no longer changes when it
    grows by one B position on every side (so zero padding at its border cuts no path).
    """
    mix = _mix(geometry.channels, image.device)[None]
    (sy, sx) = geometry.stride

    def kernels(size: tuple[int, int]) -> Tensor | None:
        return _measure(model, source, target, image, mix, geometry, size).kernels

    size = start
    reference = kernels(size)
    for _ in range(MAX_GROWTH):
        grown = (size[0] + 2 * sy, size[1] + 2 * sx)
        larger = kernels(grown)
        if reference is not None and larger is not None and kernels_agree(reference, larger):
            break
        size, reference = grown, larger
    else:
        raise ValueError(
            f"the connections from {source!r} to {target!r} keep changing as the map grows"
        )
    assert reference is not None
    # The map must at least hold the kernel; grow from there one pixel at a time.
    candidate = (min(reference.shape[2], size[0]), min(reference.shape[3], size[1]))
    while candidate != size:
        measured = kernels(candidate)
        if measured is not None and kernels_agree(measured, reference):
            return candidate, reference
        candidate = (min(candidate[0] + 1, size[0]), min(candidate[1] + 1, size[1]))
    return size, reference


def _mix(channels: int, device: torch.device) -> Tensor:
    return torch.randn(channels, generator=torch.Generator().manual_seed(0)).to(device)


def measured_kernels(
    model: nn.Module, source: str, target: str, image: Tensor, real: Run
) -> Tensor:
    """Kernels (C_B, C_A, kh, kw) measured by impulses or by a batched backward, on a map grown
    until they no longer change; `real` is a forward on A's real map size."""
    assert real.target_output is not None
    (_, c_a, h_a, w_a), (h_b, w_b) = real.source_shape, real.target_output.shape[2:]
    stride = (max(1, round(h_a / h_b)), max(1, round(w_a / w_b)))
    geometry = _Geometry(c_a, stride)
    # Start from the real map: the kernel of most layer pairs fits in it.
    start = (max(h_a, 2 * stride[0] + 1), max(w_a, 2 * stride[1] + 1))
    size, reference = _smallest_exact_size(model, source, target, image, geometry, start)
    kernels = None
    if real.target_output.shape[1] < BACKWARD_ADVANTAGE * c_a * len(geometry.phases):
        kernels = _exact_backward(model, source, target, image, geometry, size, reference)
    if kernels is None:
        eye = torch.eye(c_a, device=image.device)
        measured = _measure(model, source, target, image, eye, geometry, size)
        if measured.kernels is None:
            raise ValueError(f"target {target!r} does not depend on source {source!r}")
        kernels = measured.kernels.transpose(0, 1)  # (C_B, C_A, kh, kw)
    return kernels
