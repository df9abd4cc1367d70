"""The streaming state of a dataset pass: top-k and bottom-k examples of every unit, and the
accumulators of its statistics, merged one batch at a time on the device.

Exact, documented orders (so any chunking of a pass gives the same answer):

- The position of a spatial maximum (minimum) is the first one in row-major order among equal
  values: `torch.max(dim)` / `torch.min(dim)` document that they return the first index.
- Positive examples of a unit: images by spatial maximum, higher first; equal values, lower
  image index first. Negative examples: by spatial minimum, lower first; equal values, lower
  image index first. Batches must come in increasing image index (checked by the pass), so
  ordering [kept examples, the batch's images in index order] by value, then by column, is
  exact; a `topk` over unique int64 keys built from both does it in one step (`_sort_keys`).

The statistics' accumulators are float64, merged per batch so that resuming is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from rendering.engine.tracing import Summary

__all__ = ["NO_IMAGE", "Streams", "fuse"]

NO_IMAGE = torch.iinfo(torch.int64).max  # fills top-k slots before k images have been seen


def _sort_keys(values: Tensor, *, descending: bool) -> Tensor:
    """Unique int64 keys ordering each row by value, then by column: one exact `topk`.

    A float32's bits, as a signed integer, order like the float once the negatives' magnitude
    bits are flipped; -0.0 is first made +0.0 so that the two tie, as they compare equal.
    """
    bits = (values.float() + 0.0).view(torch.int32)
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).long()
    columns = torch.arange(values.shape[1], device=values.device)
    if descending:  # the highest value first; on ties the lowest column, i.e. the highest key
        return (ordered << 20) + ((1 << 20) - 1 - columns)
    return (ordered << 20) + columns


def _merge(
    kept: tuple[Tensor, Tensor, Tensor],
    valid: int,
    new: tuple[Tensor, Tensor, Tensor],
    *,
    descending: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """The first k (values, images, positions) per row of the kept entries and the new ones.

    Kept rows are already in order (value, then image index) with `valid` real entries before
    the empty slots; new entries come in increasing image index, all above the kept ones. So
    ordering [kept real, new, empty slots] by value, then by column, breaks every tie by image
    index, even against an empty slot's infinite value.
    """
    k = kept[0].shape[1]
    joined = [
        torch.cat([old[:, :valid], fresh, old[:, valid:]], dim=1)
        for old, fresh in zip(kept, new, strict=True)
    ]
    if joined[0].shape[1] >= 1 << 20:
        raise ValueError("k plus the batch size must stay below 2**20")
    keys = _sort_keys(joined[0], descending=descending)
    order = torch.topk(keys, k, dim=1, largest=descending, sorted=True).indices
    values, images, positions = (tensor.gather(1, order) for tensor in joined)
    return values, images, positions


@dataclass
class Streams:
    """Top-k, bottom-k and statistics accumulators of every unit of every layer, concatenated.

    One set of tensors for all layers, so each batch costs a few device operations whatever the
    number of layers. Positions are flat indices into each layer's (H, W) map.
    """

    top_values: Tensor  # (U, k) float32, best first
    top_images: Tensor  # (U, k) int64
    top_positions: Tensor  # (U, k) int64
    bottom_values: Tensor  # (U, k) float32, lowest first
    bottom_images: Tensor
    bottom_positions: Tensor
    max_mean: Tensor  # (U,) float64, of the per-image spatial maximum
    max_m2: Tensor  # (U,) float64: sum of squared deviations of the per-image maximum
    activation_sum: Tensor  # (U,) float64, of all activations
    max_low: Tensor  # (U,) float32: the lowest per-image maximum
    histogram: Tensor  # (U, bins) int64, of the per-image maximum

    @classmethod
    def empty(cls, units: int, k: int, bins: int, device: torch.device) -> Streams:
        def full(value: float, dtype: torch.dtype, *shape: int) -> Tensor:
            return torch.full(shape, value, dtype=dtype, device=device)

        return cls(
            top_values=full(-math.inf, torch.float32, units, k),
            top_images=full(NO_IMAGE, torch.int64, units, k),
            top_positions=full(0, torch.int64, units, k),
            bottom_values=full(math.inf, torch.float32, units, k),
            bottom_images=full(NO_IMAGE, torch.int64, units, k),
            bottom_positions=full(0, torch.int64, units, k),
            max_mean=full(0, torch.float64, units),
            max_m2=full(0, torch.float64, units),
            activation_sum=full(0, torch.float64, units),
            max_low=full(math.inf, torch.float32, units),
            histogram=full(0, torch.int64, units, bins),
        )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)

    def to(self, device: torch.device) -> None:
        for name in self.field_names():
            setattr(self, name, getattr(self, name).to(device))

    def update(self, seen: int, images: Tensor, summary: Summary, edges: Tensor) -> None:
        """Merge one batch after `seen` images: `images` (B,) increasing dataset indices, all
        above those seen before; `summary` tensors (B, U)."""
        units, k = self.top_values.shape
        batch = len(images)
        image_rows = images.view(1, -1).expand(units, batch)
        valid = min(seen, k)
        self.top_values, self.top_images, self.top_positions = _merge(
            (self.top_values, self.top_images, self.top_positions),
            valid,
            (summary.max_values.T, image_rows, summary.max_positions.T),
            descending=True,
        )
        self.bottom_values, self.bottom_images, self.bottom_positions = _merge(
            (self.bottom_values, self.bottom_images, self.bottom_positions),
            valid,
            (summary.min_values.T, image_rows, summary.min_positions.T),
            descending=False,
        )
        # Chan et al.'s pairwise merge of (count, mean, M2): a fixed order, no cancellation.
        maxima = summary.max_values.double()
        batch_mean = maxima.mean(dim=0)
        batch_m2 = ((maxima - batch_mean) ** 2).sum(dim=0)
        delta = batch_mean - self.max_mean
        total = seen + batch
        self.max_mean = self.max_mean + delta * (batch / total)
        self.max_m2 = self.max_m2 + batch_m2 + delta**2 * (seen * batch / total)
        self.activation_sum = self.activation_sum + summary.sums.double().sum(dim=0)
        self.max_low = torch.minimum(self.max_low, summary.max_values.min(dim=0).values)
        bins = torch.bucketize(maxima, edges, right=True)  # (B, U)
        offsets = torch.arange(units, device=bins.device) * self.histogram.shape[1]
        flat = (bins + offsets).flatten()
        self.histogram.view(-1).scatter_add_(0, flat, torch.ones_like(flat))


def fuse(summaries: Sequence[Summary]) -> Summary:
    """The layers' (B, C) summaries side by side, (B, U); its map size means nothing."""
    if len(summaries) == 1:
        return summaries[0]

    def side_by_side(name: str) -> Tensor:
        return torch.cat([getattr(summary, name) for summary in summaries], dim=1)

    return Summary(
        max_values=side_by_side("max_values"),
        max_positions=side_by_side("max_positions"),
        sums=side_by_side("sums"),
        min_values=side_by_side("min_values"),
        min_positions=side_by_side("min_positions"),
        map_size=(0, 0),
    )
