"""Tuning curves: hand-set detectors prefer what they were built to detect."""

import json
import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from rendering.engine.stimuli import COLOUR, FAMILIES, GRATINGS, Axis, Placement
from rendering.engine.tuning import UnitCurve, map_centre, tuning_curves, tuning_summary

GABOR_ORIENTATION = 30.0  # degrees, bars' direction as in stimuli
GABOR_FREQUENCY = 2.0  # cycles per receptive field
FIELD = 11  # the conv's kernel: the receptive field


def _gabor(size: int) -> Tensor:
    """A zero-mean even Gabor on luminance: bars along GABOR_ORIENTATION."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = -offsets[:, None], offsets[None, :]
    theta = math.radians(GABOR_ORIENTATION)
    across = -x * math.sin(theta) + y * math.cos(theta)
    envelope = torch.exp(-(x**2 + y**2) / (2 * (size / 4) ** 2))
    kernel = envelope * torch.cos(2 * math.pi * GABOR_FREQUENCY / size * across)
    kernel = kernel - kernel.mean()
    return kernel.expand(3, size, size) / 3


def _opponent(size: int, red: float, green: float, blue: float) -> Tensor:
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    blob = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * (size / 4) ** 2))
    return torch.stack([red * blob, green * blob, blue * blob])


class Detectors(nn.Module):
    """Channel 0: an oriented Gabor; 1: red minus cyan; 2: blue minus yellow. Then a head."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, FIELD, stride=stride, padding=FIELD // 2, bias=False)
        self.relu = nn.ReLU()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.stack(
                    [
                        _gabor(FIELD),
                        _opponent(FIELD, 2, -1, -1),
                        _opponent(FIELD, -1, -1, 2),
                    ]
                )
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.relu(self.conv(x)))


class BranchingDetectors(Detectors):
    """Data-dependent control flow: torch.fx cannot trace it, so the forward is hooked."""

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu(self.conv(x))
        if h.mean() < 0:
            h = -h
        return self.head(h)


@pytest.fixture
def detectors() -> Detectors:
    torch.manual_seed(0)
    return Detectors().eval()


SMALL_GRATINGS = {"gratings": GRATINGS.with_values(frequency=[1, 2, 3, 4])}


def test_a_gabor_prefers_its_orientation_and_frequency(detectors: Detectors) -> None:
    curves = tuning_curves(
        detectors, "relu", [0], input_size=32, receptive_field=FIELD, families=SMALL_GRATINGS
    )
    summary = curves["gratings"].unit(0).summary()
    assert tuning_summary(curves["gratings"], 0) == summary.as_dict()
    assert summary.preferred == {"orientation": GABOR_ORIENTATION, "frequency": GABOR_FREQUENCY}
    assert summary.peak > 10 * max(summary.baseline, 1e-3)
    # Orthogonal gratings barely drive it: sharply tuned.
    assert summary.circular_selectivity["orientation"] > 0.5


def test_colour_opponent_units_prefer_their_hues(detectors: Detectors) -> None:
    curves = tuning_curves(
        detectors, "relu", [1, 2], input_size=32, receptive_field=FIELD, families=FAMILIES
    )
    colour = curves["colour"]
    assert colour.unit(1).summary().preferred == {"hue": 0.0}
    assert colour.unit(2).summary().preferred == {"hue": 240.0}
    # Grey drives neither opponent channel: their weights sum to zero.
    assert colour.baseline == pytest.approx([0.0, 0.0], abs=1e-6)


def test_responses_have_one_row_per_unit_and_one_column_per_grid_point(
    detectors: Detectors,
) -> None:
    curves = tuning_curves(detectors, "relu", None, input_size=32, receptive_field=FIELD)
    assert set(curves) == {"curves", "gratings", "colour"}
    assert curves["curves"].responses.shape == (3, 16, 5)
    assert curves["gratings"].responses.shape == (3, 12, 6)
    assert curves["colour"].responses.shape == (3, 24)
    assert curves["colour"].units == (0, 1, 2)
    assert list(curves["gratings"].grid) == ["orientation", "frequency"]
    assert curves["colour"].baseline.shape == (3,)


def test_each_response_is_the_units_best_pooled_activation_at_the_centre(
    detectors: Detectors,
) -> None:
    curve = tuning_curves(
        detectors, "relu", [2, 0], input_size=32, receptive_field=FIELD, families=SMALL_GRATINGS
    )["gratings"]
    family = SMALL_GRATINGS["gratings"]
    row, col = curve.position or (-1, -1)
    for i, j in [(0, 0), (2, 1), (11, 3)]:
        start = (i * 4 + j) * 4  # four phases per grid point
        images = torch.from_numpy(family.images(curve.placement, start, start + 4))
        with torch.no_grad():
            acts = detectors.relu(detectors.conv(images))[:, :, row, col]
        expected = acts.amax(dim=0)[[2, 0]].double().numpy()
        # float32 sums of O(1) terms: near zero, the error is absolute
        assert curve.responses[:, i, j] == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_map_centre_takes_the_middle_or_the_lower_right_of_the_middle_two() -> None:
    assert map_centre((15, 15), 15) == ((7, 7), (7.0, 7.0))
    assert map_centre((15, 15), 30) == ((7, 7), (14.5, 14.5))
    assert map_centre((14, 14), 224) == ((7, 7), (119.5, 119.5))
    assert map_centre((7, 8), 224) == ((3, 4), (111.5, 125.5))
    with pytest.raises(ValueError, match="positive"):
        map_centre((0, 3), 32)


@pytest.mark.parametrize("network", [Detectors, BranchingDetectors])
@pytest.mark.parametrize(("input_size", "position"), [(30, (7, 7)), (32, (8, 8))])
def test_stimuli_sit_on_the_measured_centre_of_the_centre_positions_field(
    network: type[Detectors], input_size: int, position: tuple[int, int]
) -> None:
    # Stride 2 with symmetric padding: position i sees pixels 2i - 5 .. 2i + 5, centred on
    # 2i, half a pixel from the even-tiling estimate (2i + 0.5). Traced or hooked alike.
    model = network(stride=2).eval()
    curve = tuning_curves(
        model,
        "relu",
        [0],
        input_size=input_size,
        receptive_field=FIELD,
        families={"colour": COLOUR},
    )["colour"]
    assert curve.position == position
    assert curve.placement == Placement(input_size, (2.0 * position[0], 2.0 * position[1]), FIELD)


def test_a_non_spatial_layer_uses_its_vector_and_the_image_centre(detectors: Detectors) -> None:
    curve = tuning_curves(
        detectors, "head", [1, 3], input_size=33, receptive_field=33, families={"colour": COLOUR}
    )["colour"]
    assert curve.position is None
    assert curve.placement.centre == (16.0, 16.0)
    images = torch.from_numpy(COLOUR.images(curve.placement))
    with torch.no_grad():
        expected = detectors(images)[:, [1, 3]].T.double().numpy()
    assert curve.responses == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_the_model_is_left_exactly_as_found(detectors: Detectors) -> None:
    detectors.train()
    detectors.head.eval()
    calls: list[int] = []
    detectors.relu.register_forward_hook(lambda *_: calls.append(1))
    before = {name: m.training for name, m in detectors.named_modules()}
    grads = {name: p.requires_grad for name, p in detectors.named_parameters()}
    state = {k: v.clone() for k, v in detectors.state_dict().items()}

    tuning_curves(detectors, "relu", [0], input_size=32, receptive_field=FIELD)

    assert {name: m.training for name, m in detectors.named_modules()} == before
    assert {name: p.requires_grad for name, p in detectors.named_parameters()} == grads
    assert all(torch.equal(v, state[k]) for k, v in detectors.state_dict().items())
    assert len(detectors.relu._forward_hooks) == 1  # the caller's own hook, no more
    assert not any(m._forward_hooks for m in (detectors.conv, detectors.head))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": "nope"}, "unknown layer 'nope'.*layer_names"),
        ({"units": [3]}, r"unit indices \[3\] out of range"),
        ({"units": []}, "units is empty"),
        ({"map_size": (16, 16)}, r"has a \(32, 32\) map at 32 px, not \(16, 16\)"),
        ({"batch_size": 0}, "batch_size must be positive"),
    ],
)
def test_bad_arguments_are_value_errors(
    detectors: Detectors, kwargs: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"layer": "relu", "units": [0]} | kwargs
    with pytest.raises(ValueError, match=message):
        tuning_curves(
            detectors,
            arguments.pop("layer"),
            arguments.pop("units"),
            input_size=32,
            receptive_field=FIELD,
            **arguments,
        )


ORIENTATION = Axis("orientation", np.arange(12) * 15.0, "°", 180.0)
FREQUENCY = Axis("frequency", np.array([1.0, 2.0]), "cycles/RF")


def test_a_summary_states_the_preferred_point_and_how_selective_the_unit_is() -> None:
    # Tuned to 60° at frequency 2, untuned at frequency 1.
    tuned = 1 + np.cos(np.radians(2 * (ORIENTATION.values - 60)))
    responses = np.stack([np.full(12, 0.5), tuned], axis=1)
    summary = UnitCurve("gratings", 5, (ORIENTATION, FREQUENCY), responses, 0.25).summary()
    assert summary.preferred == {"orientation": 60.0, "frequency": 2.0}
    assert (summary.peak, summary.baseline) == (2.0, 0.25)
    assert summary.mean == pytest.approx(0.75)
    assert summary.selectivity == pytest.approx((2 - 0.75) / (2 + 0.75))
    # A raised cosine has resultant length 1/2; the flat profile none.
    assert summary.circular_selectivity == {"orientation": pytest.approx(0.5)}
    flat = UnitCurve("gratings", 5, (ORIENTATION, FREQUENCY), np.ones((12, 2)), 1.0)
    assert flat.summary().circular_selectivity == {"orientation": 0.0}
    assert flat.summary().selectivity == 0.0


def test_a_unit_curve_and_its_summary_round_trip_through_json() -> None:
    curve = UnitCurve("gratings", 5, (ORIENTATION, FREQUENCY), np.arange(24.0).reshape(12, 2), 0.5)
    assert json.loads(json.dumps(curve.summary().as_dict()))["preferred"] == {
        "orientation": 165.0,
        "frequency": 2.0,
    }
    again = UnitCurve.from_dict(json.loads(json.dumps(curve.as_dict())))
    assert again.summary() == curve.summary()
    assert np.array_equal(again.responses, curve.responses)
    assert [(a.name, a.unit, a.period) for a in again.axes] == [
        ("orientation", "°", 180.0),
        ("frequency", "cycles/RF", None),
    ]
    with pytest.raises(ValueError, match="do not match the axes"):
        UnitCurve.from_dict(curve.as_dict() | {"responses": [[1.0]]})


def test_inceptionv1s_same_padding_moves_the_centre_it_is_measured_at() -> None:
    # TF "SAME" padding pads right and bottom more: mixed3a's centre unit (14, 14) sees pixels
    # 90..148 (zoo.introspect's linearized measurement), centred on 119, not on 115.5.
    from lucent.modelzoo import inceptionv1

    torch.manual_seed(0)
    model = inceptionv1(pretrained=False)
    curve = tuning_curves(
        model,
        "mixed3a",
        [0],
        input_size=224,
        receptive_field=59,
        preprocess=lambda x: x * 255 - 117,
        families={"colour": COLOUR.with_values(hue=[0])},
    )["colour"]
    assert curve.position == (14, 14)
    assert curve.placement.centre == (119.0, 119.0)
