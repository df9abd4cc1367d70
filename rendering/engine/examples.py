"""Dataset examples and activation statistics for every unit of several layers, in one pass.

For each selected layer and each image, every channel is reduced on the device to its spatial
maximum and minimum with their positions, and to its spatial sum; only these (B, C) summaries
reach the streaming state (one set of tensors for the units of all layers, kept on the
device), so memory does not grow with the dataset and the pass runs at close to inference
speed. The forward runs once per batch for all layers and stops after the deepest one.

Exact, documented orders (so any chunking of a pass gives the same answer):

- The position of a spatial maximum (minimum) is the first one in row-major order among equal
  values: `torch.max(dim)` / `torch.min(dim)` document that they return the first index.
- Positive examples of a unit: images by spatial maximum, higher first; equal values, lower
  image index first. Negative examples: by spatial minimum, lower first; equal values, lower
  image index first. Batches must come in increasing image index (checked), so ordering
  [kept examples, the batch's images in index order] by value, then by column, is exact; a
  `topk` over unique int64 keys built from both does it in one step (`_sort_keys`).

Negative examples use the pre-activation where the model has one. The model is traced with
torch.fx (`create_feature_extractor`); from a layer's output node we walk back through
`torch.cat(..., dim=1)` nodes to ReLU nodes (an `nn.ReLU`, `relu`, or `clamp(min=0)`, which
is what lucent's RedirectedReLU traces to) and reduce their inputs, branch by branch, so that
InceptionV1's mixed layers get the concatenated pre-ReLU convolutions without building the
concatenation. The reductions are inserted into the traced graph right after the layer, so
each activation is freed as soon as it is summarized. On a probe batch the trace must match
the eager forward and each layer must equal ReLU(pre-activation) exactly; a layer that fails
the second check (or has no ReLU at its end) uses its output (`negative_source = "output"`),
and a model that cannot be traced or fails the first check falls back to forward hooks on the
outputs, all layers in the same pass, stopped by raising after the last one.

Statistics per unit (float64 accumulators, merged per batch so that resuming is exact): count,
mean of all activations, mean and standard deviation (population) of the per-image spatial
maximum, maximum, minimum, a histogram of the per-image maximum over fixed symmetric-log bin
edges (`HISTOGRAM_EDGES`, independent of the data) and quantiles interpolated from it
(approximate).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, fx, nn
from torchvision.models.feature_extraction import create_feature_extractor

from rendering.engine.datasets import Batch
from rendering.engine.render import check_model_device
from rendering.engine.truncation import (
    FORWARD_TOLERANCE,
    _StopForward,
    frozen_eval,
    resolve_layer,
)

__all__ = [
    "HISTOGRAM_BINS",
    "HISTOGRAM_EDGES",
    "OUTPUT",
    "PRE_ACTIVATION",
    "QUANTILE_LEVELS",
    "TOP_K",
    "Example",
    "ExamplesState",
    "LayerExamples",
    "LayerStatistics",
    "collect_examples",
    "crop",
    "histogram_quantiles",
    "receptive_field_box",
]

TOP_K = 40
OUTPUT = "output"
PRE_ACTIVATION = "pre-activation"
QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _symlog_edges(low: float = 1e-3, high: float = 1e4, per_decade: int = 10) -> np.ndarray:
    decades = round(math.log10(high / low))
    positive = np.logspace(math.log10(low), math.log10(high), decades * per_decade + 1)
    return np.concatenate([-positive[::-1], positive])


# Bin i of a histogram holds values v with EDGES[i-1] <= v < EDGES[i]; bin 0 is everything
# below -1e4, the last bin everything from 1e4 up, the middle bin [-1e-3, 1e-3).
HISTOGRAM_EDGES: np.ndarray = _symlog_edges()
HISTOGRAM_BINS = len(HISTOGRAM_EDGES) + 1

_NO_IMAGE = torch.iinfo(torch.int64).max  # fills top-k slots before k images have been seen
_FORMAT = 2


class Example(NamedTuple):
    """One dataset example of a unit: image index, activation value, position in the map."""

    image: int
    value: float
    y: int
    x: int


class _Summary(NamedTuple):
    """Per image and channel (B, C): spatial max and its flat position, sum, min and position."""

    max_values: Tensor
    max_positions: Tensor
    sums: Tensor
    min_values: Tensor
    min_positions: Tensor
    map_size: tuple[int, int]  # (H, W); (1, 1) for an (N, C) output


def _spatial(activation: Tensor) -> Tensor:
    if activation.dim() == 4:
        return activation.flatten(2)
    if activation.dim() == 2:
        return activation.unsqueeze(2)
    raise ValueError(f"a layer must output (N, C, H, W) or (N, C), not {tuple(activation.shape)}")


def _summarize(output: Tensor, *pre_activations: Tensor) -> _Summary:
    """Reduce one layer's output (and the pre-activations of its channels, in order)."""
    flat = _spatial(output)
    top = flat.max(dim=2)  # documented: the first maximal index on ties
    sums = flat.sum(dim=2, dtype=torch.float32)
    if pre_activations:
        lows = [_spatial(pre).min(dim=2) for pre in pre_activations]
        min_values = torch.cat([low.values for low in lows], dim=1)
        min_positions = torch.cat([low.indices for low in lows], dim=1)
    else:
        min_values, min_positions = flat.min(dim=2)
    map_size = (output.shape[2], output.shape[3]) if output.dim() == 4 else (1, 1)
    return _Summary(
        top.values.float(), top.indices, sums, min_values.float(), min_positions, map_size
    )


# --- running the model: one traced graph for all layers, or hooks -------------------------


Summaries = dict[str, _Summary]
T = TypeVar("T")


@dataclass
class _Plan:
    forward: Callable[[Tensor], Summaries]
    method: str  # "traced" or "hook"
    negative_sources: dict[str, str]


def _run_with_hooks(
    model: nn.Module, layers: Sequence[str], images: Tensor, keep: Callable[[Tensor], T]
) -> dict[str, T]:
    """`keep(output)` of every layer from one eager forward, stopped after the last of them.

    Hooks are removed in `finally`. `keep` runs inside the hook, before any later in-place op
    can overwrite the output.
    """
    found: dict[str, T] = {}

    def hook_for(layer: str) -> Callable[[nn.Module, object, object], None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if layer in found:  # a module called twice: its first call is the layer
                return
            if not isinstance(output, Tensor):
                raise ValueError(f"layer {layer!r} returns {type(output).__name__}")
            found[layer] = keep(output)
            if len(found) == len(layers):
                raise _StopForward

        return hook

    handles = [
        model.get_submodule(layer).register_forward_hook(hook_for(layer)) for layer in layers
    ]
    try:
        with contextlib.suppress(_StopForward):
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    missing = [layer for layer in layers if layer not in found]
    if missing:
        raise ValueError(f"layers {missing} are never called in the model's forward")
    return found


class _HookSummaries:
    """The fallback forward: hooks on the layers' outputs, all in the same eager pass."""

    def __init__(self, model: nn.Module, layers: Sequence[str]) -> None:
        self._model = weakref.ref(model)  # the plan cache must not keep the model alive
        self._layers = list(layers)

    def __call__(self, images: Tensor) -> Summaries:
        model = self._model()
        if model is None:
            raise RuntimeError("the model was garbage-collected")
        return _run_with_hooks(model, self._layers, images, _summarize)


def _hook_plan(model: nn.Module, layers: Sequence[str]) -> _Plan:
    return _Plan(_HookSummaries(model, layers), "hook", dict.fromkeys(layers, OUTPUT))


def _clamp_bounds(node: fx.Node) -> tuple[object, object]:
    lower = node.kwargs.get("min", node.args[1] if len(node.args) > 1 else None)
    upper = node.kwargs.get("max", node.args[2] if len(node.args) > 2 else None)
    return lower, upper


def _relu_input(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The input of `node` if it is a ReLU (module, function, method or clamp(min=0))."""
    is_relu = (
        (node.op == "call_module" and isinstance(modules.get(str(node.target)), nn.ReLU))
        or (node.op == "call_function" and node.target in (torch.relu, torch.relu_, F.relu))
        or (node.op == "call_method" and node.target in ("relu", "relu_"))
    )
    clamp = (node.op == "call_function" and node.target in (torch.clamp, torch.clamp_min)) or (
        node.op == "call_method" and node.target in ("clamp", "clamp_", "clamp_min")
    )
    if clamp:
        lower, upper = _clamp_bounds(node)
        is_relu = isinstance(lower, int | float) and lower == 0 and upper is None
    source = node.args[0] if is_relu and node.args else None
    return source if isinstance(source, fx.Node) else None


def _in_place(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return bool(getattr(modules.get(str(node.target)), "inplace", False))
    if node.op == "call_method":
        return str(node.target).endswith("_")
    inplace = node.kwargs.get("inplace", node.args[1] if len(node.args) > 1 else False)
    return node.target is torch.relu_ or (node.target is F.relu and inplace is True)


def _pre_activations(node: fx.Node, modules: dict[str, nn.Module]) -> list[fx.Node] | None:
    """Per-branch pre-ReLU nodes whose channel concatenation, ReLU'd, is `node`; else None."""
    source = _relu_input(node, modules)
    if source is not None:
        if _in_place(node, modules):
            # Make the ReLU out of place so that its input survives to be reduced.
            with node.graph.inserting_after(node):
                relu = node.graph.call_function(torch.relu, (source,))
            node.replace_all_uses_with(relu)
            node.graph.erase_node(node)
        return [source]
    if node.op == "call_function" and node.target in (torch.cat, torch.concat, torch.concatenate):
        parts = node.args[0]
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if dim != 1 or not isinstance(parts, list | tuple):
            return None
        sources: list[fx.Node] = []
        for part in parts:
            found = _pre_activations(part, modules) if isinstance(part, fx.Node) else None
            if found is None:
                return None
            sources += found
        return sources
    return None


def _close(ours: Tensor, reference: Tensor) -> bool:
    if ours.shape != reference.shape:
        return False
    scale = reference.abs().max().clamp(min=1e-12)
    return bool((ours - reference).abs().max() / scale <= FORWARD_TOLERANCE)


def _is_relu_of(output: Tensor, pre_activations: list[Tensor]) -> bool:
    if any(
        pre.dim() != output.dim() or pre.shape[2:] != output.shape[2:] for pre in pre_activations
    ):
        return False
    if sum(pre.shape[1] for pre in pre_activations) != output.shape[1]:
        return False
    return torch.equal(output, torch.cat(pre_activations, dim=1).clamp(min=0))


def _traced_plan(model: nn.Module, layers: Sequence[str], probe: Tensor) -> _Plan | None:
    """One graph computing every layer's summary, checked on `probe`; None if impossible."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dual = create_feature_extractor(
                model,
                return_nodes={layer: str(i) for i, layer in enumerate(layers)},
                suppress_diff_warning=True,
            )
        module = fx.GraphModule(dual, dual.eval_graph, type(model).__name__)
    except Exception:  # any failure to trace means: use hooks
        return None
    graph = module.graph
    output_node = next(node for node in graph.nodes if node.op == "output")

    def returned() -> list[fx.Node]:
        nodes = output_node.args[0]
        assert isinstance(nodes, dict)  # create_feature_extractor returns a dict
        return [nodes[str(i)] for i in range(len(layers))]

    modules = dict(module.named_modules())
    pres = [_pre_activations(post, modules) for post in returned()]
    posts = returned()  # again: an in-place ReLU at a layer's end was replaced by a new node

    # First a graph returning raw tensors, to check the trace against the eager model.
    raw: dict[str, fx.Node] = {}
    for i, post in enumerate(posts):
        raw[f"{i}"] = post
        for j, pre in enumerate(pres[i] or []):
            raw[f"{i}.{j}"] = pre
    output_node.args = (raw,)
    module.recompile()
    try:
        with torch.no_grad():
            traced = module(probe)
            eager = _run_with_hooks(model, layers, probe, Tensor.clone)
    except Exception:
        return None
    if not all(_close(traced[str(i)], eager[layer]) for i, layer in enumerate(layers)):
        return None
    sources = {}
    for i, layer in enumerate(layers):
        branch = [traced[f"{i}.{j}"] for j in range(len(pres[i] or []))]
        if branch and not _is_relu_of(traced[str(i)], branch):
            pres[i] = None
        sources[layer] = PRE_ACTIVATION if pres[i] else OUTPUT

    # Then the production graph: each layer reduced right after it is computed.
    summaries: dict[str, fx.Node] = {}
    for i, (layer, post) in enumerate(zip(layers, posts, strict=True)):
        with graph.inserting_after(post):
            summaries[layer] = graph.call_function(_summarize, (post, *(pres[i] or [])))
    output_node.args = (summaries,)
    graph.eliminate_dead_code()
    module.recompile()
    return _Plan(module, "traced", sources)


_plans: weakref.WeakKeyDictionary[nn.Module, dict[tuple[str, ...], _Plan]] = (
    weakref.WeakKeyDictionary()
)


def _plan(model: nn.Module, layers: Sequence[str], probe: Tensor) -> _Plan:
    per_model = _plans.setdefault(model, {})
    key = tuple(layers)
    if key not in per_model:
        per_model[key] = _traced_plan(model, layers, probe) or _hook_plan(model, layers)
    return per_model[key]


# --- the streaming state ------------------------------------------------------------------


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
class _Streams:
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
    def empty(cls, units: int, k: int, bins: int, device: torch.device) -> _Streams:
        def full(value: float, dtype: torch.dtype, *shape: int) -> Tensor:
            return torch.full(shape, value, dtype=dtype, device=device)

        return cls(
            top_values=full(-math.inf, torch.float32, units, k),
            top_images=full(_NO_IMAGE, torch.int64, units, k),
            top_positions=full(0, torch.int64, units, k),
            bottom_values=full(math.inf, torch.float32, units, k),
            bottom_images=full(_NO_IMAGE, torch.int64, units, k),
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

    def update(self, seen: int, images: Tensor, summary: _Summary, edges: Tensor) -> None:
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


def _fuse(summaries: Sequence[_Summary]) -> _Summary:
    """The layers' (B, C) summaries side by side, (B, U); its map size means nothing."""
    if len(summaries) == 1:
        return summaries[0]

    def side_by_side(name: str) -> Tensor:
        return torch.cat([getattr(summary, name) for summary in summaries], dim=1)

    return _Summary(
        max_values=side_by_side("max_values"),
        max_positions=side_by_side("max_positions"),
        sums=side_by_side("sums"),
        min_values=side_by_side("min_values"),
        min_positions=side_by_side("min_positions"),
        map_size=(0, 0),
    )


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


@dataclass
class LayerExamples:
    """One layer's examples and statistics: a view of its units in a pass's state."""

    layer: str
    negative_source: str  # "pre-activation" or "output": what negative examples rank
    map_size: tuple[int, int]
    count: int  # images seen
    streams: _Streams
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
        images[images == _NO_IMAGE] = -1
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
        return both[both != _NO_IMAGE]

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
    streams: _Streams | None = None

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
            for name in _Streams.field_names():
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
                state.streams = _Streams(
                    **{
                        name: torch.from_numpy(archive[name].copy())
                        for name in _Streams.field_names()
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
    plan: _Plan | None = None
    with frozen_eval(model), torch.no_grad():
        for batch in batches:
            _consume_indices(state, batch)
            state.skipped += batch.skipped
            if len(batch.indices):
                images = batch.images.to(device, non_blocking=True).float().div_(255)
                inputs = preprocess(images)
                if plan is None:
                    plan = _plan(model, names, inputs[:2])
                summaries = plan.forward(inputs)
                streams = _streams(state, summaries, plan, device)
                indices = batch.indices.to(device, non_blocking=True)
                fused = _fuse([summaries[name] for name in names])
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
    state: ExamplesState, summaries: Summaries, plan: _Plan, device: torch.device
) -> _Streams:
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
        state.streams = _Streams.empty(units, state.k, bins, device)
    elif layouts != state.layouts:
        changed = [name for name in layouts if layouts[name] != state.layouts[name]]
        raise ValueError(
            f"layers {changed} give (channels, map size, negatives from) "
            f"{[tuple(layouts[name]) for name in changed]}, but the state was collected with "
            f"{[tuple(state.layouts[name]) for name in changed]}"
        )
    return state.streams


# --- receptive fields ---------------------------------------------------------------------


def receptive_field_box(
    y: int,
    x: int,
    *,
    map_size: tuple[int, int],
    input_size: int,
    receptive_field: int,
    offset: float = 0.0,
) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), bottom/right exclusive: the input pixels unit (y, x) sees.

    A `receptive_field`-sided square centred on the unit's cell of the input moved by the
    layer's measured `offset` (LayerInfo.receptive_field_offset: padding that is not
    symmetric moves every field by up to half a stride), clipped to the image.
    """
    height, width = map_size

    def span(index: int, cells: int) -> tuple[int, int]:
        centre = (index + 0.5) * input_size / cells + offset
        start = math.floor(centre - receptive_field / 2 + 0.5)
        return max(0, start), min(input_size, start + receptive_field)

    top, bottom = span(y, height)
    left, right = span(x, width)
    return top, left, bottom, right


def crop(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    out_size: int,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """The `box` of an (H, W, 3) uint8 image as an (out_size, out_size, 3) uint8 image.

    A box that was clipped at the image border is scaled, not stretched, and centred on a
    `background` square, so the crop keeps the image's proportions.
    """
    top, left, bottom, right = box
    if bottom <= top or right <= left:
        raise ValueError(f"empty box {box}")
    region = Image.fromarray(np.ascontiguousarray(image[top:bottom, left:right]))
    scale = out_size / max(region.width, region.height)
    size = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
    region = region.resize(size, Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (out_size, out_size), background)
    canvas.paste(region, ((out_size - size[0]) // 2, (out_size - size[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8).copy()
