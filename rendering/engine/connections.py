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

How it is computed: one probe forward (`connections_forward`) records every operation from A on;
the kernels are multiplied out from that tape (`connections_composed`) where every operation is
known and the result reproduces the network, and are measured otherwise (`connections_measured`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from rendering.engine.connections_composed import composed_kernels
from rendering.engine.connections_forward import Run, hooked_forward, run_probe
from rendering.engine.connections_kernels import kernels_agree, norm_and_sum
from rendering.engine.connections_measured import measured_kernels
from rendering.engine.truncation import frozen_eval, resolve_layer

__all__ = ["Connections", "expanded_weights", "kernel_sign", "top_connections"]


@dataclass
class Connections:
    source: str  # A's module path
    target: str  # B's module path
    kernels: np.ndarray  # float32 (C_B, C_A, kh, kw): B channel b's kernel over A channel a
    # float32 (C_B, C_A): kernel L2 norm, signed by the sign of its sum (the ranking; whether a
    # kernel counts as excitatory, inhibitory or mixed is `kernel_sign`)
    strength: np.ndarray
    method: str  # "direct" (one convolution joins A and B, kernels are its weights) or "expanded"


def _direct(kernels: np.ndarray, conv_weights: list[Tensor]) -> Tensor | None:
    """The weights of the one convolution between A and B, if they are the whole connection."""
    if len(conv_weights) != 1:
        return None
    weight = conv_weights[0].detach()
    if weight.shape != kernels.shape or not kernels_agree(torch.from_numpy(kernels), weight.cpu()):
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
    norm, total = norm_and_sum(flat.flatten(0, 1).T)
    return torch.where(total < 0, -norm, norm).view(flat.shape[:2]).numpy()


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
        probe = run_probe(model, source, target, image)
        composed: tuple[np.ndarray, np.ndarray] | None
        if probe.run.flat:
            array = _fully_connected(model, source, target, image, probe.run)
            composed = array, _strength(array)
        else:
            composed = composed_kernels(model, source, target, image, probe)
        if composed is None:
            measured = measured_kernels(model, source, target, image, probe.run)
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
    model: nn.Module, source: str, target: str, image: Tensor, run: Run
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
        out = hooked_forward(model, source, target, image, zeros).target_output
        assert out is not None
        (grad,) = torch.autograd.grad(out[:, :, 0, 0].diagonal().sum(), zeros)
    return np.ascontiguousarray(grad.float().cpu().numpy())


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
