"""Image parameterization: a 1/f-scaled Fourier spectrum, colour decorrelation, a sigmoid.

This is the parameterization of Olah et al., "Feature Visualization" (Distill, 2017), as in
Lucid's `param.image(fft=True, decorrelate=True)`: optimizing spectrum coefficients scaled by
1/frequency (decay power 1) equalizes the learning rate across frequencies, and mixing colours
through the square root of ImageNet's colour covariance decorrelates the channels, which keeps
high-frequency, saturated noise out of the result. That colour basis is a prior for models
trained on natural images; a model trained on other data names its own (`ZooEntry.
color_correlation`: the stimuli-trained organism uses none, Lucid's `decorrelate=False`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

# A colour basis: rows are output colours (R, G, B), columns the components optimized.
ColorCorrelation = tuple[tuple[float, float, float], ...]

# Square root of ImageNet's RGB covariance from its SVD, as published with Lucid
# (lucid/optvis/param/color.py); rows are output colours, columns decorrelated components.
# It is a prior for models trained on natural images: after the normalization below (column
# norms 1.00, 0.27, 0.13), a step of the optimizer moves luminance 7.5x and the orange-azure
# axis (hue 30°-210°) 2.1x as far as the green-magenta one, so saturated hues away from that
# axis are slow to reach.
COLOR_CORRELATION_SVD_SQRT: ColorCorrelation = (
    (0.26, 0.09, 0.02),
    (0.27, 0.00, -0.05),
    (0.27, -0.09, 0.03),
)

# Lucid's `decorrelate=False`: the optimized components are R, G and B themselves.
NO_DECORRELATION: ColorCorrelation = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

# Lucid divides the inverse FFT by 4 to keep the initial image out of the sigmoid's
# saturated range; without it early steps produce washed-out, clipped colours.
SPECTRUM_DIVISOR = 4.0

DEFAULT_SD = 0.01


def color_correlation_sqrt(pixels: Tensor) -> ColorCorrelation:
    """Lucid's recipe for a colour basis, on any data: U sqrt(S) from the SVD of the RGB
    covariance of `pixels` (N, 3). Its columns are the data's colour components, each scaled
    by its spread (largest first)."""
    centred = pixels.double() - pixels.double().mean(dim=0)
    covariance = centred.T @ centred / (len(pixels) - 1)
    u, s, _ = torch.linalg.svd(covariance)
    root = (u * s.sqrt()).tolist()
    return tuple((float(r), float(g), float(b)) for r, g, b in root)


def _color_matrix(correlation: ColorCorrelation = COLOR_CORRELATION_SVD_SQRT) -> Tensor:
    matrix = torch.tensor(correlation, dtype=torch.float32)
    if matrix.shape != (3, 3):
        raise ValueError(f"a colour correlation is a 3x3 matrix, got shape {tuple(matrix.shape)}")
    # Normalize by the largest column norm so no decorrelated component is amplified.
    return matrix / matrix.norm(dim=0).max()


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> Tensor:
    """Per-frequency scale 1/f**decay_power of a real 2-D FFT, shape (height, width//2 + 1)."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    # The DC term would divide by zero: clamp to the lowest non-zero frequency instead.
    floor = 1.0 / max(height, width)
    return (1.0 / freqs.clamp(min=floor) ** decay_power).to(torch.float32)


class FourierImage(nn.Module):
    """A batch of images in [0, 1], one row of spectrum coefficients per image.

    Each image's initial coefficients come from its own generator, so an image depends only
    on its own seed, not on its batch neighbours or the device. `color_correlation` is the
    colour basis (default ImageNet's, for models trained on natural images).
    """

    scale: Tensor
    color: Tensor

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        size: int,
        *,
        sd: float = DEFAULT_SD,
        decay_power: float = 1.0,
        color_correlation: ColorCorrelation = COLOR_CORRELATION_SVD_SQRT,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.size = size
        freq_shape = (3, size, size // 2 + 1, 2)  # last axis: real and imaginary parts
        init = torch.stack([torch.randn(freq_shape, generator=g) * sd for g in generators])
        self.spectrum = nn.Parameter(init.to(device))
        scale = spectrum_scale(size, size, decay_power)[None, None, :, :, None]
        self.register_buffer("scale", scale.to(device), persistent=False)
        color = _color_matrix(color_correlation).to(device)
        self.register_buffer("color", color, persistent=False)

    def forward(self) -> Tensor:
        return spectrum_images(self.spectrum, self.scale, self.color, self.size)


def spectrum_images(spectrum: Tensor, scale: Tensor, color: Tensor, size: int) -> Tensor:
    """`FourierImage`'s images from its tensors: a pure function, so that a compiled step can
    take the tensors as inputs rather than the module."""
    coefficients = torch.view_as_complex(spectrum * scale)
    decorrelated = torch.fft.irfftn(coefficients, s=(size, size), norm="ortho")
    decorrelated = decorrelated / SPECTRUM_DIVISOR
    # Mix the three decorrelated components into RGB at every pixel: out_c = sum_k M_ck x_k.
    rgb = torch.einsum("ck,bkhw->bchw", color, decorrelated)
    return torch.sigmoid(rgb)
