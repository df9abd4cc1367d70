"""Ground-truth checks: do our techniques recover what the model organism's units were trained on?

Each class logit of a trained `StimuliCNN` has a known feature. For every class unit:

1. render: its feature visualization (neuron objective, the logit) activates it at least as
   much as its best dataset example from the held-out set;
2. orientation classes: the dominant orientation of the render (oriented-gradient energy) is
   within 22.5° of the trained orientation; colour classes: the render's mean hue is within
   30° (half the spacing of the trained hues) of the trained hue;
3. tuning: orientation classes: the grating tuning curve peaks within one bin (15°) of the
   trained orientation; colour classes: the hue tuning curve peaks within one bin (15°) of
   the trained hue;
4. examples: at least 8 of its top-9 held-out dataset examples are of its class;
5. connections: the strongest expanded-weight inputs from the previous layer are not the
   same unit for every class (a sanity check of the connections, not a claim about them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rendering.engine.connections import expanded_weights, top_connections
from rendering.engine.datasets import Batch
from rendering.engine.examples import collect_examples
from rendering.engine.param import ColorCorrelation
from rendering.engine.render import render_units
from rendering.engine.stimuli import FAMILIES
from rendering.engine.tuning import tuning_curves
from rendering.engine.zoo.organism import CLASSES, COLOR_CORRELATION

__all__ = [
    "ClassResult",
    "GroundTruth",
    "check_organism",
    "dominant_orientation",
    "mean_hue",
]

ORIENTATION_TOLERANCE = 22.5
HUE_TOLERANCE = 30.0
TUNING_BIN = 15.0  # both the grating orientations and the hues are 15° apart
TOP = 9
TOP_NEEDED = 8


def _angle_gap(a: float, b: float, period: float) -> float:
    gap = abs(a - b) % period
    return min(gap, period - gap)


def dominant_orientation(image: np.ndarray) -> float:
    """The orientation (0-180°, counterclockwise on screen from rightward) along which an
    image's edges and bars run: the structure tensor's dominant gradient direction plus 90°.
    `image`: (H, W, 3) uint8 or floats."""
    grey = np.asarray(image, dtype=np.float64).mean(axis=2)
    gy_down, gx = np.gradient(grey)
    gy = -gy_down  # y up, as the stimuli measure angles
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    gradient = 0.5 * math.degrees(math.atan2(2 * jxy, jxx - jyy))
    return (gradient + 90.0) % 180.0


def mean_hue(image: np.ndarray) -> float:
    """The chroma-weighted mean hue (0-360°) of an RGB image: the angle of the mean of every
    pixel's opponent-colour vector (R - (G + B) / 2, √3/2 (G - B)), which is HSV's hue at the
    primaries and secondaries."""
    rgb = np.asarray(image, dtype=np.float64).reshape(-1, 3)
    a = rgb[:, 0] - (rgb[:, 1] + rgb[:, 2]) / 2
    b = math.sqrt(3) / 2 * (rgb[:, 1] - rgb[:, 2])
    return math.degrees(math.atan2(b.mean(), a.mean())) % 360.0


@dataclass(frozen=True)
class ClassResult:
    unit: int
    name: str
    kind: str
    render_value: float
    best_example_value: float
    render_hit: bool
    feature: float | None  # the render's orientation or mean hue, degrees
    feature_hit: bool | None  # None where the class has no orientation or hue
    tuning_peak: float | None
    tuning_hit: bool | None
    examples_of_class: int  # of the top TOP
    examples_hit: bool
    top_input: int  # the strongest expanded-weight input unit in the previous layer


@dataclass(frozen=True)
class GroundTruth:
    classes: list[ClassResult]
    distinct_top_inputs: int
    renders: np.ndarray  # (classes, size, size, 3) uint8

    def _fraction(self, values: Sequence[bool | None]) -> float:
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known else float("nan")

    def _of_kind(self, kind: str, attribute: str) -> float:
        return self._fraction([getattr(r, attribute) for r in self.classes if r.kind == kind])

    @property
    def render_hits(self) -> float:
        return self._fraction([r.render_hit for r in self.classes])

    @property
    def orientation_hits(self) -> float:
        return self._of_kind("orientation", "feature_hit")

    @property
    def colour_hits(self) -> float:
        return self._of_kind("colour", "feature_hit")

    @property
    def examples_precision(self) -> float:
        return self._fraction([r.examples_hit for r in self.classes])

    @property
    def tuning_hits(self) -> float:
        return self._fraction([r.tuning_hit for r in self.classes])

    @property
    def inputs_distinct(self) -> bool:
        return self.distinct_top_inputs > 1

    def summary(self) -> str:
        return (
            f"summary render_hits={self.render_hits:.2f} "
            f"orientation_hits={self.orientation_hits:.2f} colour_hits={self.colour_hits:.2f} "
            f"examples_precision={self.examples_precision:.2f} "
            f"tuning_hits={self.tuning_hits:.2f}"
        )


def _examples(
    model: nn.Module,
    images: np.ndarray,
    preprocess: Callable[[torch.Tensor], torch.Tensor],
    layer: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-TOP held-out examples of every unit of `layer`: (values, image indices), (C, TOP)."""
    pixels = torch.from_numpy(np.round(images * 255).astype(np.uint8))
    batches = (
        Batch(torch.arange(start, min(start + 256, len(pixels))), pixels[start : start + 256], [])
        for start in range(0, len(pixels), 256)
    )
    state = collect_examples(model, [layer], batches, preprocess=preprocess, k=TOP)
    values, indices, _, _ = state.layer(layer).table("top")
    return values, indices


def check_organism(
    model: nn.Module,
    class_indices: Sequence[int],
    held_out_images: np.ndarray,
    held_out_labels: np.ndarray,
    *,
    preprocess: Callable[[torch.Tensor], torch.Tensor],
    size: int,
    steps: int = 128,
    seed: int = 0,
    layer: str = "logits",
    previous: str = "conv4",
    color_correlation: ColorCorrelation = COLOR_CORRELATION,
) -> GroundTruth:
    """Run the five checks on every class unit of a trained organism (see the module), its
    renders in the organism's colour basis unless `color_correlation` says otherwise."""
    units = list(range(len(class_indices)))
    rendered = render_units(
        model, layer, units, technique="neuron", size=size, steps=steps, seed=seed,
        preprocess=preprocess, color_correlation=color_correlation,
    )  # fmt: skip
    example_values, example_images = _examples(model, held_out_images, preprocess, layer)
    curves = tuning_curves(
        model,
        layer,
        units,
        input_size=size,
        receptive_field=size,
        preprocess=preprocess,
        families={name: FAMILIES[name] for name in ("gratings", "colour")},
    )
    connections = expanded_weights(model, previous, layer, input_size=size, preprocess=preprocess)
    incoming, _ = top_connections(connections, top=1)
    results = []
    for unit, index in enumerate(class_indices):
        kind = CLASSES[index]
        image = rendered.images[unit]
        feature = tuning_peak = None
        feature_hit = tuning_hit = None
        if kind.kind == "orientation":
            feature = dominant_orientation(image)
            feature_hit = _angle_gap(feature, kind.value, 180.0) <= ORIENTATION_TOLERANCE
            summary = curves["gratings"].unit(unit).summary()
            tuning_peak = summary.preferred["orientation"]
            tuning_hit = _angle_gap(tuning_peak, kind.value, 180.0) <= TUNING_BIN
        elif kind.kind == "colour":
            feature = mean_hue(image)
            feature_hit = _angle_gap(feature, kind.value, 360.0) <= HUE_TOLERANCE
            tuning_peak = curves["colour"].unit(unit).summary().preferred["hue"]
            tuning_hit = _angle_gap(tuning_peak, kind.value, 360.0) <= TUNING_BIN
        top = example_images[unit][example_images[unit] >= 0]
        of_class = int((held_out_labels[top] == unit).sum())
        results.append(
            ClassResult(
                unit=unit,
                name=kind.name,
                kind=kind.kind,
                render_value=rendered.objective[unit],
                best_example_value=float(example_values[unit][0]),
                render_hit=rendered.objective[unit] >= float(example_values[unit][0]),
                feature=feature,
                feature_hit=feature_hit,
                tuning_peak=tuning_peak,
                tuning_hit=tuning_hit,
                examples_of_class=of_class,
                examples_hit=of_class >= TOP_NEEDED,
                top_input=int(incoming[unit][0]),
            )
        )
    return GroundTruth(
        classes=results,
        distinct_top_inputs=len({r.top_input for r in results}),
        renders=rendered.images,
    )
