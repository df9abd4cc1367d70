"""Lucid's redirected ReLU gradient, applied to every ReLU of a traced graph.

A unit that is zero everywhere on the starting image has zero gradient through a plain ReLU
and never moves. Lucid (lucid/misc/redirected_relu_grad.py, on by default in its render_vis)
fixes this in the renderer, not the model: for an image whose ordinary ReLU gradient is zero
everywhere at a layer, it passes the incoming gradient through negative inputs too, except
where that would push them further down. Everywhere else the gradient is exactly ReLU's.
Lucid's render_vis redirects only during the first 16 steps (`redirected_relu_grad` is
`global_step < 16` in its `make_vis_T`), then leaves the plain ReLU gradient: early on a unit
must be woken up; later the redirect would pull the image by gradients the network does not
have. Each traced graph carries a boolean tensor, `REDIRECT_FLAG`, that the optimization loop
sets before every step (`set_redirect`); the backward reads it.

Lucent bakes a cruder variant into its InceptionV1 (always leak 0.1 of the gradient through
negatives, via boolean-mask indexing that dominates its CPU backward). FX traces through that
autograd.Function and keeps only its forward, `clamp(min=0)`; we put Lucid's rule back on
every such ReLU, so all traced models get the same, cheap, renderer-owned behaviour.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

# Lucid's render_vis: `redirected_relu_grad = global_step < 16`.
REDIRECT_STEPS = 16
REDIRECT_FLAG = "relu_redirect"  # the traced graph's buffer that switches the redirect


class _RedirectedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, enabled: Tensor | None) -> Tensor:
        ctx.save_for_backward(
            x, enabled if enabled is not None else torch.ones((), dtype=torch.bool)
        )
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        x, enabled = ctx.saved_tensors
        relu_grad = torch.ops.aten.threshold_backward(grad, x, 0)
        if x.dim() < 2:
            return relu_grad, None
        # Per image: did anything get through the ordinary gradient at this layer?
        stuck = ~relu_grad.flatten(1).any(dim=1) & enabled.to(grad.device)
        # The CPU can afford the check that skips the redirect; a GPU must not sync for it,
        # and a compiled graph must not break on it.
        eager_cpu = x.device.type == "cpu" and not torch.compiler.is_compiling()
        if eager_cpu and not bool(stuck.any()):
            return relu_grad, None
        # A positive gradient of the loss would push a negative input lower: block only that.
        redirected = grad.masked_fill((x < 0) & (grad > 0), 0)
        stuck = stuck.view(-1, *([1] * (x.dim() - 1)))
        return torch.where(stuck, redirected, relu_grad), None


def redirected_relu(x: Tensor, enabled: Tensor | None = None) -> Tensor:
    """ReLU forward; Lucid's redirected gradient backward while `enabled` (a bool tensor,
    read at backward time; None: always), the plain ReLU gradient otherwise."""
    return _RedirectedReLU.apply(x, enabled)


def set_redirect(flag: Tensor | None, step: int) -> None:
    """Switch a graph's redirect for optimization step `step` (on for the first 16)."""
    if flag is not None:
        flag.fill_(step < REDIRECT_STEPS)


_RELU_FUNCTIONS = {torch.relu, torch.relu_, F.relu}
_RELU_METHODS = {"relu", "relu_"}
_CLAMP_FUNCTIONS = {torch.clamp, torch.clamp_min}
_CLAMP_METHODS = {"clamp", "clamp_min"}


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(str(node.target)), nn.ReLU)
    if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
        return True
    if node.op == "call_method" and node.target in _RELU_METHODS:
        return True
    is_clamp = (node.op == "call_function" and node.target in _CLAMP_FUNCTIONS) or (
        node.op == "call_method" and node.target in _CLAMP_METHODS
    )
    if not is_clamp:
        return False
    # clamp(x, min=0) with no upper bound is a ReLU (this is what traced RedirectedReLUs become).
    lower = node.kwargs.get("min", node.args[1] if len(node.args) > 1 else None)
    upper = node.kwargs.get("max", node.args[2] if len(node.args) > 2 else None)
    return isinstance(lower, int | float) and lower == 0 and upper is None


def redirect_relus(graph_module: fx.GraphModule) -> int:
    """Swap every ReLU-equivalent node for `redirected_relu`, switched by the graph's
    `REDIRECT_FLAG` buffer (on until `set_redirect` says otherwise); returns how many."""
    modules = dict(graph_module.named_modules())
    # On the graph's device: a CUDA step then reads it without a copy, and a CUDA graph can
    # hold it (a CPU tensor keeps a compiled step out of CUDA graphs).
    weight = next(iter(graph_module.parameters()), None)
    device = weight.device if weight is not None else torch.device("cpu")
    graph_module.register_buffer(REDIRECT_FLAG, torch.ones((), dtype=torch.bool, device=device))
    swapped = 0
    for node in list(graph_module.graph.nodes):
        if not _is_relu(node, modules):
            continue
        with graph_module.graph.inserting_after(node):
            flag = graph_module.graph.get_attr(REDIRECT_FLAG)
        with graph_module.graph.inserting_after(flag):
            replacement = graph_module.graph.call_function(redirected_relu, (node.args[0], flag))
        node.replace_all_uses_with(replacement)
        graph_module.graph.erase_node(node)
        swapped += 1
    graph_module.graph.eliminate_dead_code()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return swapped
