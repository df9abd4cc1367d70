"""Tuning plots: valid, accessible, deterministic SVG that states its finding in words."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rendering.engine.stimuli import COLOUR, CURVES, GRATINGS
from rendering.engine.tuning import UnitCurve
from rendering.plots import LINE_COLOURS, histogram_svg, tuning_svg

SVG = "{http://www.w3.org/2000/svg}"


def _gratings_curve(peak_orientation: float = 30.0) -> UnitCurve:
    orientation, frequency = np.meshgrid(*(a.values for a in GRATINGS.axes), indexing="ij")
    responses = (1 + np.cos(np.radians(2 * (orientation - peak_orientation)))) * (
        1 + (frequency == 2)
    )
    return UnitCurve("gratings", 12, GRATINGS.axes, responses, 0.1)


def _colour_curve() -> UnitCurve:
    hues = COLOUR.axes[0].values
    return UnitCurve("colour", 3, COLOUR.axes, np.cos(np.radians(hues - 240)), -0.2)


def _contrast(colour: str) -> float:
    """WCAG contrast ratio of a #rrggbb colour against white."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


def test_a_plot_is_an_accessible_svg_image_with_a_title_and_a_description() -> None:
    root = ET.fromstring(tuning_svg(_gratings_curve(), title="mixed3b 12: gratings"))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("viewBox", "").startswith("0 0 320 ")
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "mixed3b 12: gratings"
    assert desc is not None and desc.text is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert "orientation 30°, frequency 2 cycles/RF" in desc.text
    assert "activation 4" in desc.text and "blank grey 0.1" in desc.text
    assert "Orientation selectivity (1 - circular variance) 0.50" in desc.text


def test_two_parameters_draw_one_distinguishable_line_per_value_of_the_second() -> None:
    root = ET.fromstring(tuning_svg(_gratings_curve(), title="t"))
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 6  # frequencies
    styles = {(line.get("stroke"), line.get("stroke-dasharray")) for line in lines}
    assert len(styles) == 6
    # Orientation is circular: each line closes at 180° on its 0° value, 13 points.
    assert all(len((line.get("points") or "").split()) == 13 for line in lines)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "lines: frequency (cycles/RF)" in texts
    assert {"1", "2", "3", "4", "6", "8"} <= set(texts)  # the legend
    assert {"0", "45", "90", "135", "180"} <= set(texts)  # orientation ticks
    assert "orientation (°)" in texts and "activation" in texts


def test_the_strongest_line_peaks_highest_on_the_plot() -> None:
    root = ET.fromstring(tuning_svg(_gratings_curve(peak_orientation=90), title="t"))
    frequency_two = root.findall(f"{SVG}polyline")[1]
    points = [tuple(map(float, p.split(","))) for p in (frequency_two.get("points") or "").split()]
    highest = min(points, key=lambda p: p[1])  # SVG y grows downwards
    assert highest[0] == pytest.approx(46 + 238 / 2, abs=0.1)  # orientation 90°, mid-axis


def test_hue_draws_one_bar_per_hue_filled_with_that_hue() -> None:
    root = ET.fromstring(tuning_svg(_colour_curve(), title="colour"))
    bars = root.findall(f"{SVG}rect")[1:]  # after the white ground
    assert len(bars) == 24
    assert bars[0].get("fill") == "#ff0000" and bars[8].get("fill") == "#00ff00"
    assert all(bar.get("stroke") == "#222222" for bar in bars)  # outlined: yellow shows too
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "hue 240°" in (desc.text or "")


def test_the_same_data_gives_the_same_string_and_other_data_another_id() -> None:
    first = tuning_svg(_gratings_curve(), title="t")
    assert first == tuning_svg(_gratings_curve(), title="t")
    other = tuning_svg(_gratings_curve(peak_orientation=60), title="t")
    assert ET.fromstring(first).get("aria-labelledby") != ET.fromstring(other).get(
        "aria-labelledby"
    )
    assert len(first) < 8000


def test_titles_are_escaped() -> None:
    svg = tuning_svg(_colour_curve(), title='<script>&"x"</script>\x00')
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == '<script>&"x"</script>'


def test_curves_plot_orientation_around_the_full_circle() -> None:
    responses = np.arange(80.0).reshape(16, 5)
    root = ET.fromstring(tuning_svg(UnitCurve("curves", 0, CURVES.axes, responses, 0), title="c"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"0", "90", "180", "270", "360"} <= set(texts)
    assert "lines: curvature (RF/radius)" in texts


def test_line_colours_contrast_at_least_3_to_1_with_the_white_ground() -> None:
    assert all(_contrast(colour) >= 3.0 for colour in LINE_COLOURS)


def test_three_parameters_are_refused() -> None:
    axes = (*GRATINGS.axes, COLOUR.axes[0])
    with pytest.raises(ValueError, match="one or two parameters"):
        tuning_svg(UnitCurve("x", 0, axes, np.zeros((12, 6, 24)), 0.0), title="x")


EDGES = [-1.0, 0.0, 1.0, 2.0, 4.0]  # six bins: below -1, [-1, 0), ..., from 4 up


def test_a_histogram_draws_its_filled_range_and_says_where_the_values_lie() -> None:
    svg = histogram_svg([0, 0, 3, 7, 2, 0], title="Spatial maxima & more", edges=EDGES)
    root = ET.fromstring(svg)
    bars = root.findall(f"{SVG}rect")[1:]
    assert len(bars) == 3  # the empty bins at either end are left out
    heights = [float(bar.get("height") or 0) for bar in bars]
    assert heights[1] > heights[0] > heights[2] > 0
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text == "12 values, all in [0, 4); the fullest bin, [1, 2), holds 7."
    assert svg == histogram_svg([0, 0, 3, 7, 2, 0], title="Spatial maxima & more", edges=EDGES)


def test_a_histogram_names_its_open_ended_bins_and_its_emptiness() -> None:
    root = ET.fromstring(histogram_svg([1, 0, 0, 0, 0, 5], title="t", edges=EDGES))
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text == "6 values, all in [-inf, inf); the fullest bin, [4, inf), holds 5."
    empty = ET.fromstring(histogram_svg([0] * 6, title="t", edges=EDGES))
    assert [d.text for d in empty.iter(f"{SVG}desc")] == ["No values."]
    with pytest.raises(ValueError, match="6 counts need 5 edges, got 3"):
        histogram_svg([0] * 6, title="t", edges=[0.0, 1.0, 2.0])


def test_a_histogram_heading_always_fits_and_its_axis_says_the_bins_are_log_spaced() -> None:
    room = 320 - 16
    for title in ("Per-image maximum of mixed4a:0", "Per-image maximum of " + "x" * 80):
        root = ET.fromstring(histogram_svg([0, 0, 3, 7, 2, 0], title=title, edges=EDGES))
        heading = next(t for t in root.iter(f"{SVG}text") if t.get("font-weight") == "600")
        assert heading.text == title
        size = float(heading.get("font-size"))
        assert len(title) * size * 0.62 <= room + 0.5  # the whole title fits in the plot
    short = ET.fromstring(
        histogram_svg([1, 2], title="Per-image maximum of mixed4a:0", edges=[0.0])
    )
    texts = [t.text for t in short.iter(f"{SVG}text")]
    assert "value (bins spaced logarithmically)" in texts
    heading_size = float(
        next(t for t in short.iter(f"{SVG}text") if t.get("font-weight")).get("font-size")
    )
    assert heading_size == 11  # a title of the unit page's length keeps the full size
