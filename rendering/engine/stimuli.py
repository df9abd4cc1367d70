"""Synthetic stimuli for tuning curves: curves, gratings and colour patches, by parameter.

Every stimulus is an RGB image in [0, 1] at the model's input size: mid-grey (0.5) everywhere
except inside a circular aperture of diameter `extent` (the unit's receptive field, pixels)
centred at `centre` = (cy, cx). Pixel centres sit at integer coordinates, so the image centre
is ((size - 1) / 2, (size - 1) / 2). Angles are degrees counterclockwise *on screen* from the
rightward horizontal: 0° points right, 90° up.

Sizes are relative to the receptive field so that one grid serves every layer, from a 7 px
field to a 400 px one: spatial frequency in cycles per receptive field, curvature in
receptive fields per radius (`extent / radius`: 0 is a straight line, 2 a circle exactly as
wide as the receptive field). Frequencies above `extent / 2` cycles alias (the top default, 8,
is clean from a 16 px field up).

The families (`FAMILIES`), after the synthetic stimuli of the Circuits thread (Cammarata et
al., "Curve Detectors", Distill 2020):

- curves: one anti-aliased circular arc of fixed length (0.6 extent) and stroke
  (0.05 extent, at least 1.5 px), dark and light (`polarity`), the centroid of its ink at
  the centre. `orientation` (0-360°) is the direction of the tangent at the arc's midpoint,
  travelling so that the arc bends left: the convex side faces orientation - 90° and the
  centre of curvature lies towards orientation + 90°. A straight line (curvature 0) lies
  along the orientation, so orientations 180° apart draw the same line.
- gratings: a full-contrast sinusoid whose bars run along `orientation` (0-180°; the
  luminance varies along orientation + 90°), `frequency` cycles per receptive field, at four
  spatial `phase`s (sin(phase) is the value at the centre: 90° a bright bar, 270° a dark one).
- colour: a uniform patch of `hue` (HSV, full saturation and value) filling the aperture.

Nuisance parameters (phase, polarity) are the `pooled` axis of a family: every grid point is
drawn once per pooled value, and tuning keeps the best, so phase-sensitive and invariant units
show their tuning alike. The aperture falls from 1 to 0 over its outer 20 % (a raised cosine):
no sharp disc edge for edge detectors to find, and exactly grey outside.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "FAMILIES",
    "Axis",
    "Family",
    "Placement",
    "Stimuli",
    "colour_patches",
    "curves",
    "gratings",
]

GREY = 0.5
APERTURE_EDGE = 0.2  # fraction of the aperture radius over which the window falls to 0
ARC_LENGTH = 0.6  # of the extent: any arc fits inside the flat part of the aperture
STROKE = 0.05  # of the extent
MIN_STROKE = 1.5  # pixels: thinner strokes vanish into anti-aliasing on small fields


@dataclass(frozen=True)
class Placement:
    """Where stimuli go: image side `size`, centre (cy, cx) in pixels, aperture diameter."""

    size: int
    centre: tuple[float, float]
    extent: float

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be positive, got {self.size}")
        if not self.extent > 0:
            raise ValueError(f"extent must be positive, got {self.extent}")

    @classmethod
    def centred(cls, size: int, extent: float) -> Placement:
        """The aperture in the middle of the image."""
        middle = (size - 1) / 2
        return cls(size, (middle, middle), extent)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of every pixel from the centre, y up: two (size, size) float64 arrays."""
        rows = np.arange(self.size, dtype=np.float64)
        y = (self.centre[0] - rows)[:, None]
        x = (rows - self.centre[1])[None, :]
        return np.broadcast_to(x, (self.size, self.size)), np.broadcast_to(
            y, (self.size, self.size)
        )

    def window(self) -> np.ndarray:
        """The soft circular aperture: 1 inside, a raised-cosine edge, exactly 0 outside."""
        x, y = self.coordinates()
        radius = self.extent / 2
        inner = radius * (1 - APERTURE_EDGE)
        distance = np.hypot(x, y)
        ramp = (distance - inner) / (radius - inner)
        window = 0.5 * (1 + np.cos(np.pi * np.clip(ramp, 0, 1)))
        return np.where(distance >= radius, 0.0, window)


@dataclass(frozen=True, eq=False)
class Axis:
    """One parameter of a family: its name, grid values, unit, and period if circular."""

    name: str
    values: np.ndarray
    unit: str
    period: float | None = None

    @property
    def label(self) -> str:
        """For axis titles: "orientation (°)"."""
        return f"{self.name} ({self.unit})"

    def describe(self, value: float) -> str:
        """For sentences: "orientation 45°", "frequency 2 cycles/RF"."""
        gap = "" if self.unit == "°" else " "
        return f"{self.name} {value:.4g}{gap}{self.unit}"


# Draws one image per entry of the flat parameter arrays (all the same length).
Draw = Callable[[Mapping[str, np.ndarray], Placement], np.ndarray]


@dataclass(frozen=True, eq=False)
class Stimuli:
    """Images (N, 3, size, size) float32 in [0, 1], and each image's parameters, shape (N,)."""

    images: np.ndarray
    parameters: dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class Family:
    """A parametric stimulus family: the grid's axes, a pooled nuisance axis, and its drawing.

    Images are ordered as `np.ndindex(*grid_shape, len(pooled))`: the pooled axis varies
    fastest, then the last grid axis.
    """

    name: str
    title: str  # for people: "Curves"
    axes: tuple[Axis, ...]
    pooled: Axis | None
    draw: Draw
    description: str

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(axis.name for axis in self.axes)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(len(axis.values) for axis in self.axes)

    @property
    def pooled_count(self) -> int:
        return 1 if self.pooled is None else len(self.pooled.values)

    def __len__(self) -> int:
        return math.prod(self.grid_shape) * self.pooled_count

    def parameter_grid(self) -> dict[str, np.ndarray]:
        """Every image's parameter values: flat arrays of length len(self), in image order."""
        axes = self.axes if self.pooled is None else (*self.axes, self.pooled)
        mesh = np.meshgrid(*(axis.values for axis in axes), indexing="ij")
        return {axis.name: grid.ravel() for axis, grid in zip(axes, mesh, strict=True)}

    def images(self, placement: Placement, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Images start..stop of the family (all by default): (n, 3, size, size) float32."""
        grid = {name: values[start:stop] for name, values in self.parameter_grid().items()}
        return self.draw(grid, placement)

    def stimuli(self, placement: Placement) -> Stimuli:
        return Stimuli(self.draw(self.parameter_grid(), placement), self.parameter_grid())

    def with_values(self, **values: ArrayLike) -> Family:
        """The same family on other grid values, e.g. `with_values(frequency=[1, 2])`."""
        known = {axis.name for axis in self.axes} | (
            {self.pooled.name} if self.pooled is not None else set()
        )
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"{self.name} has no parameters {sorted(unknown)}; it has {known}")

        def swap(axis: Axis) -> Axis:
            if axis.name not in values:
                return axis
            array = np.atleast_1d(np.asarray(values[axis.name], dtype=np.float64))
            if array.ndim != 1 or array.size == 0:
                raise ValueError(f"{axis.name} values must be a non-empty 1-D list")
            return replace(axis, values=array)

        pooled = swap(self.pooled) if self.pooled is not None else None
        return replace(self, axes=tuple(swap(axis) for axis in self.axes), pooled=pooled)


def _rgb(gray: np.ndarray) -> np.ndarray:
    """(n, H, W) grey levels -> (n, 3, H, W) float32."""
    return np.ascontiguousarray(np.repeat(gray[:, None], 3, axis=1), dtype=np.float32)


def _stroke_width(extent: float) -> float:
    return max(MIN_STROKE, STROKE * extent)


def _arc_centroid(radius: float, half_angle: float, half_width: float) -> float:
    """Distance from the circle's centre to the centroid of a stroked arc (round caps).

    The stroke is an annular sector plus two half-disc caps; their centroids along the arc's
    axis of symmetry, weighted by area.
    """
    sector_area = 4 * half_angle * radius * half_width
    sector = (radius + half_width**2 / (3 * radius)) * math.sin(half_angle) / half_angle
    caps_area = math.pi * half_width**2
    caps = radius * math.cos(half_angle) - 4 * half_width / (3 * math.pi) * math.sin(half_angle)
    return (sector_area * sector + caps_area * caps) / (sector_area + caps_area)


def _curve_distance(
    x: np.ndarray, y: np.ndarray, orientation: float, curvature: float, extent: float
) -> np.ndarray:
    """Distance of every pixel centre to the arc's centre line (see the module docstring)."""
    length = ARC_LENGTH * extent
    theta = math.radians(orientation)
    tangent = (math.cos(theta), math.sin(theta))
    bulge = (math.sin(theta), -math.cos(theta))  # the convex side: orientation - 90°
    turning = curvature * length / extent  # radians the tangent turns along the arc
    if turning < 1e-9:
        along = np.clip(x * tangent[0] + y * tangent[1], -length / 2, length / 2)
        return np.hypot(x - along * tangent[0], y - along * tangent[1])
    if turning > 2 * math.pi:
        raise ValueError(
            f"curvature {curvature} makes an arc of {ARC_LENGTH} receptive fields longer than "
            f"its circle; use curvature <= {2 * math.pi / ARC_LENGTH:.2f}"
        )
    radius = extent / curvature
    half_angle = turning / 2
    offset = _arc_centroid(radius, half_angle, _stroke_width(extent) / 2)
    # Circle centre, so that the stroke's centroid lands on the placement's centre.
    cx, cy = -offset * bulge[0], -offset * bulge[1]
    dx, dy = x - cx, y - cy
    # Angle of each pixel from the arc's midpoint direction (the bulge), seen from the centre.
    angle = np.arctan2(dx * tangent[0] + dy * tangent[1], dx * bulge[0] + dy * bulge[1])
    on_arc = np.abs(np.hypot(dx, dy) - radius)
    ends = []
    for sign in (1.0, -1.0):
        c, s = math.cos(half_angle), sign * math.sin(half_angle)
        end_x = cx + radius * (c * bulge[0] + s * tangent[0])
        end_y = cy + radius * (c * bulge[1] + s * tangent[1])
        ends.append(np.hypot(x - end_x, y - end_y))
    return np.where(np.abs(angle) <= half_angle, on_arc, np.minimum(*ends))


def _draw_curves(grid: Mapping[str, np.ndarray], placement: Placement) -> np.ndarray:
    x, y = placement.coordinates()
    half = _stroke_width(placement.extent) / 2
    window = placement.window()
    gray = np.empty((len(grid["orientation"]), placement.size, placement.size))
    for i, (orientation, curvature, polarity) in enumerate(
        zip(grid["orientation"], grid["curvature"], grid["polarity"], strict=True)
    ):
        distance = _curve_distance(x, y, orientation, curvature, placement.extent)
        # Coverage of a pixel by the stroke: a one-pixel linear ramp across its edge.
        coverage = np.clip(half + 0.5 - distance, 0.0, 1.0)
        gray[i] = GREY + GREY * polarity * coverage * window
    return _rgb(gray)


def _draw_gratings(grid: Mapping[str, np.ndarray], placement: Placement) -> np.ndarray:
    x, y = placement.coordinates()
    theta = np.radians(grid["orientation"])[:, None, None]
    phase = np.radians(grid["phase"])[:, None, None]
    cycles_per_pixel = (grid["frequency"] / placement.extent)[:, None, None]
    # Position along the wave vector, orientation + 90°: constant along the bars.
    across = -x[None] * np.sin(theta) + y[None] * np.cos(theta)
    wave = np.sin(2 * np.pi * cycles_per_pixel * across + phase)
    return _rgb(GREY + GREY * wave * placement.window()[None])


def hue_to_rgb(hue: np.ndarray) -> np.ndarray:
    """HSV (hue in degrees, saturation and value 1) to RGB in [0, 1]: shape (*hue.shape, 3)."""
    # colorsys.hsv_to_rgb with s = v = 1, vectorized: each channel is a clipped triangle wave.
    h = np.mod(hue, 360.0)[..., None] / 60.0
    k = np.mod(np.array([5.0, 3.0, 1.0]) + h, 6.0)
    return 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _draw_colour(grid: Mapping[str, np.ndarray], placement: Placement) -> np.ndarray:
    rgb = hue_to_rgb(grid["hue"])[:, :, None, None]  # (n, 3, 1, 1)
    window = placement.window()[None, None]
    return np.ascontiguousarray(GREY + (rgb - GREY) * window, dtype=np.float32)


ORIENTATION_360 = Axis("orientation", np.arange(16) * 22.5, "°", 360.0)
CURVATURE = Axis("curvature", np.linspace(0.0, 5.0, 5), "RF/radius")
POLARITY = Axis("polarity", np.array([-1.0, 1.0]), "-1 dark, +1 light")
ORIENTATION_180 = Axis("orientation", np.arange(12) * 15.0, "°", 180.0)
FREQUENCY = Axis("frequency", np.array([1.0, 2.0, 3.0, 4.0, 6.0, 8.0]), "cycles/RF")
PHASE = Axis("phase", np.array([0.0, 90.0, 180.0, 270.0]), "°", 360.0)
HUE = Axis("hue", np.arange(24) * 15.0, "°", 360.0)

CURVES = Family(
    "curves",
    "Curves",
    (ORIENTATION_360, CURVATURE),
    POLARITY,
    _draw_curves,
    "circular arcs by orientation and curvature, dark and light on grey",
)
GRATINGS = Family(
    "gratings",
    "Gratings",
    (ORIENTATION_180, FREQUENCY),
    PHASE,
    _draw_gratings,
    "sinusoidal gratings by orientation and spatial frequency, best of four phases",
)
COLOUR = Family("colour", "Colour", (HUE,), None, _draw_colour, "uniform patches by hue on grey")

FAMILIES: dict[str, Family] = {family.name: family for family in (CURVES, GRATINGS, COLOUR)}


def _family_stimuli(
    family: Family,
    size: int,
    centre: tuple[float, float] | None,
    extent: float,
    **values: ArrayLike | None,
) -> Stimuli:
    chosen = {name: value for name, value in values.items() if value is not None}
    placement = (
        Placement.centred(size, extent) if centre is None else Placement(size, centre, extent)
    )
    return family.with_values(**chosen).stimuli(placement)


def curves(
    *,
    size: int,
    extent: float,
    centre: tuple[float, float] | None = None,
    orientations: ArrayLike | None = None,
    curvatures: ArrayLike | None = None,
    polarities: ArrayLike | None = None,
) -> Stimuli:
    """Arcs on the orientation x curvature x polarity grid (defaults: 16 x 5 x 2)."""
    return _family_stimuli(
        CURVES,
        size,
        centre,
        extent,
        orientation=orientations,
        curvature=curvatures,
        polarity=polarities,
    )


def gratings(
    *,
    size: int,
    extent: float,
    centre: tuple[float, float] | None = None,
    orientations: ArrayLike | None = None,
    frequencies: ArrayLike | None = None,
    phases: ArrayLike | None = None,
) -> Stimuli:
    """Gratings on the orientation x frequency x phase grid (defaults: 12 x 6 x 4)."""
    return _family_stimuli(
        GRATINGS,
        size,
        centre,
        extent,
        orientation=orientations,
        frequency=frequencies,
        phase=phases,
    )


def colour_patches(
    *,
    size: int,
    extent: float,
    centre: tuple[float, float] | None = None,
    hues: ArrayLike | None = None,
) -> Stimuli:
    """Uniform hue patches (default: 24 hues, 15° apart)."""
    return _family_stimuli(COLOUR, size, centre, extent, hue=hues)
