"""Connections between two layers: the expanded weights of the Circuits thread.

Voss, Cammarata, ..., Olah, "Visualizing Weights" (Distill 2021, in the Circuits thread,
https://distill.pub/2020/circuits/visualizing-weights/) read a network's weights between two
visualized layers A (earlier) and B (later). Where one convolution joins them, its weights are
the connection ("direct weights"). Otherwise they linearize what lies between and report the
linear map from A's units to B's pre-activation ("expanded weights"). We linearize as they
do, and a little further, so that the map is exact (`rendering.engine.linearize`):

- every ReLU is the identity (`F.relu`, `torch.relu`, `Tensor.relu`, in-place variants, and
  `clamp(min=0)`, which is how lucent's RedirectedReLU computes its forward), B's own ReLU
  included, so B's output is its pre-activation;
- max-pooling is average pooling over the same window, and -inf padding (lucent pads before
  its pools) is zero padding;
- local response normalization is the identity;
- batch normalization runs in eval mode, where it is affine.

Kernel convention: `kernels[b, a, i, j]` is the derivative of B channel b's pre-activation at
the centre of its map with respect to A channel a at the A position (i, j) of the kernel's box,
the bounding box of everything the centre unit sees (in A's coordinates, like a convolution
weight and like Lucid's gradient-based `get_expanded_weights`). For one convolution between A
and B this is exactly its weight tensor, no flip. Across a stride-s layer (a pool of stride 2)
the box is in A's finer grid, so nothing is subsampled away. Away from the borders of the maps
every B unit has the same kernels; those are the ones reported (the centre unit of a map large
enough that its border reaches no path).

How it is computed: first one probe forward. Everything before A only shapes A's output, which
is replaced, so it runs on the meta device (shapes, no arithmetic) where the model allows. A
hook on A replaces A's output by a random map of its real size and an all-zero map, whose
response (the biases) is subtracted; a hook on B captures its output and stops the forward.
The probe also records every operation from A on (`linearize.Tape`).

Composed, the usual way: between A and B the linearized network is convolutions, average
pools, paddings, batch norms, concatenations and sums, and `linearize.compose` multiplies
their weights out into one convolution from A to B (a 1x1 bottleneck and the 3x3 convolution
after it compose by one matrix product per tap; a pool is a per-channel filter; a
concatenation stacks its branches' kernels in a common box, and each is laid out into the
result on its own, so the zeros around a small branch are never copied or summed). The
kernels are used only if they reproduce B's response to the random map, at up to 3 x 3 B
units whose kernel lies inside the map (for those no zero padding matters; where A's real map
is too small to hold one, a second forward on a larger random map). A real model is checked,
not trusted to be what the tape says.

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

import contextlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.autograd.function import BackwardCFunction

from rendering.engine.linearize import Linearized, NotComposable, Stack, Tape, compose
from rendering.engine.truncation import frozen_eval, resolve_layer

__all__ = ["Connections", "expanded_weights", "kernel_sign", "top_connections"]

SUPPORT_TOLERANCE = 1e-5  # relative to the largest response: below it a position is unreached
MATCH_TOLERANCE = 1e-4  # relative: two kernels computed on different maps agree
CHUNK_ELEMENTS = 1 << 25  # injected values per forward; bounds memory on big layers
MAX_GROWTH = 8  # times the map may grow before we give up on finding the kernel's support
# Impulses cost one forward of C_A x stride^2 images; the backward a forward and a backward of
# C_B images, about twice as much per image (InceptionV1, CPU): the backward wins below this.
BACKWARD_ADVANTAGE = 0.5
CHECKED_UNITS = 3  # B units per axis at which composed kernels must reproduce B's response


@dataclass
class Connections:
    source: str  # A's module path
    target: str  # B's module path
    kernels: np.ndarray  # float32 (C_B, C_A, kh, kw): B channel b's kernel over A channel a
    # float32 (C_B, C_A): kernel L2 norm, signed by the sign of its sum (the ranking; whether a
    # kernel counts as excitatory, inhibitory or mixed is `kernel_sign`)
    strength: np.ndarray
    method: str  # "direct" (one convolution joins A and B, kernels are its weights) or "expanded"


class _StopForward(BaseException):
    """Ends the forward once B has run; a BaseException so no `except Exception` swallows it."""


Inject = Tensor | Callable[[tuple[int, ...]], Tensor] | None


@dataclass
class _Run:
    """What one hooked forward saw."""

    source_shape: tuple[int, ...] = ()  # A's own output, before any replacement
    injected: Tensor | None = None  # what replaced it
    target_output: Tensor | None = None
    conv_weights: list[Tensor] = field(default_factory=list)
    flat: bool = False  # the target is fully connected, (N, C), seen as (N, C, 1, 1)


@contextmanager
def _hooked(
    model: nn.Module,
    source: str,
    target: str,
    inject: Inject,
    tape: Tape | None,
    meta_before: bool,
) -> Iterator[tuple[_Run, Linearized]]:
    """Hooks on A (optionally replacing its output by `inject`, or by what it returns for A's
    shape) and B, and the linearizing mode (recording on `tape` from A on)."""
    run = _Run()
    mode = Linearized(tape, meta_before=meta_before)

    def on_source(_module: nn.Module, _inputs: object, output: object) -> Tensor | None:
        if run.source_shape:  # a module called twice: A is its first call
            return None
        if not isinstance(output, Tensor) or output.dim() != 4:
            raise ValueError(f"connections need spatial layers; {source!r} is not (N, C, H, W)")
        run.source_shape = tuple(output.shape)
        mode.between = True
        if inject is not None:
            replacement = inject(run.source_shape) if callable(inject) else inject
            run.injected = output = replacement.to(output.dtype)
        if tape is not None:
            tape.start(output)
        return run.injected

    def on_target(_module: nn.Module, _inputs: object, output: object) -> None:
        if not run.source_shape:
            raise ValueError(
                f"source {source!r} must run before target {target!r}; pass the earlier "
                "layer as source"
            )
        if not isinstance(output, Tensor) or output.dim() not in (2, 4):
            raise ValueError(f"connections need (N, C[, H, W]) layers; {target!r} is not")
        # A fully connected target (class logits) is one position: its kernel spans A's map.
        run.flat = output.dim() == 2
        run.target_output = output[:, :, None, None] if run.flat else output
        run.conv_weights = list(mode.conv_weights)
        raise _StopForward

    handles = [
        model.get_submodule(source).register_forward_hook(on_source),
        model.get_submodule(target).register_forward_hook(on_target),
    ]
    try:
        with mode:
            yield run, mode
    finally:
        for handle in handles:
            handle.remove()


def _forward(
    model: nn.Module,
    source: str,
    target: str,
    image: Tensor,
    inject: Inject,
    tape: Tape | None = None,
    *,
    meta_before: bool = False,
) -> _Run:
    with _hooked(model, source, target, inject, tape, meta_before) as (run, _mode):
        try:
            with contextlib.suppress(_StopForward):
                model(image)
        except RuntimeError as error:
            if inject is None or not run.source_shape:
                raise
            raise ValueError(
                f"the path from {source!r} to {target!r} combines {source!r}'s output with "
                "something computed before it (a skip connection?), so its output cannot be "
                f"replaced by a batch of impulses: {error}"
            ) from error
    if run.target_output is None:
        missing = target if run.source_shape else source
        raise ValueError(f"layer {missing!r} is never called in the model's forward")
    if run.injected is not None and run.target_output.shape[0] != run.injected.shape[0]:
        raise ValueError(f"target {target!r} does not depend on source {source!r}")
    return run


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
    return _box(_magnitude(canvas))


def _magnitude(canvas: Tensor) -> Tensor:
    return canvas.abs().nan_to_num(0).amax(dim=(0, 1))


def _box(magnitude: Tensor) -> tuple[slice, slice] | None:
    reached = magnitude > SUPPORT_TOLERANCE * magnitude.max()
    rows = reached.any(dim=1).nonzero().flatten()
    cols = reached.any(dim=0).nonzero().flatten()
    if len(rows) == 0:
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


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
        run = _forward(model, source, target, image, _impulses(part, geometry, size))
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
            run = _forward(model, source, target, image, maps)
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
    box = _box(torch.stack([g.abs().amax(dim=(0, 1)) for g in gradients]).amax(dim=0))
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
        if _agree(torch.einsum("bahw,a->bhw", kernels, mix)[None], reference):
            return kernels
    return None


def _agree(ours: Tensor, reference: Tensor) -> bool:
    if ours.shape != reference.shape:
        return False
    scale = reference.abs().max().clamp(min=1e-30)
    return bool((ours - reference).abs().max() <= MATCH_TOLERANCE * scale)


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
        if reference is not None and larger is not None and _agree(reference, larger):
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
        if measured is not None and _agree(measured, reference):
            return candidate, reference
        candidate = (min(candidate[0] + 1, size[0]), min(candidate[1] + 1, size[1]))
    return size, reference


def _direct(kernels: np.ndarray, conv_weights: list[Tensor]) -> Tensor | None:
    """The weights of the one convolution between A and B, if they are the whole connection."""
    if len(conv_weights) != 1:
        return None
    weight = conv_weights[0].detach()
    if weight.shape != kernels.shape or not _agree(torch.from_numpy(kernels), weight.cpu()):
        return None
    return weight


# A kernel whose positive and negative parts nearly cancel is neither excitatory nor inhibitory:
# "mixed" when |sum| < MIXED_FRACTION * its L1 norm (the sign of the sum alone called 22 % of
# InceptionV1's mixed3a -> mixed3b kernels one or the other though they nearly cancel).
MIXED_FRACTION = 0.25
EXCITATORY, INHIBITORY, MIXED = "excitatory", "inhibitory", "mixed"


def kernel_sign(kernel: np.ndarray) -> str:
    """ "excitatory" (sum > 0), "inhibitory" (sum < 0) or "mixed" (|sum| < 0.25 x L1 norm)."""
    values = np.asarray(kernel, dtype=np.float64)
    total, l1 = float(values.sum()), float(np.abs(values).sum())
    if abs(total) < MIXED_FRACTION * l1 or l1 == 0:
        return MIXED
    return EXCITATORY if total > 0 else INHIBITORY


def _strength(kernels: np.ndarray) -> np.ndarray:
    flat = torch.from_numpy(kernels).flatten(2)  # (C_B, C_A, taps)
    norm, total = _norm_and_sum(flat.flatten(0, 1).T)
    return torch.where(total < 0, -norm, norm).view(flat.shape[:2]).numpy()


@dataclass
class _Probe:
    """One forward with A's output replaced by a random map (image 0) and zeros (image 1)."""

    run: _Run
    tape: Tape  # every operation from A's output on
    random_map: Tensor  # (C_A, H, W), the size of A's real output
    response: Tensor  # (C_B, h, w): B's response to it, biases removed
    meta_before: bool  # whether what runs before A could run on the meta device


def _probe(model: nn.Module, source: str, target: str, image: Tensor) -> _Probe:
    """The probe forward. What runs before A only shapes A's output, which is replaced, so it
    runs on the meta device (shapes, no arithmetic) where the model allows; else on `image`."""

    def inject(shape: tuple[int, ...]) -> Tensor:
        return _random_maps(shape[1:]).to(image.device)

    meta_before = True
    try:
        tape = Tape()
        run = _forward(model, source, target, image, inject, tape, meta_before=True)
    except Exception:  # an operation without a meta kernel, a skip from before A, ...
        tape, meta_before = Tape(), False
        run = _forward(model, source, target, image, inject, tape)
    assert run.injected is not None and run.target_output is not None
    out = run.target_output
    return _Probe(run, tape, run.injected[0], out[0] - out[1], meta_before)


def _random_maps(shape: tuple[int, ...]) -> Tensor:
    """A random map of `shape` (C, H, W) and a zero one; deterministic."""
    random = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    return torch.stack([random, torch.zeros_like(random)])


def _composed(
    model: nn.Module, source: str, target: str, image: Tensor, probe: _Probe
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
        maps = _random_maps((c_a, *size)).to(image.device)
        run = _forward(model, source, target, image, maps, meta_before=probe.meta_before)
        assert run.target_output is not None
        response = run.target_output[0] - run.target_output[1]
        reproduced = _reproduces(stack, stride, origin, maps[0], response)
    if not reproduced:
        return None
    box = _box(_stack_magnitude(stack))
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
        norm, total = _norm_and_sum(piece.reshape((y1 - y0) * (x1 - x0), count * sources))
        norms.append(norm.view(count, sources))
        sums.append(total.view(count, sources))
        start += count
    norm, total = torch.cat(norms), torch.cat(sums)
    return out.numpy(), torch.where(total < 0, -norm, norm).numpy()


def _norm_and_sum(taps: Tensor) -> tuple[Tensor, Tensor]:
    """L2 norm and sum of each column of `taps` (taps, kernels), about a million numbers at a
    time: the squares of late layers' kernels at once would be hundreds of megabytes of fresh
    memory. Float32 sums over a kernel's few hundred taps are within ~1e-7 of float64."""
    norms, sums = taps.new_empty(taps.shape[1]), taps.new_empty(taps.shape[1])
    columns = max(1, CHUNK_ELEMENTS // 32 // max(1, taps.shape[0]))
    for start in range(0, taps.shape[1], columns):
        block = taps[:, start : start + columns]
        norms[start : start + columns] = (block * block).sum(dim=0).sqrt()
        sums[start : start + columns] = block.sum(dim=0)
    return norms, sums


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
    return _agree(torch.cat(expected), observed)


def _measured(model: nn.Module, source: str, target: str, image: Tensor, real: _Run) -> Tensor:
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


def expanded_weights(
    model: nn.Module,
    source: str,
    target: str,
    *,
    input_size: int,
    device: str | torch.device = "cpu",
    preprocess: Callable[[Tensor], Tensor] | None = None,
) -> Connections:
    """Connections from layer `source` (A, earlier) to layer `target` (B, later): the linear
    map from A's output to B's pre-activation, with the linearization of the module docstring.

    `model` is left as found: eval/train flags, requires_grad, hooks. Deterministic.
    """
    source = resolve_layer(model, source)
    target = resolve_layer(model, target)
    if source == target:
        raise ValueError(f"source and target are both {source!r}; pass two different layers")
    image = torch.zeros(1, 3, input_size, input_size, device=device)
    if preprocess is not None:
        image = preprocess(image)
    with frozen_eval(model), torch.no_grad():
        probe = _probe(model, source, target, image)
        composed: tuple[np.ndarray, np.ndarray] | None
        if probe.run.flat:
            array = _fully_connected(model, source, target, image, probe.run)
            composed = array, _strength(array)
        else:
            composed = _composed(model, source, target, image, probe)
        if composed is None:
            measured = _measured(model, source, target, image, probe.run)
            array = np.ascontiguousarray(measured.float().cpu().numpy())
            composed = array, _strength(array)
    kernels, strength = composed
    method = "expanded"
    direct = _direct(kernels, probe.run.conv_weights)
    if direct is not None:  # the model's own weight, copied: never hand out its memory
        kernels, method = direct.float().cpu().numpy().copy(), "direct"
        strength = _strength(kernels)
    return Connections(source, target, kernels, strength, method)


def _fully_connected(
    model: nn.Module, source: str, target: str, image: Tensor, run: _Run
) -> np.ndarray:
    """A fully connected target (class logits): each B unit's kernel spans A's whole map at the
    model's size, and is the gradient of the unit with respect to A's output (the linearized
    path is linear, so the gradient is the map itself): (C_B, C_A, H, W)."""
    assert run.target_output is not None
    channels_b = run.target_output.shape[1]
    with torch.enable_grad():
        zeros = torch.zeros(
            (channels_b, *run.source_shape[1:]), device=image.device, requires_grad=True
        )
        out = _forward(model, source, target, image, zeros).target_output
        assert out is not None
        (grad,) = torch.autograd.grad(out[:, :, 0, 0].diagonal().sum(), zeros)
    return np.ascontiguousarray(grad.float().cpu().numpy())


def _mix(channels: int, device: torch.device) -> Tensor:
    return torch.randn(channels, generator=torch.Generator().manual_seed(0)).to(device)


def top_connections(connections: Connections, *, top: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(incoming, outgoing): for each B channel the A channels with the strongest connections,
    (C_B, top); for each A channel the B channels, (C_A, top). By |strength| descending, ties
    in channel order."""
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    magnitude = np.abs(connections.strength)
    incoming = np.argsort(-magnitude, axis=1, kind="stable")[:, :top]
    outgoing = np.argsort(-magnitude.T, axis=1, kind="stable")[:, :top]
    return incoming, outgoing
