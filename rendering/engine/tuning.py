"""Tuning curves: every unit of a layer against each synthetic stimulus family.

A unit's tuning curve is its activation at the centre position of the layer's map (see
`map_centre`), as a function of a family's parameters, with every stimulus centred on that
position's receptive field. One forward per chunk of stimuli serves all units of the layer at
once; the forward stops at the layer (see truncation). Nuisance parameters (grating phase,
curve polarity) are max-pooled: the curve is the response to the best phase or polarity.

Where the receptive field is centred depends on padding conventions (TF "SAME" in lucent's
InceptionV1 puts mixed4a's centre unit 7.5 px right of and below an even tiling's guess), so
it is measured: the middle of the support of the input gradient of the position's summed
channels, over a few random images. This agrees to the pixel with zoo.introspect's linearized
measurement on InceptionV1, ResNet-50 and VGG19; where the support is clipped on one side by
the image border, the even-tiling estimate stands in on that axis.

Summaries (`UnitCurve.summary`) give what a page states in words: the preferred grid point,
its response against the mean and against a blank grey image, a selectivity index
`(peak - mean) / (|peak| + |mean|)` (0: flat, near 1: one stimulus only), and per circular
parameter `1 - circular variance` of the response along it (Ringach et al. 2002's orientation
selectivity; period 180° for grating orientation, 360° for curves and hue).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rendering.engine.loop import Preprocess
from rendering.engine.render import _as_index, _check_units, check_model_device
from rendering.engine.stimuli import FAMILIES, GREY, Axis, Family, Placement
from rendering.engine.truncation import Forward, frozen_eval, resolve_layer, truncate

__all__ = [
    "TuningCurve",
    "TuningSummary",
    "UnitCurve",
    "map_centre",
    "tuning_curves",
    "tuning_summary",
]

_PROBE_SEED = 1234
_CENTRE_PROBES = 4  # random images whose gradient supports are united to find the field


@dataclass(frozen=True)
class TuningSummary:
    """One unit's tuning to one family, in the numbers a page states."""

    family: str
    unit: int
    preferred: dict[str, float]  # the grid point with the largest response
    peak: float
    mean: float
    baseline: float  # response to a blank, all-grey image
    selectivity: float  # (peak - mean) / (|peak| + |mean|)
    # Per circular parameter: 1 - circular variance of (response - its minimum) along it,
    # at the preferred values of the other parameters. 0: untuned, 1: one value only.
    circular_selectivity: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class UnitCurve:
    """One unit's responses to one family: shape `tuple(len(a.values) for a in axes)`."""

    family: str
    unit: int
    axes: tuple[Axis, ...]
    responses: np.ndarray
    baseline: float

    def summary(self) -> TuningSummary:
        responses = self.responses
        best = np.unravel_index(int(np.argmax(responses)), responses.shape)
        peak, mean = float(responses[best]), float(responses.mean())
        scale = abs(peak) + abs(mean)
        circular = {}
        for i, axis in enumerate(self.axes):
            if axis.period is not None:
                profile = responses[best[:i] + (slice(None),) + best[i + 1 :]]
                circular[axis.name] = _circular_selectivity(profile, axis.values, axis.period)
        return TuningSummary(
            family=self.family,
            unit=self.unit,
            preferred={
                axis.name: float(axis.values[j]) for axis, j in zip(self.axes, best, strict=True)
            },
            peak=peak,
            mean=mean,
            baseline=self.baseline,
            selectivity=(peak - mean) / scale if scale > 0 else 0.0,
            circular_selectivity=circular,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: lists and floats only (what gets stored)."""
        return {
            "family": self.family,
            "unit": self.unit,
            "axes": [
                {
                    "name": axis.name,
                    "values": [float(v) for v in axis.values],
                    "unit": axis.unit,
                    "period": axis.period,
                }
                for axis in self.axes
            ],
            "responses": self.responses.astype(float).tolist(),
            "baseline": self.baseline,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnitCurve:
        axes = tuple(
            Axis(a["name"], np.asarray(a["values"], dtype=np.float64), a["unit"], a["period"])
            for a in data["axes"]
        )
        responses = np.asarray(data["responses"], dtype=np.float64)
        if responses.shape != tuple(len(axis.values) for axis in axes):
            raise ValueError(f"responses of shape {responses.shape} do not match the axes")
        return cls(data["family"], int(data["unit"]), axes, responses, float(data["baseline"]))


@dataclass(frozen=True, eq=False)
class TuningCurve:
    """All requested units' responses to one family: (len(units), *grid_shape), float64."""

    family: str
    axes: tuple[Axis, ...]
    units: tuple[int, ...]
    responses: np.ndarray
    baseline: np.ndarray  # (len(units),): the response to a blank, all-grey image
    position: tuple[int, int] | None  # the map position read; None for (N, C) layers
    placement: Placement

    @property
    def grid(self) -> dict[str, np.ndarray]:
        """{parameter: values}, in the order of the responses' axes after the unit's."""
        return {axis.name: axis.values for axis in self.axes}

    def unit(self, unit: int) -> UnitCurve:
        """The curve of channel `unit` (a channel index, not a row number)."""
        try:
            row = self.units.index(unit)
        except ValueError:
            raise ValueError(f"unit {unit} was not measured; units are {self.units}") from None
        return UnitCurve(
            self.family, unit, self.axes, self.responses[row], float(self.baseline[row])
        )


def tuning_summary(curve: TuningCurve, unit: int) -> dict[str, Any]:
    """`curve.unit(unit).summary()` as JSON-ready values, for storing beside the curve."""
    return curve.unit(unit).summary().as_dict()


def map_centre(
    map_size: tuple[int, int], input_size: int
) -> tuple[tuple[int, int], tuple[float, float]]:
    """The centre position of a (H, W) map, and an estimate of where its field is centred.

    Odd sides: the middle; even sides: the lower/right of the middle two (as
    objectives.neuron). The estimate takes the map to tile the input evenly, position i at
    (i + 0.5) * input_size / H - 0.5 pixels; padding conventions move the true centre by up
    to half a stride, which tuning_curves measures instead.
    """
    height, width = map_size
    if height < 1 or width < 1:
        raise ValueError(f"map_size must be positive, got {map_size}")
    row, col = height // 2, width // 2
    return (row, col), (
        (row + 0.5) * input_size / height - 0.5,
        (col + 0.5) * input_size / width - 0.5,
    )


def tuning_curves(
    model: nn.Module,
    layer: str,
    units: Sequence[int] | None,
    *,
    input_size: int,
    receptive_field: float,
    receptive_field_offset: float = 0.0,
    map_size: tuple[int, int] | None = None,
    preprocess: Preprocess | None = None,
    device: torch.device | str = "cpu",
    families: Mapping[str, Family] = FAMILIES,
    batch_size: int = 64,
) -> dict[str, TuningCurve]:
    """Tuning curves of `units` of `layer` (all when None) to each family, keyed by name.

    `receptive_field` is the aperture's diameter in input pixels (LayerInfo.receptive_field),
    `receptive_field_offset` where the layer's fields sit off their map cells' centres
    (LayerInfo.receptive_field_offset; the first guess of the centre, measured again here);
    `map_size`, when given, is checked against the layer's output; `preprocess` maps [0, 1]
    RGB to the model's input. The model's mode, flags and hooks are left as found.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if input_size < 1:
        raise ValueError(f"input_size must be positive, got {input_size}")
    device = torch.device(device)
    check_model_device(model, device)
    layer = resolve_layer(model, layer)
    preprocess = preprocess or _identity
    curves = {}
    with frozen_eval(model):
        generator = torch.Generator().manual_seed(_PROBE_SEED)
        probe = torch.rand((1, 3, input_size, input_size), generator=generator).to(device)
        # Outside inference mode: the first call per model checks a trace's gradient.
        forward = truncate(model, layer, preprocess(probe)).forward
        with torch.inference_mode():
            blank = forward(_model_input(torch.full_like(probe, GREY), preprocess))
        channels = blank.shape[1]
        unit_list = list(range(channels)) if units is None else [_as_index(u) for u in units]
        if not unit_list:
            raise ValueError("units is empty")
        _check_units(unit_list, channels, layer)
        position, centre = _position(blank, input_size, map_size, layer)
        if position is not None:
            centre = (centre[0] + receptive_field_offset, centre[1] + receptive_field_offset)
            centre = _measured_centre(
                forward, preprocess, position, centre, generator, input_size, device
            )
        placement = Placement(input_size, centre, receptive_field)
        with torch.inference_mode():
            index = torch.tensor(unit_list, device=device)
            baseline = _read(blank, index, position)[0]
            for family in families.values():
                responses = torch.cat(
                    [
                        _read(forward(_model_input(chunk, preprocess)), index, position)
                        for chunk in _chunks(family, placement, batch_size, device)
                    ]
                )
                pooled = responses.view(*family.grid_shape, family.pooled_count, len(unit_list))
                values = pooled.amax(dim=-2).movedim(-1, 0)
                curves[family.name] = TuningCurve(
                    family=family.name,
                    axes=family.axes,
                    units=tuple(unit_list),
                    responses=np.ascontiguousarray(values.numpy()),
                    baseline=baseline.numpy(),
                    position=position,
                    placement=placement,
                )
    return curves


def _identity(images: Tensor) -> Tensor:
    return images


def _model_input(images: Tensor, preprocess: Preprocess) -> Tensor:
    # NHWC, as in loop.Problem: faster convolutions and pooling on oneDNN and cuDNN.
    return preprocess(images).contiguous(memory_format=torch.channels_last)


def _chunks(
    family: Family, placement: Placement, batch_size: int, device: torch.device
) -> Iterator[Tensor]:
    """The family's images, drawn one batch at a time (all at once can be 100s of MB)."""
    for start in range(0, len(family), batch_size):
        yield torch.from_numpy(family.images(placement, start, start + batch_size)).to(device)


def _position(
    acts: Tensor, input_size: int, map_size: tuple[int, int] | None, layer: str
) -> tuple[tuple[int, int] | None, tuple[float, float]]:
    if acts.dim() == 2:
        middle = (input_size - 1) / 2
        return None, (middle, middle)
    if acts.dim() != 4:
        raise ValueError(f"layer {layer!r} outputs shape {tuple(acts.shape)}; need (N, C[, H, W])")
    found = (int(acts.shape[2]), int(acts.shape[3]))
    if map_size is not None and tuple(map_size) != found:
        raise ValueError(f"layer {layer!r} has a {found} map at {input_size} px, not {map_size}")
    return map_centre(found, input_size)


def _measured_centre(
    forward: Forward,
    preprocess: Preprocess,
    position: tuple[int, int],
    estimate: tuple[float, float],
    generator: torch.Generator,
    input_size: int,
    device: torch.device,
) -> tuple[float, float]:
    """Middle of the input-gradient support of `position` (see the module docstring)."""
    shape = (_CENTRE_PROBES, 3, input_size, input_size)
    images = torch.rand(shape, generator=generator).to(device).requires_grad_(True)
    acts = forward(preprocess(images))
    (grad,) = torch.autograd.grad(acts[:, :, position[0], position[1]].sum(), images)
    support = grad.abs().sum(dim=(0, 1)) > 0
    centre = []
    for axis, guess in zip((1, 0), estimate, strict=True):
        hits = support.any(dim=axis).nonzero().flatten()
        if len(hits) == 0:
            centre.append(guess)
            continue
        low, high = int(hits.min()), int(hits.max())
        clipped_one_side = (low == 0) != (high == input_size - 1)
        centre.append(guess if clipped_one_side else (low + high) / 2)
    return centre[0], centre[1]


def _read(acts: Tensor, units: Tensor, position: tuple[int, int] | None) -> Tensor:
    """(N, len(units)) float64 on the CPU: the units at `position`, or the (N, C) vector."""
    picked = acts[:, units] if position is None else acts[:, units, position[0], position[1]]
    return picked.double().cpu()


def _circular_selectivity(profile: np.ndarray, values: np.ndarray, period: float) -> float:
    weights = profile - profile.min()
    total = weights.sum()
    if total <= 0:
        return 0.0
    angles = 2 * np.pi * values / period
    return float(np.abs(np.sum(weights * np.exp(1j * angles))) / total)
