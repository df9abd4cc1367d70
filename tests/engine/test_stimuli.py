"""Synthetic stimuli: each family draws what its parameters say, where the placement says."""

import colorsys
import math

import numpy as np
import pytest

from rendering.engine.stimuli import (
    CURVES,
    FAMILIES,
    GRATINGS,
    Placement,
    colour_patches,
    curves,
    gratings,
    hue_to_rgb,
)

OFF_CENTRE = Placement(96, (40.0, 55.5), 50.0)


def _ink(image: np.ndarray) -> np.ndarray:
    """|stimulus - grey| summed over colour: where something is drawn, and how strongly."""
    return np.abs(image - 0.5).sum(axis=0)


def _moments(weights: np.ndarray, placement: Placement) -> tuple[float, float, np.ndarray]:
    """Centre of mass (row, col) and the 2x2 covariance in (x, y-up) coordinates."""
    rows, cols = np.indices(weights.shape, dtype=np.float64)
    total = weights.sum()
    cy, cx = (weights * rows).sum() / total, (weights * cols).sum() / total
    x, y = cols - cx, cy - rows
    cov = np.array(
        [
            [(weights * x * x).sum(), (weights * x * y).sum()],
            [(weights * x * y).sum(), (weights * y * y).sum()],
        ]
    )
    return cy, cx, cov / total


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_draws_float32_rgb_images_in_the_unit_range(name: str) -> None:
    family = FAMILIES[name]
    images = family.images(Placement.centred(40, 30))
    assert images.shape == (len(family), 3, 40, 40)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.max() - images.min() > 0.9  # full contrast, not a faint sketch


@pytest.mark.parametrize(
    ("orientation", "frequency"), [(0.0, 6.0), (30.0, 6.0), (45.0, 4.0), (120.0, 9.0)]
)
def test_a_gratings_dominant_fft_frequency_matches_its_parameters(
    orientation: float, frequency: float
) -> None:
    # The aperture spans the image, so cycles per receptive field are cycles per image.
    stimuli = gratings(
        size=64, extent=64, orientations=[orientation], frequencies=[frequency], phases=[0]
    )
    pad = 512  # zero-padding interpolates the spectrum: bins of 1/8 cycle per image
    spectrum = np.abs(np.fft.fft2(stimuli.images[0, 0] - 0.5, s=(pad, pad)))
    k_row, k_col = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    fy, fx = np.fft.fftfreq(pad, 1 / 64)[[k_row, k_col]]  # cycles per image
    assert math.hypot(fx, fy) == pytest.approx(frequency, abs=0.2)
    # The wave vector, y up, is perpendicular to the bars.
    bars = (math.degrees(math.atan2(-fy, fx)) - 90) % 180
    assert min(abs(bars - orientation), 180 - abs(bars - orientation)) < 2.0


def test_a_gratings_phase_sets_the_value_at_its_centre() -> None:
    stimuli = gratings(size=33, extent=33, orientations=[30], frequencies=[2], phases=[90, 270])
    assert stimuli.images[:, :, 16, 16] == pytest.approx(np.array([[1.0] * 3, [0.0] * 3]))


@pytest.mark.parametrize("orientation", [0.0, 22.5, 90.0, 157.5, 200.0])
def test_a_curve_of_curvature_zero_is_a_straight_segment_along_its_orientation(
    orientation: float,
) -> None:
    placement = Placement.centred(96, 80)
    stimuli = curves(
        size=96, extent=80, orientations=[orientation], curvatures=[0], polarities=[-1]
    )
    weights = _ink(stimuli.images[0])
    _, _, cov = _moments(weights, placement)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    major = eigenvectors[:, 1]
    angle = math.degrees(math.atan2(major[1], major[0])) % 180
    assert min(abs(angle - orientation % 180), 180 - abs(angle - orientation % 180)) < 0.5
    assert math.sqrt(eigenvalues[0]) < 1.5  # as thin as the 4 px stroke
    # Pixels at least half covered span the arc's 0.6 extent plus a round cap at each end.
    x, y = placement.coordinates()
    theta = math.radians(orientation)
    along: np.ndarray = x * math.cos(theta) + y * math.sin(theta)
    drawn = along[weights >= 0.75]
    assert drawn.max() - drawn.min() == pytest.approx(0.6 * 80 + 4, abs=1.5)


def test_more_curvature_bends_the_curve_further_from_a_line() -> None:
    stimuli = curves(size=96, extent=80, orientations=[60], polarities=[1])
    assert list(stimuli.parameters["curvature"]) == [0, 1.25, 2.5, 3.75, 5]
    spreads = []
    for image in stimuli.images:
        _, _, cov = _moments(_ink(image), Placement.centred(96, 80))
        spreads.append(np.linalg.eigvalsh(cov)[0])  # variance across the best-fit line
    assert all(a < b for a, b in zip(spreads, spreads[1:], strict=False))


@pytest.mark.parametrize("orientation", [0.0, 90.0, 135.0, 270.0])
def test_a_curve_bends_left_of_its_orientation_so_its_middle_bulges_right(
    orientation: float,
) -> None:
    placement = Placement.centred(96, 80)
    image = curves(
        size=96, extent=80, orientations=[orientation], curvatures=[3.75], polarities=[-1]
    ).images[0]
    weights = _ink(image)
    x, y = placement.coordinates()
    theta = math.radians(orientation)
    along = x * math.cos(theta) + y * math.sin(theta)
    towards_bulge = x * math.sin(theta) - y * math.cos(theta)  # orientation - 90°
    middle = np.abs(along) < 4
    ends = np.abs(along) > 15
    bulge_middle = (weights * towards_bulge)[middle].sum() / weights[middle].sum()
    bulge_ends = (weights * towards_bulge)[ends].sum() / weights[ends].sum()
    # Radius 80 / 3.75, half-angle 0.3 * 3.75 rad; the ink's centroid sits R sin(a) / a from
    # the centre of curvature, so the middle of the arc lies R (1 - sin(a) / a) beyond it.
    radius, half_angle = 80 / 3.75, 0.3 * 3.75
    assert bulge_middle == pytest.approx(radius * (1 - math.sin(half_angle) / half_angle), abs=0.6)
    assert bulge_ends < -3


def test_curve_polarity_draws_dark_or_light_strokes() -> None:
    stimuli = curves(size=48, extent=40, orientations=[0], curvatures=[0])
    dark, light = stimuli.images
    assert list(stimuli.parameters["polarity"]) == [-1, 1]
    assert dark.min() == 0.0 and dark.max() == 0.5
    assert light.min() == 0.5 and light.max() == 1.0


def test_a_colour_patch_round_trips_its_hue_through_colorsys() -> None:
    hues = np.arange(0, 360, 7.5)
    stimuli = colour_patches(size=32, extent=24, hues=hues)
    for hue, image in zip(hues, stimuli.images, strict=True):
        h, s, v = colorsys.rgb_to_hsv(*image[:, 15, 16].astype(float))
        assert (h * 360 - hue + 180) % 360 - 180 == pytest.approx(0, abs=1e-3)
        assert (s, v) == pytest.approx((1.0, 1.0), abs=1e-6)


def test_hue_to_rgb_is_colorsys_hsv_to_rgb_at_full_saturation_and_value() -> None:
    hues = np.linspace(-30, 400, 97)
    expected = [colorsys.hsv_to_rgb((h % 360) / 360, 1, 1) for h in hues]
    assert hue_to_rgb(hues) == pytest.approx(np.array(expected), abs=1e-12)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_stimulus_is_centred_on_the_placement(name: str) -> None:
    for image in FAMILIES[name].images(OFF_CENTRE):
        cy, cx, _ = _moments(_ink(image), OFF_CENTRE)
        assert (cy, cx) == pytest.approx(OFF_CENTRE.centre, abs=0.2)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_everything_outside_the_aperture_is_mid_grey(name: str) -> None:
    images = FAMILIES[name].images(OFF_CENTRE)
    rows, cols = np.indices((96, 96))
    outside = np.hypot(rows - 40.0, cols - 55.5) >= 25.0
    assert np.all(images[:, :, outside] == np.float32(0.5))
    inside = np.hypot(rows - 40.0, cols - 55.5) < 0.5 * 25.0
    assert np.abs(images[:, :, inside] - 0.5).max() == 0.5


def test_images_follow_the_parameter_grid_with_the_pooled_axis_fastest() -> None:
    grid = GRATINGS.parameter_grid()
    assert len(grid["orientation"]) == len(GRATINGS) == 12 * 6 * 4
    assert list(grid["phase"][:5]) == [0, 90, 180, 270, 0]
    assert list(grid["frequency"][:5]) == [1, 1, 1, 1, 2]
    index = 4 * (6 * 5 + 2) + 3  # orientation 75°, frequency 3, phase 270°
    assert (grid["orientation"][index], grid["frequency"][index]) == (75, 3)
    alone = gratings(size=40, extent=30, orientations=[75], frequencies=[3], phases=[270])
    chunk = GRATINGS.images(Placement.centred(40, 30), index, index + 1)
    assert np.array_equal(chunk, alone.images)


def test_stimuli_are_deterministic() -> None:
    first = CURVES.images(OFF_CENTRE, 0, 20)
    assert np.array_equal(first, CURVES.images(OFF_CENTRE, 0, 20))


def test_bad_parameters_are_value_errors() -> None:
    with pytest.raises(ValueError, match="has no parameters"):
        CURVES.with_values(radius=[1])
    with pytest.raises(ValueError, match="longer than its circle"):
        curves(size=32, extent=20, curvatures=[20])
    with pytest.raises(ValueError, match="extent must be positive"):
        Placement(32, (16, 16), 0)
