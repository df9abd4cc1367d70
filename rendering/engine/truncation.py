"""Run a model only up to one layer, and leave the model exactly as it was found.

Two ways to stop the forward at a layer:

1. `create_feature_extractor` (torch.fx): a graph that ends at the layer, so nothing after
   it is computed, with Lucid's redirected ReLU gradient on every ReLU (see relu_gradient)
   and a faster local response normalization (see lrn).
2. A forward hook on the layer that records its output and raises to end the eager forward;
   the hook is removed in `finally`. The model then runs exactly as written.

A trace is used only if, on a probe batch, it reproduces the eager forward and its input
gradient points the same way as the model's own (cosine >= 0.9): gradient heuristics may
differ (Lucent's always-leaky ReLU against Lucid's redirect: cosine 0.95-0.99 on
InceptionV1), but a model whose custom backward the trace would lose falls back to the hook.
The chosen forward is cached per model (weakly) and layer, so a worker traces once.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torchvision.models.feature_extraction import create_feature_extractor

from rendering.engine.lrn import speed_up_lrn
from rendering.engine.relu_gradient import REDIRECT_FLAG, redirect_relus, set_redirect

Forward = Callable[[Tensor], Tensor]

FORWARD_TOLERANCE = 1e-4  # max abs difference, relative to the largest activation
MIN_GRADIENT_COSINE = 0.9


class _StopForward(BaseException):
    """Ends the forward pass once the target layer has run.

    A BaseException so that a model's own `except Exception` cannot swallow it and run on.
    """


def layer_names(model: nn.Module) -> list[str]:
    """Names accepted as `layer`: module paths from `model.named_modules()`."""
    return [name for name, _ in model.named_modules() if name]


def resolve_layer(model: nn.Module, layer: str) -> str:
    """The module path for `layer`; Lucent's underscore spelling of nested names is accepted."""
    names = layer_names(model)
    if layer in names:
        return layer
    underscored = {name.replace(".", "_"): name for name in names}
    if layer in underscored:
        return underscored[layer]
    examples = ", ".join(repr(n) for n in names[:3] + names[-2:])
    raise ValueError(
        f"unknown layer {layer!r} for {type(model).__name__}; valid layers are the module "
        f"names of model.named_modules() (list them with "
        f"rendering.engine.layer_names(model)), e.g. {examples}"
    )


@contextmanager
def frozen_eval(model: nn.Module) -> Iterator[None]:
    """Eval mode and frozen weights for the duration; every flag restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    grads = [(param, param.requires_grad) for param in model.parameters()]
    try:
        model.eval()
        for param, _ in grads:
            param.requires_grad_(False)
        yield
    finally:
        for param, flag in grads:
            param.requires_grad_(flag)
        # Assign per module: model.train(flag) would overwrite mixed modes of submodules.
        for module, flag in modes:
            module.training = flag


class _HookForward:
    """Eager forward of the whole model, stopped by a hook right after `layer`."""

    def __init__(self, model: nn.Module, layer: str) -> None:
        # Weak: the cache must not keep the model alive through its own value.
        self._model = weakref.ref(model)
        self._layer = layer

    def __call__(self, images: Tensor) -> Tensor:
        model = self._model()
        if model is None:
            raise RuntimeError("the model was garbage-collected")
        captured: list[Tensor] = []

        def capture(_module: nn.Module, _inputs: object, output: object) -> None:
            if not isinstance(output, Tensor):
                raise ValueError(f"layer {self._layer!r} returns {type(output).__name__}")
            captured.append(output)
            raise _StopForward

        handle = model.get_submodule(self._layer).register_forward_hook(capture)
        try:
            with contextlib.suppress(_StopForward):
                model(images)
        finally:
            handle.remove()
        if not captured:
            raise ValueError(f"layer {self._layer!r} is never called in the model's forward")
        return captured[0]


class _TracedForward:
    def __init__(
        self, graph: Callable[[Tensor], dict[str, Tensor]], redirect: Tensor | None = None
    ) -> None:
        self.graph = graph
        # The redirected ReLUs' switch (a buffer of the uncompiled graph).
        self.redirect = redirect if redirect is not None else getattr(graph, REDIRECT_FLAG, None)

    def set_step(self, step: int) -> None:
        """Lucid's redirected ReLU gradient for the first steps only (see relu_gradient)."""
        set_redirect(self.redirect, step)

    def __call__(self, images: Tensor) -> Tensor:
        return self.graph(images)["out"]


def _trace(model: nn.Module, layer: str) -> _TracedForward:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dual = create_feature_extractor(
            model, return_nodes={layer: "out"}, suppress_diff_warning=True
        )
    # Keep only the eval graph, in a plain GraphModule that never swaps graphs on .train().
    graph = fx.GraphModule(dual, dual.eval_graph, type(model).__name__)
    redirect_relus(graph)
    speed_up_lrn(graph)
    graph.eval()
    return _TracedForward(graph)


@contextmanager
def _full_precision() -> Iterator[None]:
    """Plain fp32 convolutions and matrix products while a trace is checked. On CUDA both
    default to TF32 (10-bit mantissas), so the traced and the eager forward, which may get
    different kernels, can differ by far more than FORWARD_TOLERANCE for no fault of the
    trace; the check compares the graphs, not the arithmetic."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def _faithful(candidate: Forward, reference: Forward, probe: Tensor) -> bool:
    """Same output as the eager model, and an input gradient pointing the same way."""
    outputs, grads = [], []
    for forward in (candidate, reference):
        images = probe.clone().requires_grad_(True)
        out = forward(images)
        # A fixed random projection reaches every channel and position of the output.
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
        (grad,) = torch.autograd.grad((out * weights.to(out)).sum(), images)
        outputs.append(out.detach())
        grads.append(grad.flatten())
    ours, theirs = outputs
    if ours.shape != theirs.shape:
        return False
    scale = theirs.abs().max().clamp(min=1e-12)
    if (ours - theirs).abs().max() / scale > FORWARD_TOLERANCE:
        return False
    return F.cosine_similarity(grads[0], grads[1], dim=0).item() >= MIN_GRADIENT_COSINE


@dataclass(frozen=True)
class Truncation:
    forward: Forward
    method: str  # "traced" or "hook"
    channels: int


_cache: weakref.WeakKeyDictionary[nn.Module, dict[tuple[str, bool], Truncation]] = (
    weakref.WeakKeyDictionary()
)


def truncate(model: nn.Module, layer: str, probe: Tensor, *, compile: bool = False) -> Truncation:
    """The cached forward that ends at `layer`; call inside `frozen_eval(model)`.

    `probe` (a small preprocessed batch at the render size) checks the trace on first use and
    reveals the layer's channel count.
    """
    per_model = _cache.setdefault(model, {})
    key = (layer, compile)
    if key in per_model:
        return per_model[key]

    hook = _HookForward(model, layer)
    forward: Forward = hook
    method = "hook"
    try:
        traced = _trace(model, layer)
        with _full_precision():
            faithful = _faithful(traced, hook, probe)
    except Exception:  # any failure to trace or to check the trace means: use the hook
        faithful = False
    if faithful:
        forward, method = traced, "traced"

    with torch.no_grad():
        shape = forward(probe[:1]).shape
    if len(shape) not in (2, 4):
        raise ValueError(f"layer {layer!r} outputs shape {tuple(shape)}; need (N, C[, H, W])")
    if compile and isinstance(forward, _TracedForward):
        # Only a graph can be compiled: the hook path ends by raising, a graph break.
        forward = _TracedForward(torch.compile(forward.graph), forward.redirect)
        method = "traced+compiled"
    truncation = Truncation(forward, method, int(shape[1]))
    per_model[key] = truncation
    return truncation
