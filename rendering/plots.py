"""Unit plots as small, accessible SVG: plain strings, no JavaScript, no matplotlib.

Tuning curves (`tuning_svg`) and histograms of a unit's activations (`histogram_svg`). Each
plot is an `<svg role="img">` with a `<title>` and a `<desc>` stating its finding in words (the
preferred stimulus; where the values lie), so a screen reader or a page without images gets
it, and a `viewBox` so it scales down on phones. Two-parameter families draw one line per
value of the second parameter across the first (response against orientation, one line per
curvature), each line in its own colour *and* dash pattern; hue draws one bar per hue, filled
with that hue and outlined, so light hues stay visible. Every mark contrasts at least 3:1 with
the white ground (WCAG 1.4.11), text at least 4.5:1. Same data, same string: ids derive from
a hash of the content.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from collections.abc import Sequence
from xml.sax.saxutils import escape

import numpy as np

from rendering.engine.stimuli import Axis
from rendering.engine.tuning import UnitCurve

__all__ = ["LINE_COLOURS", "histogram_svg", "tuning_svg"]

WIDTH = 320
LEFT, RIGHT, TOP = 46, 36, 28  # plot area margins; the right one holds "blank"
PLOT_HEIGHT = 128
LEGEND_HEIGHT = 36  # a caption row and a row of line samples
INK = "#222222"  # text: 16:1 on white
AXIS = "#595959"  # axis lines and ticks: 7:1
GRID = "#e6e6e6"  # decorative gridlines only
BASELINE = "#666666"  # the blank-image response: 5.7:1
# Line colours for successive values of the second parameter: each at least 3:1 on white.
LINE_COLOURS = ("#1b4f9c", "#c0392b", "#1e7b3a", "#7b3fa0", "#a35200", "#333333")
DASHES = ("", "6 3", "2 2", "8 3 2 3", "4 4", "1 3")
HEADING_EM = 0.62  # average width of a bold sans-serif character, in ems, generously
FONT = 'font-family="system-ui, -apple-system, sans-serif" font-size="11"'
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def tuning_svg(curve: UnitCurve, *, title: str) -> str:
    """One unit's tuning to one family as an SVG document (about 320 x 200 px)."""
    if curve.responses.ndim != len(curve.axes) or not 1 <= len(curve.axes) <= 2:
        raise ValueError(
            f"can plot one or two parameters, got {len(curve.axes)} with responses "
            f"of shape {curve.responses.shape}"
        )
    responses = np.asarray(curve.responses, dtype=np.float64)
    low = min(0.0, float(responses.min()), curve.baseline)
    high = max(float(responses.max()), curve.baseline)
    y_ticks = _ticks(low, high if high > low else low + 1.0)
    y = _Scale(y_ticks[0], y_ticks[-1], TOP + PLOT_HEIGHT, TOP)
    if len(curve.axes) == 2:
        marks, x, x_ticks, legend = _lines(curve.axes, responses, y)
    else:
        marks, x, x_ticks = _bars(curve.axes[0], responses, y)
        legend = []
    bottom = TOP + PLOT_HEIGHT
    height = bottom + 38 + (LEGEND_HEIGHT if legend else 0)
    body = [
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        _heading(title),
        *_frame(x, y, x_ticks, y_ticks, curve.axes[0].label),
        *marks,
        *_baseline(curve.baseline, y),
        *legend,
    ]
    return _document(title, _description(curve), body, height)


HISTOGRAM_X_LABEL = "value (bins spaced logarithmically)"


def histogram_svg(
    counts: Sequence[int],
    *,
    title: str,
    edges: Sequence[float] | None = None,
    x_label: str = HISTOGRAM_X_LABEL,
    y_label: str = "count",
) -> str:
    """A histogram as an SVG document: bar k counts values in [edges[k-1], edges[k]).

    Bin 0 is everything below edges[0] and the last bin everything from edges[-1] up, as in
    rendering.engine.statistics (whose symmetric-log `HISTOGRAM_EDGES` are the default). Empty
    bins at either end are left out; bars have equal widths, one per bin, so the axis is only
    linear in the bin number: `x_label` says how the bins are spaced.
    """
    if edges is None:
        from rendering.engine.statistics import HISTOGRAM_EDGES

        edges = [float(edge) for edge in HISTOGRAM_EDGES]
    if len(counts) != len(edges) + 1:
        raise ValueError(f"{len(counts)} counts need {len(counts) - 1} edges, got {len(edges)}")
    filled = [k for k, count in enumerate(counts) if count]
    first, last = (filled[0], filled[-1]) if filled else (0, len(counts) - 1)
    shown = [int(count) for count in counts[first : last + 1]]
    y_ticks = _ticks(0.0, float(max(shown, default=0)) or 1.0)
    y = _Scale(y_ticks[0], y_ticks[-1], TOP + PLOT_HEIGHT, TOP)
    x = _Scale(first, last + 1, LEFT, WIDTH - RIGHT)  # bin k spans k .. k + 1
    width = x(first + 1) - x(first)
    marks = [
        f'<rect x="{_n(x(k))}" y="{_n(y(count))}" width="{_n(width)}" '
        f'height="{_n(y(0) - y(count))}" fill="{LINE_COLOURS[0]}"/>'
        for k, count in enumerate(shown, start=first)
        if count
    ]
    # Boundaries k (between bins k - 1 and k) inside the shown range, about four labelled.
    inner = list(range(first + 1, last + 1))
    labelled = inner[:: max(1, math.ceil(len(inner) / 4))]
    bottom = TOP + PLOT_HEIGHT
    height = bottom + 38
    ticks = []
    for k in labelled:
        at = _n(x(k))
        ticks.append(f'<line x1="{at}" y1="{bottom}" x2="{at}" y2="{bottom + 4}" stroke="{AXIS}"/>')
        ticks.append(
            f'<text x="{at}" y="{bottom + 15}" text-anchor="middle" fill="{INK}">'
            f"{_number(edges[k - 1])}</text>"
        )
    body = [
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        _heading(title),
        *_frame(x, y, [], y_ticks, x_label, y_label=y_label),
        *ticks,
        *marks,
    ]
    return _document(title, _histogram_description(counts, edges, first, last), body, height)


def _histogram_description(
    counts: Sequence[int], edges: Sequence[float], first: int, last: int
) -> str:
    total = sum(int(count) for count in counts)
    if not total:
        return "No values."

    def low(k: int) -> str:
        return "-inf" if k == 0 else _number(edges[k - 1])

    def high(k: int) -> str:
        return "inf" if k == len(edges) else _number(edges[k])

    fullest = max(range(len(counts)), key=lambda k: counts[k])
    return (
        f"{total} values, all in [{low(first)}, {high(last)}); the fullest bin, "
        f"[{low(fullest)}, {high(fullest)}), holds {int(counts[fullest])}."
    )


def _document(title: str, summary: str, body: list[str], height: int) -> str:
    """The <svg> element around `body`, labelled by its title and description."""
    digest = hashlib.sha256("\n".join([title, summary, *body]).encode()).hexdigest()[:10]
    ident = f"plot-{digest}"
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
            f'width="{WIDTH}" height="{height}" role="img" '
            f'aria-labelledby="{ident}-title {ident}-desc" '
            f'style="max-width:100%;height:auto" {FONT}>',
            f'<title id="{ident}-title">{_text(title)}</title>',
            f'<desc id="{ident}-desc">{_text(summary)}</desc>',
            *body,
            "</svg>",
        ]
    )


class _Scale:
    """Linear map from data values to SVG coordinates."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        self.low, self.high, self.start, self.end = low, high, start, end

    def __call__(self, value: float) -> float:
        fraction = (value - self.low) / (self.high - self.low)
        return self.start + fraction * (self.end - self.start)


def _lines(
    axes: Sequence[Axis], responses: np.ndarray, y: _Scale
) -> tuple[list[str], _Scale, list[float], list[str]]:
    across, series = axes
    values = [float(v) for v in across.values]
    if across.period is not None:
        low, high = 0.0, across.period
        ticks = [across.period * i / 4 for i in range(5)]
    else:
        ticks = _ticks(min(values), max(values))
        low, high = ticks[0], ticks[-1]
    x = _Scale(low, high, LEFT, WIDTH - RIGHT)
    marks = []
    legend_y = TOP + PLOT_HEIGHT + 66
    legend = [
        f'<text x="{LEFT}" y="{legend_y - 12}" fill="{INK}">lines: {_text(series.label)}</text>'
    ]
    legend_x = float(LEFT)
    step = (WIDTH - 8 - LEFT) / len(series.values)  # the legend may use the right margin
    for j, value in enumerate(series.values):
        colour, dash = LINE_COLOURS[j % len(LINE_COLOURS)], DASHES[j % len(DASHES)]
        column = [float(r) for r in responses[:, j]]
        points = list(zip(values, column, strict=True))
        if across.period is not None:
            points.append((values[0] + across.period, column[0]))  # close the circle
        path = " ".join(f"{_n(x(a))},{_n(y(b))}" for a, b in points)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        marks.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" '
            f'stroke-width="1.75" stroke-linejoin="round"{style}/>'
        )
        left = legend_x + j * step
        legend.append(
            f'<line x1="{_n(left)}" y1="{legend_y}" x2="{_n(left + 16)}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="1.75"{style}/>'
        )
        legend.append(
            f'<text x="{_n(left + 19)}" y="{legend_y + 4}" fill="{INK}">{_number(value)}</text>'
        )
    return marks, x, ticks, legend


def _bars(axis: Axis, responses: np.ndarray, y: _Scale) -> tuple[list[str], _Scale, list[float]]:
    values = [float(v) for v in axis.values]
    spacing = (values[-1] - values[0]) / (len(values) - 1) if len(values) > 1 else 1.0
    x = _Scale(values[0] - spacing / 2, values[-1] + spacing / 2, LEFT, WIDTH - RIGHT)
    if axis.period is not None:
        ticks = [t for t in (axis.period * i / 4 for i in range(5)) if x.low <= t <= x.high]
    else:
        ticks = values[:: max(1, len(values) // 5)]
    width = abs(x(spacing) - x(0)) * 0.8
    zero = y(0.0)  # the value range always includes 0
    marks = []
    for value, response in zip(values, responses, strict=True):
        fill = _hue_hex(value) if axis.name == "hue" else LINE_COLOURS[0]
        top = y(float(response))
        marks.append(
            f'<rect x="{_n(x(value) - width / 2)}" y="{_n(min(top, zero))}" width="{_n(width)}" '
            f'height="{_n(abs(zero - top))}" fill="{fill}" stroke="{INK}" stroke-width="0.75"/>'
        )
    return marks, x, ticks


def _frame(
    x: _Scale,
    y: _Scale,
    x_ticks: Sequence[float],
    y_ticks: Sequence[float],
    x_label: str,
    *,
    y_label: str = "activation",
) -> list[str]:
    bottom, right = TOP + PLOT_HEIGHT, WIDTH - RIGHT
    parts = []
    for tick in y_ticks:
        at = _n(y(tick))
        parts.append(f'<line x1="{LEFT}" y1="{at}" x2="{right}" y2="{at}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{LEFT - 5}" y="{at}" dy="0.35em" text-anchor="end" fill="{INK}">'
            f"{_number(tick)}</text>"
        )
    for tick in x_ticks:
        at = _n(x(tick))
        parts.append(f'<line x1="{at}" y1="{bottom}" x2="{at}" y2="{bottom + 4}" stroke="{AXIS}"/>')
        parts.append(
            f'<text x="{at}" y="{bottom + 15}" text-anchor="middle" fill="{INK}">'
            f"{_number(tick)}</text>"
        )
    middle = _n((LEFT + right) / 2)
    parts += [
        f'<path d="M{LEFT},{TOP}V{bottom}H{right}" fill="none" stroke="{AXIS}"/>',
        f'<text x="{middle}" y="{bottom + 30}" text-anchor="middle" fill="{INK}">'
        f"{_text(x_label)}</text>",
        f'<text transform="translate(11 {_n(TOP + PLOT_HEIGHT / 2)}) rotate(-90)" '
        f'text-anchor="middle" fill="{INK}">{_text(y_label)}</text>',
    ]
    return parts


def _heading(title: str) -> str:
    """The visible title, in a smaller font when long, so that it always fits (never clipped:
    keep titles short enough to stay readable)."""
    room = WIDTH - 16
    size = min(11.0, math.floor(10 * room / (max(len(title), 1) * HEADING_EM)) / 10)
    return (
        f'<text x="8" y="17" fill="{INK}" font-weight="600" font-size="{_n(size)}">'
        f"{_text(title)}</text>"
    )


def _baseline(value: float, y: _Scale) -> list[str]:
    at = _n(y(value))
    return [
        f'<line x1="{LEFT}" y1="{at}" x2="{WIDTH - RIGHT}" y2="{at}" stroke="{BASELINE}" '
        f'stroke-width="1" stroke-dasharray="1 2"/>',
        f'<text x="{WIDTH - RIGHT + 3}" y="{at}" dy="0.35em" fill="{BASELINE}" '
        f'font-size="10">blank</text>',
    ]


def _description(curve: UnitCurve) -> str:
    summary = curve.summary()
    preferred = ", ".join(axis.describe(summary.preferred[axis.name]) for axis in curve.axes)
    sentences = [
        f"Unit {curve.unit}, {curve.family}: strongest response at {preferred} "
        f"(activation {_number(summary.peak)}; mean {_number(summary.mean)}; "
        f"blank grey {_number(summary.baseline)}).",
        f"Selectivity {summary.selectivity:.2f}.",
    ]
    sentences += [
        f"{name.capitalize()} selectivity (1 - circular variance) {value:.2f}."
        for name, value in summary.circular_selectivity.items()
    ]
    return " ".join(sentences)


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of 10."""
    if not high > low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [i * step for i in range(first, last + 1)]


def _hue_hex(hue: float) -> str:
    red, green, blue = colorsys.hsv_to_rgb((hue % 360.0) / 360.0, 1.0, 1.0)
    return "#" + "".join(f"{round(c * 255):02x}" for c in (red, green, blue))


def _n(value: float) -> str:
    """A coordinate: one decimal, no trailing zeros, never "-0"."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _number(value: float) -> str:
    """A value for people to read: up to 3 significant digits."""
    text = f"{value:.3g}"
    return "0" if text == "-0" else text


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value))
