"""Per-layer summaries of a batch, for every selected layer in one forward.

Every channel of each layer's output is reduced on the device to its spatial maximum and
minimum with their positions, and to its spatial sum (`Summary`, (B, C) tensors); nothing
larger leaves the forward. The forward runs once per batch for all layers and stops after the
deepest one.

The minimum is taken of the pre-activation where the model has one. The model is traced with
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
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torchvision.models.feature_extraction import create_feature_extractor

from rendering.engine.truncation import FORWARD_TOLERANCE, _StopForward

__all__ = ["OUTPUT", "PRE_ACTIVATION", "Summaries", "Summary", "SummaryPlan", "summary_plan"]

OUTPUT = "output"
PRE_ACTIVATION = "pre-activation"


class Summary(NamedTuple):
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


def _summarize(output: Tensor, *pre_activations: Tensor) -> Summary:
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
    return Summary(
        top.values.float(), top.indices, sums, min_values.float(), min_positions, map_size
    )


Summaries = dict[str, Summary]
T = TypeVar("T")


@dataclass
class SummaryPlan:
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


def _hook_plan(model: nn.Module, layers: Sequence[str]) -> SummaryPlan:
    return SummaryPlan(_HookSummaries(model, layers), "hook", dict.fromkeys(layers, OUTPUT))


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


def _traced_plan(model: nn.Module, layers: Sequence[str], probe: Tensor) -> SummaryPlan | None:
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
    return SummaryPlan(module, "traced", sources)


_plans: weakref.WeakKeyDictionary[nn.Module, dict[tuple[str, ...], SummaryPlan]] = (
    weakref.WeakKeyDictionary()
)


def summary_plan(model: nn.Module, layers: Sequence[str], probe: Tensor) -> SummaryPlan:
    """How to summarize `layers` of `model` (cached per model): traced if the trace checks out
    on `probe`, else hooks."""
    per_model = _plans.setdefault(model, {})
    key = tuple(layers)
    if key not in per_model:
        per_model[key] = _traced_plan(model, layers, probe) or _hook_plan(model, layers)
    return per_model[key]
