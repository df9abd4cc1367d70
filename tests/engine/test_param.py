"""The image parameterization's colour basis (rendering/engine/param.py)."""

import numpy as np
import pytest
import torch
from torch import nn

from rendering.engine import render_units
from rendering.engine.param import (
    COLOR_CORRELATION_SVD_SQRT,
    NO_DECORRELATION,
    ColorCorrelation,
    FourierImage,
    color_correlation_sqrt,
)


def _greenness_model() -> nn.Module:
    """One 1x1 convolution whose only unit answers to green against red and blue."""
    conv = nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([-1.0, 2.0, -1.0]).view(1, 3, 1, 1))
        conv.bias.zero_()
    return nn.Sequential(conv)


def _green_excess(basis: ColorCorrelation) -> float:
    result = render_units(
        _greenness_model(),
        "0",
        [0],
        size=16,
        steps=48,
        transforms=False,
        preprocess=lambda x: x * 4 - 2,
        color_correlation=basis,
    )
    assert result.metrics["color_correlation"] == basis  # recorded with the render
    rgb = result.images[0].reshape(-1, 3).astype(np.float64) / 255
    return float((rgb[:, 1] - (rgb[:, 0] + rgb[:, 2]) / 2).mean())


def test_imagenets_colour_basis_makes_green_slow_to_reach_and_no_decorrelation_does_not() -> None:
    # ImageNet's green-magenta component is 7.5x shorter than its luminance one: within the
    # same steps a green detector's render only tints towards green, while optimizing R, G
    # and B directly saturates it.
    imagenet, plain = _green_excess(COLOR_CORRELATION_SVD_SQRT), _green_excess(NO_DECORRELATION)
    assert plain > 0.3  # measured 0.44 (of at most 1)
    assert imagenet < 0.25 * plain  # measured 0.065


def test_color_correlation_sqrt_recovers_a_known_covariance() -> None:
    generator = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[0.3, 0.1, 0.0], [0.3, -0.1, 0.05], [0.3, 0.0, -0.05]])
    pixels = torch.randn(200_000, 3, generator=generator) @ mixing.T
    root = torch.tensor(color_correlation_sqrt(pixels), dtype=torch.float64)
    assert torch.allclose(root @ root.T, (mixing @ mixing.T).double(), atol=2e-3)
    norms = root.norm(dim=0)
    assert (norms[:-1] >= norms[1:]).all()  # components by decreasing spread


def test_a_colour_basis_must_be_3x3() -> None:
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="3x3"):
        FourierImage([generator], 8, color_correlation=((1.0, 0.0), (0.0, 1.0)))  # type: ignore[arg-type]
