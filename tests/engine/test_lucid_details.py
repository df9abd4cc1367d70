"""Where we follow Lucid to the letter: redirected ReLU cut-off, centred jitter, caricature, signs."""

import numpy as np
import pytest
import torch
from torch import nn

from rendering.engine import render_layer
from rendering.engine.connections import kernel_sign
from rendering.engine.loop import Problem
from rendering.engine.objectives import caricature
from rendering.engine.relu_gradient import REDIRECT_STEPS
from rendering.engine.transforms import TransformSchedule
from rendering.engine.truncation import frozen_eval, truncate


def _dead_unit_model() -> nn.Module:
    """Channel 1's ReLU input is negative on every image in [0, 1] (no plain ReLU gradient);
    channel 0 is alive, so the trace's gradient check sees the model's own gradient."""
    conv = nn.Conv2d(3, 2, 3)
    with torch.no_grad():
        conv.weight.fill_(0.1)
        conv.bias.copy_(torch.tensor([0.0, -10.0]))
    return nn.Sequential(conv, nn.ReLU())


def _image_gradient(step: int) -> torch.Tensor:
    model = _dead_unit_model()
    probe = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with frozen_eval(model):
        truncation = truncate(model, "1", probe)
        assert truncation.method == "traced"
        problem = Problem(
            forward=truncation.forward,
            preprocess=lambda x: x,
            score=lambda acts: acts[:, 1].mean(dim=(1, 2)),  # the dead channel
        )
        images = probe.clone().requires_grad_(True)
        (-problem.evaluate(images, step).sum()).backward()
    assert images.grad is not None
    return images.grad


def test_redirected_relu_gradient_only_for_the_first_16_steps() -> None:
    assert REDIRECT_STEPS == 16
    before = _image_gradient(REDIRECT_STEPS - 1)
    after = _image_gradient(REDIRECT_STEPS)
    assert before.abs().sum() > 0  # redirected: the dead unit still pulls the image
    assert after.abs().sum() == 0  # plain ReLU from step 16 on, as Lucid's render_vis


def test_jitter_is_centred_over_many_draws() -> None:
    size = 32
    schedule = TransformSchedule.draw(
        [torch.Generator().manual_seed(0)], steps=20000, size=size, device=torch.device("cpu")
    )
    theta = schedule.thetas[:, 0].double()  # (steps, 2, 3): output -> input, half-canvas units
    linear, shift = theta[:, :, :2], theta[:, :, 2]
    # Where the content at the canvas centre lands in the output, in pixels.
    landed = -(torch.linalg.inv(linear) @ shift[..., None]).squeeze(-1) * schedule.canvas / 2
    assert landed.mean(dim=0).abs().max() < 0.1  # Lucent's one-sided jitter: about 5 px
    assert landed.std(dim=0).min() > 2  # and it does move


def test_caricature_is_lucids_dot_compare() -> None:
    acts = torch.tensor([[3.0, 4.0, 0.0], [1.0, 0.0, 0.0]])
    target = torch.tensor([[2.0, 1.0, 5.0], [-1.0, 0.0, 0.0]])
    dot = torch.tensor([10.0, -1.0])
    # Default power 0: the plain dot product.
    torch.testing.assert_close(caricature(acts, target), dot)
    # The "cosine" divides by the optimized image's norm only (|acts| = 5 and 1), floored at 0.1.
    cossim = torch.tensor([10.0 / 5.0, 0.1])
    torch.testing.assert_close(caricature(acts, target, 2.0), dot * cossim**2)


def test_caricature_defaults_to_power_0_and_records_it() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    photo = np.random.default_rng(0).random((20, 20, 3))
    result = render_layer(model, "1", technique="caricature", image=photo, size=16, steps=2)
    assert result.metrics["caricature_power"] == 0.0


@pytest.mark.parametrize(
    ("kernel", "sign"),
    [
        ([[1.0, -0.9]], "mixed"),  # |0.1| < 0.25 x 1.9
        ([[1.0, -0.5]], "excitatory"),  # |0.5| >= 0.25 x 1.5
        ([[-1.0, 0.2]], "inhibitory"),
        ([[0.0, 0.0]], "mixed"),
    ],
)
def test_kernel_sign_calls_cancelling_kernels_mixed(kernel: list[list[float]], sign: str) -> None:
    assert kernel_sign(np.array(kernel)) == sign
