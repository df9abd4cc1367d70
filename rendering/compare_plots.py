"""Tuning curves of several units overlaid in one SVG (the compare page's tuning row).

Units of different layers and models answer on different scales, so each curve is divided
by its own largest |response| (the plot says so); a family swept over two parameters is drawn
against its first one, at the best value of the second. Each unit keeps its column's colour
and dash pattern. Plain strings, no JavaScript, like `rendering.plots`.
"""

from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np

from rendering.models import TuningCurve
from rendering.plots import DASHES, LINE_COLOURS

WIDTH, HEIGHT = 360, 210
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 30, 40


@dataclass(frozen=True)
class OverlaidCurve:
    label: str  # the unit, as the column names it
    axis: str  # the first parameter's name
    values: list[float]  # the first parameter's values
    response: list[float]  # normalized to [-1, 1]
    peak: float  # the largest |response| it was divided by


def overlaid_curve(curve: TuningCurve, label: str) -> OverlaidCurve:
    """`curve` along its first parameter (best over the others), divided by its peak."""
    responses = np.asarray(curve.responses, dtype=np.float64)
    if responses.ndim > 1:
        responses = responses.reshape(responses.shape[0], -1).max(axis=1)
    # The first axis's values (PostgreSQL's jsonb does not keep the keys' order: match sizes).
    axes = list(curve.grid.items())
    name, first = next(((k, v) for k, v in axes if len(v) == responses.shape[0]), axes[0])
    values = [float(v) for v in first]
    peak = float(np.abs(responses).max())
    normalized = responses / peak if peak else responses
    return OverlaidCurve(label, name, values, normalized.round(4).tolist(), peak)


def _n(value: float) -> str:
    return f"{value:.1f}"


def tuning_overlay_svg(family: str, axis: str, curves: list[OverlaidCurve]) -> str:
    """One family's curves of several units, each in its own colour and dash pattern."""
    low = min(min(c.values) for c in curves)
    high = max(max(c.values) for c in curves)
    span = (high - low) or 1.0
    y_low = -1.0 if any(min(c.response) < 0 for c in curves) else 0.0

    def x(value: float) -> float:
        return LEFT + (value - low) / span * (WIDTH - LEFT - RIGHT)

    def y(value: float) -> float:
        return TOP + (1.0 - value) / (1.0 - y_low) * (HEIGHT - TOP - BOTTOM)

    title = f"{family} tuning, {len(curves)} units overlaid"
    desc = "; ".join(
        f"{c.label}: peak at {axis} {c.values[int(np.argmax(c.response))]:g}"
        if c.peak
        else f"{c.label}: no response to any stimulus"
        for c in curves
    )
    body = [
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="16" font-weight="600" fill="#222222">{escape(family)}</text>',
        f'<line x1="{LEFT}" y1="{_n(y(y_low))}" x2="{LEFT}" y2="{_n(y(1.0))}" stroke="#595959"/>',
        f'<line x1="{LEFT}" y1="{_n(y(0.0))}" x2="{WIDTH - RIGHT}" y2="{_n(y(0.0))}" '
        'stroke="#595959"/>',
    ]
    for tick in sorted({y_low, 0.0, 1.0}):
        body.append(
            f'<text x="{LEFT - 4}" y="{_n(y(tick) + 4)}" text-anchor="end" fill="#222222">'
            f"{tick:g}</text>"
        )
    for tick in np.linspace(low, high, 5):
        body.append(
            f'<text x="{_n(x(float(tick)))}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" '
            f'fill="#222222">{float(tick):.3g}</text>'
        )
    body.append(
        f'<text x="{LEFT}" y="{HEIGHT - 8}" fill="#222222">{escape(axis)} · each unit / its '
        "largest |response|</text>"
    )
    for i, curve in enumerate(curves):
        colour, dash = LINE_COLOURS[i % len(LINE_COLOURS)], DASHES[i % len(DASHES)]
        points = " ".join(
            f"{_n(x(a))},{_n(y(b))}" for a, b in zip(curve.values, curve.response, strict=True)
        )
        style = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.75"'
            f"{style}><title>{escape(curve.label)} (peak {curve.peak:.3g})</title></polyline>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" font-family="system-ui, sans-serif" '
        f'font-size="11"><title>{escape(title)}</title><desc>{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )
