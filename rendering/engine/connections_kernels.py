"""Comparing kernels computed two ways, the box a kernel reaches, and its norm and sum."""

from __future__ import annotations

from torch import Tensor

__all__ = [
    "CHUNK_ELEMENTS",
    "MATCH_TOLERANCE",
    "SUPPORT_TOLERANCE",
    "kernels_agree",
    "norm_and_sum",
    "support_box",
]

SUPPORT_TOLERANCE = 1e-5  # relative to the largest response: below it a position is unreached
MATCH_TOLERANCE = 1e-4  # relative: two kernels computed on different maps agree
CHUNK_ELEMENTS = 1 << 25  # injected values per forward; bounds memory on big layers


def kernels_agree(ours: Tensor, reference: Tensor) -> bool:
    """Same shape, and equal up to MATCH_TOLERANCE of the reference's largest value."""
    if ours.shape != reference.shape:
        return False
    scale = reference.abs().max().clamp(min=1e-30)
    return bool((ours - reference).abs().max() <= MATCH_TOLERANCE * scale)


def support_box(magnitude: Tensor) -> tuple[slice, slice] | None:
    """The box of positions (rows, columns) where `magnitude` is above SUPPORT_TOLERANCE of its
    largest value; None where nothing is."""
    reached = magnitude > SUPPORT_TOLERANCE * magnitude.max()
    rows = reached.any(dim=1).nonzero().flatten()
    cols = reached.any(dim=0).nonzero().flatten()
    if len(rows) == 0:
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def norm_and_sum(taps: Tensor) -> tuple[Tensor, Tensor]:
    """L2 norm and sum of each column of `taps` (taps, kernels), about a million numbers at a
    time: the squares of late layers' kernels at once would be hundreds of megabytes of fresh
    memory. Float32 sums over a kernel's few hundred taps are within ~1e-7 of float64."""
    norms, sums = taps.new_empty(taps.shape[1]), taps.new_empty(taps.shape[1])
    columns = max(1, CHUNK_ELEMENTS // 32 // max(1, taps.shape[0]))
    for start in range(0, taps.shape[1], columns):
        block = taps[:, start : start + columns]
        norms[start : start + columns] = (block * block).sum(dim=0).sqrt()
        sums[start : start + columns] = block.sum(dim=0)
    return norms, sums
