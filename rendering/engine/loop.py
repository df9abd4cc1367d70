"""The optimization loop shared by every technique: lean, with no host sync per step."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rendering.engine.param import FourierImage, spectrum_images
from rendering.engine.transforms import TransformSchedule, warp

Forward = Callable[[Tensor], Tensor]
Preprocess = Callable[[Tensor], Tensor]
Progress = Callable[[int, int], None]
Score = Callable[[Tensor], Tensor]
Objective = Callable[[Tensor, Tensor], Tensor]  # (activations, units) -> one value per image

# Report progress every this many steps: often enough for a heartbeat, rare enough to be free.
PROGRESS_EVERY = 8


def model_forward(
    preprocess: Any, forward: Any, autocast_dtype: torch.dtype | None, images: Tensor
) -> Any:
    """The model's activations for [0, 1] images: its preprocessing, NHWC, the optional
    autocast. NHWC: oneDNN and cuDNN convolutions and pooling prefer it (CPU max-pooling runs
    6x faster); measured 12% less time per step on the 2-core CPU."""
    images = preprocess(images).contiguous(memory_format=torch.channels_last)
    autocast = (
        torch.autocast(device_type=images.device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else nullcontext()
    )
    with autocast:
        return forward(images)


@dataclass(frozen=True)
class Problem:
    """What one optimization maximizes: images -> transforms -> model -> one score per image."""

    forward: Forward
    preprocess: Preprocess
    score: Score
    schedule: TransformSchedule | None = None
    # Caricature: a fixed image that rides along in every batch, transformed like the others.
    companion: Tensor | None = None
    autocast_dtype: torch.dtype | None = None

    def evaluate(self, images: Tensor, step: int | None) -> Tensor:
        """Per-image objective; `step=None` scores the images as they are, untransformed."""
        set_step = getattr(self.forward, "set_step", None)
        if step is not None and set_step is not None:
            set_step(step)  # the redirected ReLU gradient is on for the first steps only
        if self.companion is not None:
            images = torch.cat([images, self.companion])
        if step is not None and self.schedule is not None:
            images = self.schedule.apply(images, step)
        return self.score(model_forward(self.preprocess, self.forward, self.autocast_dtype, images))


@dataclass
class StepCounter:
    """Progress over all chunks of one call, so callers see one bar from 0 to total."""

    total: int
    callback: Progress | None
    done: int = 0

    def advance(self) -> None:
        self.done += 1
        if self.callback is not None and (
            self.done % PROGRESS_EVERY == 0 or self.done == self.total
        ):
            self.callback(self.done, self.total)


class CompiledStep:
    """One step's loss as one compiled region: spectrum → images → transforms → preprocess →
    truncated forward (autocast, channels_last) → objective → minus their sum; AOTAutograd
    compiles its backward with it, and `mode="reduce-overhead"` replays both as CUDA graphs.

    Every input that changes between steps or batches is a tensor argument (the spectrum, this
    step's warps, the units), so one instance compiles once per input shape: build one per
    (truncated graph, objective, size, transforms, dtype) and keep it (`compiled_step`).
    """

    def __init__(
        self,
        forward: Forward,
        preprocess: Preprocess,
        objective: Objective,
        *,
        size: int,
        autocast_dtype: torch.dtype | None,
        mode: str | None,
        backend: str = "inductor",
    ) -> None:
        self.forward = forward
        self.preprocess = preprocess
        self.objective = objective
        self.size = size
        self.autocast_dtype = autocast_dtype
        self.mode = mode
        self._compiled = torch.compile(self.loss, mode=mode, dynamic=False, backend=backend)

    def loss(
        self, spectrum: Tensor, scale: Tensor, color: Tensor, theta: Tensor | None, units: Tensor
    ) -> Tensor:
        images = spectrum_images(spectrum, scale, color, self.size)
        if theta is not None:
            images = warp(images, theta)
        acts = model_forward(self.preprocess, self.forward, self.autocast_dtype, images)
        return -self.objective(acts, units).sum()

    def __call__(
        self, image: FourierImage, schedule: TransformSchedule | None, units: Tensor, step: int
    ) -> Tensor:
        set_step = getattr(self.forward, "set_step", None)
        if set_step is not None:
            set_step(step)  # a buffer the graph reads: changed in place, outside the graph
        if self.mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # last step's outputs are consumed
        theta = schedule.thetas[step] if schedule is not None else None
        return self._compiled(image.spectrum, image.scale, image.color, theta, units)


def optimize(
    image: FourierImage,
    problem: Problem,
    *,
    steps: int,
    lr: float,
    counter: StepCounter,
    compiled: tuple[CompiledStep, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Adam on the spectrum; returns the final images and their untransformed objective.

    `compiled` (CUDA): the step and the units it scores replace `problem`'s eager loss; the
    final evaluation stays eager, and Adam runs fused.
    """
    # Fused Adam (one kernel) on CUDA; the CPU keeps torch's default implementation.
    if image.spectrum.device.type == "cuda":
        optimizer = torch.optim.Adam(image.parameters(), lr=lr, fused=True)
    else:
        optimizer = torch.optim.Adam(image.parameters(), lr=lr)
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        # Images are independent terms of one sum, so one backward serves every unit.
        if compiled is None:
            loss = -problem.evaluate(image(), step).sum()
        else:
            step_loss, units = compiled
            loss = step_loss(image, problem.schedule, units, step)
        loss.backward()
        optimizer.step()
        counter.advance()
    with torch.no_grad():
        final = image()
        return final, problem.evaluate(final, None)
