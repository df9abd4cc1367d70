"""The hooked forward from layer A to layer B that connections are computed from.

First one probe forward (`run_probe`). Everything before A only shapes A's output, which is
replaced, so it runs on the meta device (shapes, no arithmetic) where the model allows. A hook
on A replaces A's output by a random map of its real size and an all-zero map, whose response
(the biases) is subtracted; a hook on B captures its output and stops the forward. The probe
also records every operation from A on (`linearize.Tape`). Measuring kernels replaces A's
output the same way, by impulses or zero maps (`hooked_forward`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from rendering.engine.linearize import Linearized, Tape

__all__ = ["Inject", "Probe", "Run", "hooked_forward", "random_maps", "run_probe"]


class _StopForward(BaseException):
    """Ends the forward once B has run; a BaseException so no `except Exception` swallows it."""


Inject = Tensor | Callable[[tuple[int, ...]], Tensor] | None


@dataclass
class Run:
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
) -> Iterator[tuple[Run, Linearized]]:
    """Hooks on A (optionally replacing its output by `inject`, or by what it returns for A's
    shape) and B, and the linearizing mode (recording on `tape` from A on)."""
    run = Run()
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


def hooked_forward(
    model: nn.Module,
    source: str,
    target: str,
    image: Tensor,
    inject: Inject,
    tape: Tape | None = None,
    *,
    meta_before: bool = False,
) -> Run:
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


@dataclass
class Probe:
    """One forward with A's output replaced by a random map (image 0) and zeros (image 1)."""

    run: Run
    tape: Tape  # every operation from A's output on
    random_map: Tensor  # (C_A, H, W), the size of A's real output
    response: Tensor  # (C_B, h, w): B's response to it, biases removed
    meta_before: bool  # whether what runs before A could run on the meta device


def run_probe(model: nn.Module, source: str, target: str, image: Tensor) -> Probe:
    """The probe forward. What runs before A only shapes A's output, which is replaced, so it
    runs on the meta device (shapes, no arithmetic) where the model allows; else on `image`."""

    def inject(shape: tuple[int, ...]) -> Tensor:
        return random_maps(shape[1:]).to(image.device)

    meta_before = True
    try:
        tape = Tape()
        run = hooked_forward(model, source, target, image, inject, tape, meta_before=True)
    except Exception:  # an operation without a meta kernel, a skip from before A, ...
        tape, meta_before = Tape(), False
        run = hooked_forward(model, source, target, image, inject, tape)
    assert run.injected is not None and run.target_output is not None
    out = run.target_output
    return Probe(run, tape, run.injected[0], out[0] - out[1], meta_before)


def random_maps(shape: tuple[int, ...]) -> Tensor:
    """A random map of `shape` (C, H, W) and a zero one; deterministic."""
    random = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    return torch.stack([random, torch.zeros_like(random)])
