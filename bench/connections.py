"""Benchmark: expanded weights for every consecutive layer pair of InceptionV1, ours against
the naive way, in one run on the same machine.

Naive: one forward of the same linearized network (ReLU and LRN as identity, max-pooling as
average pooling, -inf padding as 0) at the model's input size, then one backward per B
channel, from its centre pre-activation to A's output (retain_graph), cropped to the kernel.
The naive time is extrapolated from a sample of B channels per pair (printed), and the
sampled gradients are compared with our kernels (max relative difference, printed).

    .venv/bin/python bench/connections.py              # random-init InceptionV1, seed 0
    .venv/bin/python bench/connections.py --sample 8
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lucent.modelzoo import inceptionv1  # noqa: E402

from rendering.engine.connections import expanded_weights  # noqa: E402
from rendering.engine.linearize import Linearized  # noqa: E402

LAYERS = [
    "conv2d0",
    "conv2d1",
    "conv2d2",
    "mixed3a",
    "mixed3b",
    "mixed4a",
    "mixed4b",
    "mixed4c",
    "mixed4d",
    "mixed4e",
    "mixed5a",
    "mixed5b",
]
INPUT_SIZE = 224


class _Stop(BaseException):
    """Raised by the target's hook: nothing after the target layer needs to run."""


def linearized_forward(model: nn.Module, source: str, target: str) -> tuple[Tensor, Tensor]:
    """A's output (a leaf that requires grad) and B's output, at the model's input size."""
    seen: dict[str, Tensor] = {}

    def on_source(_m: nn.Module, _i: object, out: Tensor) -> Tensor:
        seen["a"] = out.detach().requires_grad_(True)
        return seen["a"]

    def on_target(_m: nn.Module, _i: object, out: Tensor) -> None:
        seen["b"] = out
        raise _Stop

    handles = [
        model.get_submodule(source).register_forward_hook(on_source),
        model.get_submodule(target).register_forward_hook(on_target),
    ]
    try:
        with Linearized(), contextlib.suppress(_Stop):
            model(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    finally:
        for handle in handles:
            handle.remove()
    return seen["a"], seen["b"]


def naive(
    model: nn.Module, source: str, target: str, channels: list[int]
) -> tuple[float, float, list[Tensor]]:
    """(forward seconds, seconds per backward, gradients of the sampled B channels)."""
    start = time.perf_counter()
    a, b = linearized_forward(model, source, target)
    forward_s = time.perf_counter() - start
    cy, cx = b.shape[2] // 2, b.shape[3] // 2
    grads = []
    start = time.perf_counter()
    for channel in channels:
        (grad,) = torch.autograd.grad(b[0, channel, cy, cx], a, retain_graph=True)
        grads.append(grad[0])
    per_backward = (time.perf_counter() - start) / len(channels)
    return forward_s, per_backward, grads


def crop_to_support(grads: list[Tensor]) -> Tensor:
    stacked = torch.stack(grads)  # (n, C_A, H, W)
    magnitude = stacked.abs().amax(dim=(0, 1))
    reached = magnitude > 1e-5 * magnitude.max()
    rows = reached.any(dim=1).nonzero().flatten()
    cols = reached.any(dim=0).nonzero().flatten()
    return stacked[:, :, int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=12, help="B channels timed per pair")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    model = inceptionv1(pretrained=False).eval()
    # Same weights, ReLUs as plain F.relu: lucent's RedirectedReLU would scale the naive
    # backward by 0.1 through negative inputs; our mode turns F.relu into the identity.
    plain = inceptionv1(pretrained=False, redirected_ReLU=False).eval()
    plain.load_state_dict(model.state_dict())
    for parameter in plain.parameters():
        parameter.requires_grad_(False)

    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"torch threads={torch.get_num_threads()}  input={INPUT_SIZE}px  seed={args.seed}  "
        f"load average={load}"
    )
    print(
        f"{'source':>8} -> {'target':<8} {'kernels':>22} {'method':>9} {'ours_s':>8} "
        f"{'naive_s*':>9} {'ratio':>6} {'sampled':>7} {'max_rel_diff':>12}"
    )
    ours_total = naive_total = 0.0
    for source, target in zip(LAYERS, LAYERS[1:], strict=False):
        start = time.perf_counter()
        connections = expanded_weights(model, source, target, input_size=INPUT_SIZE)
        ours_s = time.perf_counter() - start
        c_b = connections.kernels.shape[0]
        channels = np.linspace(0, c_b - 1, min(args.sample, c_b)).round().astype(int).tolist()
        forward_s, per_backward, grads = naive(plain, source, target, channels)
        naive_s = forward_s + per_backward * c_b
        theirs = crop_to_support(grads)
        ours = torch.from_numpy(connections.kernels[channels])
        if ours.shape == theirs.shape:
            diff = float((ours - theirs).abs().max() / theirs.abs().max())
            diff_text = f"{diff:.1e}"
        else:
            diff_text = f"shape {tuple(theirs.shape[2:])}"
        ours_total += ours_s
        naive_total += naive_s
        print(
            f"{source:>8} -> {target:<8} {str(connections.kernels.shape):>22} "
            f"{connections.method:>9} {ours_s:8.2f} {naive_s:9.2f} {naive_s / ours_s:6.1f} "
            f"{len(channels):>3}/{c_b:<4} {diff_text:>11}"
        )
    print(
        f"* naive_s = one forward + (mean of {args.sample} timed backwards) x C_B, "
        "extrapolated from the sampled B channels; naive unchanged: one backward per B "
        "channel from its centre unit to A's full map"
    )
    ratio = naive_total / ours_total
    print(f"summary ours_s={ours_total:.2f} naive_s={naive_total:.2f} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
