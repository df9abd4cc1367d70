import numpy as np

from rendering.engine.statistics import HISTOGRAM_BINS, HISTOGRAM_EDGES, histogram_quantiles


def test_quantiles_are_interpolated_inside_the_bin_that_reaches_them() -> None:
    # Bins: (-inf, 0), [0, 1), [1, 2), [2, inf); two values in each middle bin, seen in [0, 2].
    edges = np.array([0.0, 1.0, 2.0])
    histogram = np.array([[0, 2, 2, 0], [0, 0, 0, 0]])
    low, high = np.array([0.0, 0.0]), np.array([2.0, 0.0])
    quantiles = histogram_quantiles(histogram, edges, low, high, levels=(0.25, 0.5, 0.75))
    np.testing.assert_allclose(quantiles[0], [0.5, 1.0, 1.5])
    assert np.isnan(quantiles[1]).all()  # an empty row has no quantiles


def test_the_open_outer_bins_are_bounded_by_the_values_seen() -> None:
    edges = np.array([0.0, 1.0])
    histogram = np.array([[0, 0, 4]])  # every value at least 1
    quantile = histogram_quantiles(histogram, edges, np.array([3.0]), np.array([7.0]), (0.5,))
    assert quantile.tolist() == [[5.0]]


def test_the_histogram_edges_are_symmetric_log_and_fixed() -> None:
    # Ten bins a decade from 1e-3 to 1e4 on each side of zero, whatever the data.
    assert HISTOGRAM_BINS == len(HISTOGRAM_EDGES) + 1 == 143
    np.testing.assert_array_equal(HISTOGRAM_EDGES, -HISTOGRAM_EDGES[::-1])
    assert np.isclose(HISTOGRAM_EDGES[71], 1e-3) and np.isclose(HISTOGRAM_EDGES[-1], 1e4)
    assert (np.diff(HISTOGRAM_EDGES) > 0).all()
