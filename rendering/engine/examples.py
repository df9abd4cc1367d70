"""Dataset examples and activation statistics for every unit of several layers, in one pass.

For each selected layer and each image, every channel is reduced on the device to a few (B, C)
summaries (`tracing`); only these reach the streaming state (`accumulators`: one set of
tensors for the units of all layers, kept on the device), so memory does not grow with the
dataset and the pass runs at close to inference speed. The forward runs once per batch for all
layers and stops after the deepest one. Which image ranks before which, ties included, is
exact and documented in `accumulators`; the statistics are described in `statistics`.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from rendering.engine.accumulators import NO_IMAGE, Streams, fuse
from rendering.engine.datasets import Batch
from rendering.engine.render import check_model_device
from rendering.engine.statistics import HISTOGRAM_EDGES, LayerStatistics, histogram_quantiles
from rendering.engine.tracing import PRE_ACTIVATION, Summaries, SummaryPlan, summary_plan
from rendering.engine.truncation import frozen_eval, resolve_layer

__all__ = [
    "TOP_K",
    "Example",
    "ExamplesState",
    "LayerExamples",
    "collect_examples",
]

TOP_K = 40
_FORMAT = 2


class Example(NamedTuple):
    """One dataset example of a unit: image index, activation value, position in the map."""

    image: int
    value: float
    y: int
    x: int


@dataclass
class LayerExamples:
    """One layer's examples and statistics: a view of its units in a pass's state."""

    layer: str
    negative_source: str  # "pre-activation" or "output": what negative examples rank
    map_size: tuple[int, int]
    count: int  # images seen
    streams: Streams
    units: slice
    histogram_edges: np.ndarray
    _statistics: LayerStatistics | None = field(default=None, repr=False, compare=False)

    @property
    def channels(self) -> int:
        return self.units.stop - self.units.start

    def _check_unit(self, unit: int) -> None:
        if not 0 <= unit < self.channels:
            raise IndexError(f"layer {self.layer!r} has units 0..{self.channels - 1}, not {unit}")

    def _all(self, name: str) -> np.ndarray:
        tensor: Tensor = getattr(self.streams, name)
        return tensor[self.units].cpu().numpy()

    def _ranking(
        self, side: str, rows: slice
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if side not in ("top", "bottom"):
            raise ValueError(f"side must be 'top' or 'bottom', not {side!r}")

        def part(name: str) -> np.ndarray:
            tensor: Tensor = getattr(self.streams, f"{side}_{name}")
            return tensor[rows].cpu().numpy()

        images = part("images").copy()
        images[images == NO_IMAGE] = -1
        positions = part("positions")
        width = self.map_size[1]
        return part("values"), images, positions // width, positions % width

    def ranked(self, unit: int, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(values, image indices, y, x) of `unit`'s examples, best first; `side` is "top"
        (positive) or "bottom" (negative). Image -1 marks a slot not filled (< k images)."""
        self._check_unit(unit)
        row = self.units.start + unit
        values, images, ys, xs = self._ranking(side, slice(row, row + 1))
        return values[0], images[0], ys[0], xs[0]

    def table(self, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`ranked` for every unit at once: four (C, k) arrays."""
        return self._ranking(side, self.units)

    def image_indices(self) -> np.ndarray:
        """Every image that is an example of some unit (sorted, unique): the ones to crop."""
        both = np.unique(np.concatenate([self._all("top_images"), self._all("bottom_images")]))
        return both[both != NO_IMAGE]

    def _examples(self, side: str, unit: int) -> list[Example]:
        values, images, ys, xs = self.ranked(unit, side)
        return [
            Example(int(i), float(v), int(y), int(x))
            for v, i, y, x in zip(values, images, ys, xs, strict=True)
            if i >= 0
        ]

    def positive(self, unit: int) -> list[Example]:
        """Images that excite `unit` most (up to k), highest spatial maximum first."""
        return self._examples("top", unit)

    def negative(self, unit: int) -> list[Example]:
        """Images with the lowest spatial minimum of `unit` (see `negative_source`)."""
        return self._examples("bottom", unit)

    def statistics(self) -> LayerStatistics:
        """Per-unit statistics of everything seen (computed once per view)."""
        if self._statistics is None:
            self._statistics = self._compute_statistics()
        return self._statistics

    def stats(self, unit: int) -> dict[str, object]:
        """One unit's statistics, JSON-ready (see `LayerStatistics.unit`)."""
        return self.statistics().unit(unit)

    def _compute_statistics(self) -> LayerStatistics:
        n = self.count
        maximum = self._all("top_values")[:, 0].astype(np.float64)
        lowest = self._all("bottom_values")[:, 0].astype(np.float64)
        # The output is ReLU(pre-activation) (checked), so its minimum is ReLU of theirs.
        minimum = np.maximum(lowest, 0.0) if self.negative_source == PRE_ACTIVATION else lowest
        histogram = self._all("histogram")
        max_low = self._all("max_low").astype(np.float64)
        positions = self.map_size[0] * self.map_size[1]
        return LayerStatistics(
            count=n,
            mean=self._all("activation_sum") / (n * positions),
            max_mean=self._all("max_mean"),
            max_std=np.sqrt(self._all("max_m2") / n),
            maximum=maximum,
            minimum=minimum,
            histogram=histogram,
            histogram_edges=self.histogram_edges,
            quantiles=histogram_quantiles(histogram, self.histogram_edges, max_low, maximum),
        )


class _Layout(NamedTuple):
    """What the first batch revealed about a layer; every later batch must agree."""

    channels: int
    map_size: tuple[int, int]
    negative_source: str


@dataclass
class ExamplesState:
    """Everything a pass has accumulated; serializable, and resumable from any batch boundary.

    `next_index` is one past the highest dataset index consumed (skipped items included): a
    resumed pass starts there. Resuming gives bit-identical results provided the remaining
    batches are the same as the uninterrupted pass would have had (chunk at batch boundaries:
    a convolution's rounding can depend on the batch size).
    """

    layer_names: tuple[str, ...]
    k: int = TOP_K
    images_seen: int = 0
    next_index: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    histogram_edges: np.ndarray = field(default_factory=lambda: HISTOGRAM_EDGES.copy())
    layouts: dict[str, _Layout] = field(default_factory=dict)  # empty until the first image
    streams: Streams | None = None

    def layer(self, name: str) -> LayerExamples:
        """The results of layer `name` (a module path, as passed to `collect_examples`)."""
        if name not in self.layer_names:
            raise KeyError(f"no layer {name!r} in this state; it has {list(self.layer_names)}")
        if self.streams is None:
            raise KeyError(f"no examples of layer {name!r} yet: no image has been seen")
        start = 0
        for other in self.layer_names:
            if other == name:
                break
            start += self.layouts[other].channels
        layout = self.layouts[name]
        return LayerExamples(
            layer=name,
            negative_source=layout.negative_source,
            map_size=layout.map_size,
            count=self.images_seen,
            streams=self.streams,
            units=slice(start, start + layout.channels),
            histogram_edges=self.histogram_edges,
        )

    def to(self, device: torch.device) -> ExamplesState:
        if self.streams is not None:
            self.streams.to(device)
        return self

    def to_npz_bytes(self) -> bytes:
        """The state as a numpy .npz archive (no pickles)."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(_FORMAT),
            "k": np.array(self.k),
            "images_seen": np.array(self.images_seen),
            "next_index": np.array(self.next_index),
            "layer_names": np.array(self.layer_names, dtype=np.str_),
            "skipped_indices": np.array([i for i, _ in self.skipped], dtype=np.int64),
            "skipped_reasons": np.array([r for _, r in self.skipped], dtype=np.str_),
            "histogram_edges": self.histogram_edges,
        }
        if self.streams is not None:
            layouts = [self.layouts[name] for name in self.layer_names]
            arrays["channels"] = np.array([lay.channels for lay in layouts], dtype=np.int64)
            arrays["map_sizes"] = np.array([lay.map_size for lay in layouts], dtype=np.int64)
            arrays["negative_sources"] = np.array(
                [lay.negative_source for lay in layouts], dtype=np.str_
            )
            for name in Streams.field_names():
                arrays[name] = getattr(self.streams, name).cpu().numpy()
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
        return buffer.getvalue()

    @classmethod
    def from_npz_bytes(cls, data: bytes) -> ExamplesState:
        """The state saved by `to_npz_bytes`, on the CPU."""
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if int(archive["format"]) != _FORMAT:
                raise ValueError(f"unknown examples state format {int(archive['format'])}")
            names = tuple(str(name) for name in archive["layer_names"])
            reasons = archive["skipped_reasons"]
            state = cls(
                layer_names=names,
                k=int(archive["k"]),
                images_seen=int(archive["images_seen"]),
                next_index=int(archive["next_index"]),
                skipped=[
                    (int(i), str(r))
                    for i, r in zip(archive["skipped_indices"], reasons, strict=True)
                ],
                histogram_edges=archive["histogram_edges"].copy(),
            )
            if "channels" in archive.files:
                for name, channels, (height, width), source in zip(
                    names,
                    archive["channels"],
                    archive["map_sizes"],
                    archive["negative_sources"],
                    strict=True,
                ):
                    state.layouts[name] = _Layout(
                        int(channels), (int(height), int(width)), str(source)
                    )
                state.streams = Streams(
                    **{
                        name: torch.from_numpy(archive[name].copy())
                        for name in Streams.field_names()
                    }
                )
        return state


# --- the pass -----------------------------------------------------------------------------


def collect_examples(
    model: nn.Module,
    layers: Sequence[str],
    batches: Iterable[Batch],
    *,
    preprocess: Callable[[Tensor], Tensor],
    k: int = TOP_K,
    device: torch.device | str = "cpu",
    state: ExamplesState | None = None,
    progress: Callable[[ExamplesState], None] | None = None,
) -> ExamplesState:
    """Top-k and bottom-k dataset examples and statistics of every unit of `layers`.

    `layers` are module paths (`layer_names(model)`); `batches` yield uint8 images in
    increasing dataset order (see `datasets.batches`); they are scaled to [0, 1] on `device`
    and passed through `preprocess` (a zoo `Preprocessing`). The model must already be on
    `device`; it runs in eval mode with frozen weights, both restored afterwards. Continue an
    interrupted pass by passing its `state` and the remaining batches; `progress(state)` runs
    after every batch (a good place to checkpoint with `state.to_npz_bytes()`).
    """
    device = torch.device(device)
    check_model_device(model, device)
    names = tuple(resolve_layer(model, layer) for layer in layers)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"layers must be distinct and not empty, not {list(layers)}")
    if k < 1:
        raise ValueError(f"k must be positive, not {k}")
    if state is None:
        state = ExamplesState(layer_names=names, k=k)
    elif state.layer_names != names or state.k != k:
        raise ValueError(
            f"the state was collected for layers {list(state.layer_names)} with k={state.k}, "
            f"not {list(names)} with k={k}"
        )
    state.to(device)
    edges = torch.from_numpy(state.histogram_edges).to(device)
    plan: SummaryPlan | None = None
    with frozen_eval(model), torch.no_grad():
        for batch in batches:
            _consume_indices(state, batch)
            state.skipped += batch.skipped
            if len(batch.indices):
                images = batch.images.to(device, non_blocking=True).float().div_(255)
                inputs = preprocess(images)
                if plan is None:
                    plan = summary_plan(model, names, inputs[:2])
                summaries = plan.forward(inputs)
                streams = _streams(state, summaries, plan, device)
                indices = batch.indices.to(device, non_blocking=True)
                fused = fuse([summaries[name] for name in names])
                streams.update(state.images_seen, indices, fused, edges)
                state.images_seen += len(batch.indices)
            if progress is not None:
                progress(state)
    return state


def _consume_indices(state: ExamplesState, batch: Batch) -> None:
    """Check the order the exact merge relies on, and advance `next_index`."""
    good = batch.indices.tolist()
    if any(later <= earlier for earlier, later in itertools.pairwise(good)):
        raise ValueError(f"a batch's image indices must increase, not {good}")
    seen = good + [index for index, _ in batch.skipped]
    if not seen:
        return
    if min(seen) < state.next_index:
        raise ValueError(
            f"image {min(seen)} comes after image {state.next_index - 1}: batches must follow "
            "the dataset order and a resumed pass must start at state.next_index"
        )
    state.next_index = max(seen) + 1


def _streams(
    state: ExamplesState, summaries: Summaries, plan: SummaryPlan, device: torch.device
) -> Streams:
    """The state's accumulators, made on the first image; checks that the layers still agree."""
    layouts = {
        name: _Layout(
            int(summaries[name].max_values.shape[1]),
            summaries[name].map_size,
            plan.negative_sources[name],
        )
        for name in state.layer_names
    }
    if state.streams is None:
        units = sum(layout.channels for layout in layouts.values())
        bins = len(state.histogram_edges) + 1
        state.layouts = layouts
        state.streams = Streams.empty(units, state.k, bins, device)
    elif layouts != state.layouts:
        changed = [name for name in layouts if layouts[name] != state.layouts[name]]
        raise ValueError(
            f"layers {changed} give (channels, map size, negatives from) "
            f"{[tuple(layouts[name]) for name in changed]}, but the state was collected with "
            f"{[tuple(state.layouts[name]) for name in changed]}"
        )
    return state.streams
