"""Per-unit activation statistics of a dataset pass, and quantiles from their histograms.

Per unit: count, mean of all activations, mean and standard deviation (population) of the
per-image spatial maximum, maximum, minimum, a histogram of the per-image maximum over fixed
symmetric-log bin edges (`HISTOGRAM_EDGES`, independent of the data) and quantiles
interpolated from it (approximate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HISTOGRAM_BINS",
    "HISTOGRAM_EDGES",
    "QUANTILE_LEVELS",
    "LayerStatistics",
    "histogram_quantiles",
]

QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _symlog_edges(low: float = 1e-3, high: float = 1e4, per_decade: int = 10) -> np.ndarray:
    decades = round(math.log10(high / low))
    positive = np.logspace(math.log10(low), math.log10(high), decades * per_decade + 1)
    return np.concatenate([-positive[::-1], positive])


# Bin i of a histogram holds values v with EDGES[i-1] <= v < EDGES[i]; bin 0 is everything
# below -1e4, the last bin everything from 1e4 up, the middle bin [-1e-3, 1e-3).
HISTOGRAM_EDGES: np.ndarray = _symlog_edges()
HISTOGRAM_BINS = len(HISTOGRAM_EDGES) + 1


@dataclass
class LayerStatistics:
    """Per-unit statistics of one layer; arrays are indexed by unit (channel)."""

    count: int  # images
    mean: np.ndarray  # of all activations, all positions
    max_mean: np.ndarray  # of the per-image spatial maximum
    max_std: np.ndarray  # population standard deviation of the per-image spatial maximum
    maximum: np.ndarray
    minimum: np.ndarray  # of the layer's output (not the pre-activation)
    histogram: np.ndarray  # (C, HISTOGRAM_BINS) counts of the per-image spatial maximum
    histogram_edges: np.ndarray
    quantiles: np.ndarray  # (C, len(QUANTILE_LEVELS)), approximate: from the histogram
    quantile_levels: tuple[float, ...] = QUANTILE_LEVELS

    def unit(self, index: int) -> dict[str, object]:
        """One unit's statistics as plain JSON-ready values."""
        return {
            "count": self.count,
            "mean": float(self.mean[index]),
            "max_mean": float(self.max_mean[index]),
            "max_std": float(self.max_std[index]),
            "maximum": float(self.maximum[index]),
            "minimum": float(self.minimum[index]),
            "histogram": self.histogram[index].tolist(),
            "quantiles_approximate": dict(
                zip(
                    (f"{level:g}" for level in self.quantile_levels),
                    self.quantiles[index].tolist(),
                    strict=True,
                )
            ),
        }


def histogram_quantiles(
    histogram: np.ndarray,
    edges: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    levels: Sequence[float] = QUANTILE_LEVELS,
) -> np.ndarray:
    """Quantiles (C, len(levels)) estimated from per-row histograms over `edges`.

    The q-quantile falls in the first bin whose cumulative count reaches q * n; it is
    interpolated linearly inside that bin, whose bounds are narrowed to the observed [low,
    high] (so the open outer bins are bounded). NaN where a row is empty.
    """
    counts = histogram.astype(np.float64)
    total = counts.sum(axis=1)
    cumulative = np.cumsum(counts, axis=1)
    lower = np.concatenate([[-np.inf], edges])
    upper = np.concatenate([edges, [np.inf]])
    rows = np.arange(len(counts))
    result = np.full((len(counts), len(levels)), np.nan)
    for column, level in enumerate(levels):
        rank = level * total
        bins = np.argmax(cumulative >= rank[:, None], axis=1)
        inside = counts[rows, bins]
        before = cumulative[rows, bins] - inside
        fraction = np.divide(rank - before, inside, out=np.zeros_like(rank), where=inside > 0)
        lo = np.maximum(lower[bins], low)
        hi = np.minimum(upper[bins], high)
        result[:, column] = np.where(total > 0, lo + fraction * (hi - lo), np.nan)
    return result
