"""stimuli-cnn: a model organism whose features are known because we trained them here.

No published weights can be downloaded on this machine, and random-init networks show nothing
a unit "does". This small CNN is trained, on the CPU in about a minute, to tell apart classes
that are each one known feature, drawn by the same code as the tuning stimuli
(`rendering.engine.stimuli`):

- 8 orientations (0°, 22.5°, … 157.5°): a grating whose bars run along the orientation
  (random frequency and phase) or one straight line along it (dark or light);
- 4 curves: an arc of high curvature whose convex side faces one of 4 directions;
- 6 colours: a uniform patch of a hue within 30° of 0°, 60°, … 300°: the six classes split
  the hue circle between them, so every hue belongs to exactly one class, and a colour unit
  is trained to answer to its own sixth of the circle and to no hue beyond it;
- 2 textures/shapes: a checkerboard (random size and rotation) and a filled disc.

Every image puts its feature inside a soft aperture of random position and size, at random
contrast, on a random, slightly tinted and noisy grey background, so that a class needs a
real detector of its feature rather than a pixel lookup. The last layer's units are the class
logits: their feature visualizations, dataset examples and tuning curves have a right answer.

Renders use no colour decorrelation (`COLOR_CORRELATION`): see there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from rendering.engine.param import NO_DECORRELATION, ColorCorrelation
from rendering.engine.stimuli import CURVES, GRATINGS, Placement, hue_to_rgb

__all__ = [
    "CLASSES",
    "COLOR_CORRELATION",
    "INPUT_SIZE",
    "StimuliCNN",
    "StimulusClass",
    "draw_class",
    "draw_dataset",
]

INPUT_SIZE = 64


@dataclass(frozen=True)
class StimulusClass:
    """One class: `kind` orientation | curve | colour | texture, `value` its angle or hue."""

    name: str
    kind: str
    value: float = 0.0


CLASSES: tuple[StimulusClass, ...] = (
    *(StimulusClass(f"orientation {a:g}°", "orientation", a) for a in np.arange(8) * 22.5),
    # The convex side of the arc faces `value` (0° right, 90° up); curves.py's orientation is
    # the tangent at the arc's midpoint, 90° further counterclockwise.
    *(StimulusClass(f"curve convex {a:g}°", "curve", a) for a in (0.0, 90.0, 180.0, 270.0)),
    *(StimulusClass(f"colour hue {h:g}°", "colour", h) for h in np.arange(6) * 60.0),
    StimulusClass("checkerboard", "texture"),
    StimulusClass("disc", "texture"),
)

# Nuisances, as fractions of the image side unless said otherwise.
EXTENT = (0.45, 0.9)  # aperture diameter
CENTRE = (0.3, 0.7)  # aperture centre
CONTRAST = (0.5, 1.0)
BACKGROUND = (0.3, 0.7)  # grey level
TINT = 0.04  # per-channel background tint, +-
NOISE = 0.02  # per-pixel background noise, standard deviation
ANGLE_JITTER = 4.0  # degrees, +- around the class's orientation
# Degrees, +- around the class's hue: half the 60° between class hues, so the colour classes
# tile the hue circle. With a narrower band (it was 8°), the hues between two classes were
# never seen, a unit's response there was unconstrained, and its render drifted into them.
HUE_HALF_WIDTH = 30.0

# The colour basis of the organism's renders: none (Lucid's `decorrelate=False`). ImageNet's
# (the default) is a natural-image prior that makes green-magenta 7.5x slower to optimize than
# luminance; with it the colour logits' renders drifted towards its orange-azure axis (60° to
# 27°, 120° to 59°, 180° to 227°, 300° to 251°) at under half the activation. The stimuli have
# no hue axis to prefer: their RGB covariance's two chroma components are equal (measured:
# 0.0149 and 0.0146, beside 0.0641 for luminance; tests/engine/test_organism.py).
COLOR_CORRELATION: ColorCorrelation = NO_DECORRELATION


def _checkerboard(placement: Placement, rng: np.random.Generator) -> np.ndarray:
    x, y = placement.coordinates()
    angle = rng.uniform(0, math.pi / 2)
    period = placement.extent / rng.uniform(2.0, 4.0)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    # Smooth squares: the sign of a product of sines, softened over about one pixel.
    wave = np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period)
    return np.tanh(wave * period / 2)


def _disc(placement: Placement, rng: np.random.Generator) -> np.ndarray:
    x, y = placement.coordinates()
    radius = placement.extent * rng.uniform(0.25, 0.4)
    return np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0) * rng.choice([-1.0, 1.0])


def _signal(kind: StimulusClass, placement: Placement, rng: np.random.Generator) -> np.ndarray:
    """The feature as an offset from grey, (3, size, size) in [-0.5, 0.5]."""
    jitter = rng.uniform(-ANGLE_JITTER, ANGLE_JITTER)
    if kind.kind == "orientation":
        if rng.random() < 0.5:
            grid = {
                "orientation": np.array([kind.value + jitter]),
                "frequency": np.array([rng.uniform(1.5, 4.0)]),
                "phase": np.array([rng.uniform(0, 360)]),
            }
            return GRATINGS.draw(grid, placement)[0] - 0.5
        grid = {
            "orientation": np.array([kind.value + jitter]),
            "curvature": np.array([0.0]),
            "polarity": np.array([rng.choice([-1.0, 1.0])]),
        }
        return CURVES.draw(grid, placement)[0] - 0.5
    if kind.kind == "curve":
        grid = {
            "orientation": np.array([kind.value + 90.0 + jitter]),
            "curvature": np.array([rng.uniform(3.0, 5.0)]),
            "polarity": np.array([rng.choice([-1.0, 1.0])]),
        }
        return CURVES.draw(grid, placement)[0] - 0.5
    if kind.kind == "colour":
        rgb = hue_to_rgb(np.array(kind.value + rng.uniform(-HUE_HALF_WIDTH, HUE_HALF_WIDTH)))
        return (rgb[:, None, None] - 0.5) * placement.window()[None]
    pattern = (
        _checkerboard(placement, rng) if kind.name == "checkerboard" else _disc(placement, rng)
    )
    return np.repeat((0.5 * pattern * placement.window())[None], 3, axis=0)


def draw_class(
    index: int, count: int, rng: np.random.Generator, *, size: int = INPUT_SIZE
) -> np.ndarray:
    """`count` images of class `index`: (count, 3, size, size) float32 in [0, 1]."""
    if not 0 <= index < len(CLASSES):
        raise ValueError(f"class index {index} out of range 0..{len(CLASSES) - 1}")
    kind = CLASSES[index]
    signals = np.empty((count, 3, size, size), dtype=np.float32)
    for i in range(count):
        extent = rng.uniform(*EXTENT) * size
        centre = (rng.uniform(*CENTRE) * (size - 1), rng.uniform(*CENTRE) * (size - 1))
        signals[i] = _signal(kind, Placement(size, centre, extent), rng)
    contrast = rng.uniform(*CONTRAST, size=(count, 1, 1, 1)).astype(np.float32)
    background = rng.uniform(*BACKGROUND, size=(count, 1, 1, 1)) + rng.uniform(
        -TINT, TINT, size=(count, 3, 1, 1)
    )
    noise = rng.standard_normal((count, 3, size, size), dtype=np.float32) * NOISE
    images = background.astype(np.float32) + noise + contrast * signals
    return np.clip(images, 0.0, 1.0, out=images)


def draw_dataset(
    per_class: int, rng: np.random.Generator, *, classes: Sequence[int] | None = None, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` images of each class (all by default), shuffled: images and their labels."""
    chosen = list(range(len(CLASSES))) if classes is None else list(classes)
    images = np.concatenate([draw_class(c, per_class, rng, size=size) for c in chosen])
    labels = np.repeat(np.arange(len(chosen)), per_class)
    order = rng.permutation(len(labels))
    return images[order], labels[order]


class StimuliCNN(nn.Module):
    """Four conv layers with ReLU, global average pooling, and the class logits.

    Layers, as the registry names them: conv1 (5x5, stride 2: 1/2 resolution), conv2 (3x3,
    after 2x max-pooling: 1/4), conv3 and conv4 (3x3, after another pooling: 1/8), logits
    (one unit per class). The strided first layer keeps training within a CPU minute.
    """

    def __init__(self, classes: int = len(CLASSES), width: int = 16) -> None:
        super().__init__()
        widths = (width, 2 * width, 3 * width, 4 * width)
        self.conv1 = nn.Sequential(nn.Conv2d(3, widths[0], 5, stride=2, padding=2), nn.ReLU())
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Sequential(nn.Conv2d(widths[0], widths[1], 3, padding=1), nn.ReLU())
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Sequential(nn.Conv2d(widths[1], widths[2], 3, padding=1), nn.ReLU())
        self.conv4 = nn.Sequential(nn.Conv2d(widths[2], widths[3], 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.logits = nn.Linear(widths[3], classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.conv3(x)
        return self.logits(self.flatten(self.pool(self.conv4(x))))
