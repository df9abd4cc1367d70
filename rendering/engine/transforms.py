"""Transformation robustness: random jitter, scale and rotation applied before every step.

The distribution is Lucid/Lucent's `standard_transforms`: pad 12 px with grey (0.5), jitter up
to 8 px, scale by one of 1 + (i - 5) / 50 for i in 0..10, rotate by one of -10..10 degrees
(with 0 drawn five extra times), jitter up to 4 px. Lucent runs five resampling passes (kornia
translate, resize, pad, warp, translate) with one draw per step for the whole batch; we compose
the four geometric steps into one affine map per image and resample once with `grid_sample`.
That is cheaper, differentiable in one pass, lets every image draw its own warp, and keeps
the canvas a fixed (size + 24)^2 so shapes never change between steps (oneDNN, cuDNN and
torch.compile all cache per shape). The one difference from Lucent: a scale above 1 crops the
outer border of the padded canvas instead of growing the canvas.

Jitter is centred, as Lucid's: its `jitter(d)` takes a random (size - d) crop, so the content
moves by -d/2..+d/2 around where it was (integer offsets 0..d of the crop). Lucent's (and our
former) jitter translates by 0..d-1 in one direction, which puts the content about 5 px
down-right on average over the two jitters. We shift by one of -d/2..+d/2 in whole pixels
(d + 1 values, mean 0) and keep the canvas size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

PAD = 12
PAD_VALUE = 0.5
FIRST_JITTER = 8
SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
ANGLES_DEG = tuple(range(-10, 11)) + (0,) * 5
SECOND_JITTER = 4

DESCRIPTION = (
    f"pad {PAD} (constant {PAD_VALUE}), centred jitter {FIRST_JITTER}, scale {SCALES[0]:.2f}-"
    f"{SCALES[-1]:.2f} (11 steps), rotate {ANGLES_DEG[0]}..{ANGLES_DEG[20]} deg, "
    f"centred jitter {SECOND_JITTER}; one bilinear affine resample per image per step"
)


def _centred_jitter(generator: torch.Generator, steps: int, d: int) -> torch.Tensor:
    """(steps, 2) shifts in pixels, each one of -d/2, -d/2 + 1, …, d/2 (Lucid's crop offsets
    0..d, measured from the centre)."""
    return torch.randint(0, d + 1, (steps, 2), generator=generator).double() - d / 2


def _affine_thetas(generator: torch.Generator, steps: int, canvas: int) -> Tensor:
    """(steps, 2, 3) maps from output to input coordinates, in affine_grid's [-1, 1] units."""
    first = _centred_jitter(generator, steps, FIRST_JITTER)
    scale = torch.tensor(SCALES, dtype=torch.float64)[
        torch.randint(0, len(SCALES), (steps,), generator=generator)
    ]
    angle = torch.tensor(ANGLES_DEG, dtype=torch.float64)[
        torch.randint(0, len(ANGLES_DEG), (steps,), generator=generator)
    ] * (math.pi / 180)
    second = _centred_jitter(generator, steps, SECOND_JITTER)

    # Sampling undoes the chain jitter1 -> scale -> rotate -> jitter2 around the canvas centre:
    # u_in = M (u_out - d2) - d1, with M = R(-angle) / scale and u in pixels from the centre.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    linear = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    shift_px = -(linear @ second[..., None]).squeeze(-1) - first
    # affine_grid (align_corners=False) measures positions in half-canvas units.
    shift = shift_px * (2.0 / canvas)
    return torch.cat([linear, shift[..., None]], dim=-1).float()


@dataclass(frozen=True)
class TransformSchedule:
    """Every image's warp for every step, drawn up front so the loop never touches the host."""

    thetas: Tensor  # (steps, batch, 2, 3) on the render device
    canvas: int

    @classmethod
    def draw(
        cls,
        generators: Sequence[torch.Generator],
        *,
        steps: int,
        size: int,
        device: torch.device,
    ) -> TransformSchedule:
        canvas = size + 2 * PAD
        thetas = torch.stack([_affine_thetas(g, steps, canvas) for g in generators], dim=1)
        return cls(thetas=thetas.to(device), canvas=canvas)

    def repeat_each(self, times: int) -> TransformSchedule:
        """Give each image's warp to `times` consecutive images (caricature's image pair)."""
        return TransformSchedule(self.thetas.repeat_interleave(times, dim=1), self.canvas)

    def apply(self, images: Tensor, step: int) -> Tensor:
        return warp(images, self.thetas[step])


def warp(images: Tensor, theta: Tensor) -> Tensor:
    """Pad, then resample each image through its (2, 3) map `theta[i]` (one step's warps)."""
    padded = F.pad(images, [PAD] * 4, mode="constant", value=PAD_VALUE)
    grid = F.affine_grid(theta.to(images.dtype), list(padded.shape), align_corners=False)
    # Zeros outside the padded canvas, as Lucent's translate and rotate fill with black.
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
