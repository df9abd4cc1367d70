"""The compiled step (CUDA's path) computes what the eager loop computes.

On the CPU the engine never compiles, so these tests build the step directly: once through
dynamo and AOTAutograd without code generation (fast: the capture, the tensor-only inputs and
the joint backward are what can go wrong), once with inductor when a CUDA device is present.
"""

from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
from lucent.modelzoo import inceptionv1
from torch import nn

from rendering.engine import render_units
from rendering.engine.loop import CompiledStep, Problem
from rendering.engine.param import FourierImage
from rendering.engine.relu_gradient import REDIRECT_STEPS
from rendering.engine.render import _truncate, _unit_objective, compiled_step
from rendering.engine.seeds import image_generator
from rendering.engine.transforms import TransformSchedule
from rendering.engine.truncation import frozen_eval


def _preprocess(x: torch.Tensor) -> torch.Tensor:
    return x * 255 - 117


@pytest.fixture(scope="module")
def inception() -> nn.Module:
    torch.manual_seed(0)
    return inceptionv1(pretrained=False)


@pytest.mark.parametrize("technique", ["channel", "diversity"])
def test_the_compiled_step_gives_the_eager_loss_and_gradient(
    inception: nn.Module, technique: str
) -> None:
    size, replicas = 32, 2 if technique == "diversity" else 1
    units = [3, 7]
    keys = [(unit, replica) for unit in units for replica in range(replicas)]
    generators = [image_generator(0, unit, replica) for unit, replica in keys]
    with frozen_eval(inception):
        truncation = _truncate(
            inception, "mixed3a", size, True, _preprocess, torch.device("cpu"), False
        )
        assert truncation.method == "traced"
        objective = _unit_objective(technique, replicas, 100.0)
        step = CompiledStep(
            truncation.forward,
            _preprocess,
            objective,
            size=size,
            autocast_dtype=None,
            mode=None,
            backend="aot_eager",
        )
        image = FourierImage(generators, size)
        schedule = TransformSchedule.draw(
            generators, steps=REDIRECT_STEPS + 2, size=size, device=torch.device("cpu")
        )
        unit_index = torch.tensor([unit for unit, _ in keys])
        problem = Problem(
            forward=truncation.forward,
            preprocess=_preprocess,
            score=partial(objective, units=unit_index),
            schedule=schedule,
        )
        # The redirected ReLU gradient is on at step 0 and off at the last step.
        for index in (0, REDIRECT_STEPS + 1):
            eager = -problem.evaluate(image(), index).sum()
            (eager_grad,) = torch.autograd.grad(eager, image.spectrum)
            compiled = step(image, schedule, unit_index, index)
            (compiled_grad,) = torch.autograd.grad(compiled, image.spectrum)
            torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-3, atol=1e-6)


def test_one_compiled_step_per_graph_and_setting(inception: nn.Module) -> None:
    with frozen_eval(inception):
        truncation = _truncate(
            inception, "mixed3a", 32, True, _preprocess, torch.device("cpu"), False
        )
        channel = _unit_objective("channel", 1, 100.0)
        first = compiled_step(truncation, _preprocess, channel, 32, None, None)
        assert compiled_step(truncation, _preprocess, channel, 32, None, None) is first
        assert compiled_step(truncation, _preprocess, channel, 64, None, None) is not first
        neuron = _unit_objective("neuron", 1, 100.0)
        assert compiled_step(truncation, _preprocess, neuron, 32, None, None) is not first


def test_compile_is_ignored_on_the_cpu(inception: nn.Module) -> None:
    settings: dict[str, Any] = dict(size=32, steps=3, preprocess=_preprocess)
    eager = render_units(inception, "mixed3a", [0, 1], **settings)
    asked = render_units(inception, "mixed3a", [0, 1], compile=True, **settings)
    assert np.array_equal(eager.images, asked.images)
    assert asked.metrics["compiled"] is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_compiled_cuda_step_renders_like_the_eager_one(inception: nn.Module) -> None:
    inception.cuda()
    try:
        settings: dict[str, Any] = dict(size=64, steps=24, preprocess=_preprocess, device="cuda")
        eager = render_units(inception, "mixed3a", list(range(8)), **settings)
        compiled = render_units(
            inception, "mixed3a", list(range(8)), compile=True, dtype=torch.bfloat16, **settings
        )
    finally:
        inception.cpu()
    assert compiled.metrics["compiled"] is True
    # bf16 and another kernel order: close, not equal; the objective reached is what matters.
    reached, expected = float(np.mean(compiled.objective)), float(np.mean(eager.objective))
    assert np.isfinite(compiled.objective).all() and reached >= expected - 0.2 * abs(expected)
    assert np.abs(compiled.images.astype(int) - eager.images.astype(int)).mean() < 32
