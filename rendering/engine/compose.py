"""Multiply a tape's operations out into one convolution from layer A (`compose`).

`compose` replays the recorded operations on the path to B as `ConvMap`s, or raises
`NotComposable` at the first one it does not know (any other function of A's output, or A's
output combined with a tensor computed without it, such as a skip connection from before A).
The result is exact only if the tape holds every operation between A and B; callers check it
against the network itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils._pytree import tree_flatten, tree_map

from rendering.engine.conv_map import ConvMap, NotComposable, Pair, concatenated, summed
from rendering.engine.linearize import CONVS, Ref, Step, Tape, avg_pool_like_max

__all__ = ["compose"]


def _pair(value: Any) -> Pair:
    if isinstance(value, int):
        return value, value
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return values[0], values[0]
    if len(values) != 2:
        raise NotComposable(f"not a 2-d size: {value!r}")
    return values[0], values[1]


def _bound(
    args: tuple[Any, ...], kwargs: dict[str, Any], names: Sequence[str], defaults: dict[str, Any]
) -> dict[str, Any]:
    bound = dict(defaults)
    bound.update(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


def _conv_step(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ConvMap:
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    bound = _bound(args, kwargs, names, {"stride": 1, "padding": 0, "dilation": 1, "groups": 1})
    source, weight = bound["input"], bound["weight"]
    if not isinstance(source, ConvMap) or isinstance(weight, ConvMap) or weight.dim() != 4:
        raise NotComposable("a convolution whose weight depends on A, or not 2-d")
    if isinstance(bound["bias"], ConvMap):
        raise NotComposable("a convolution whose bias depends on A")
    dilation, padding = _pair(bound["dilation"]), bound["padding"]
    if padding == "valid":
        padding = 0
    elif padding == "same":
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, weight.shape[2:], strict=True))
    return source.conv(weight, _pair(bound["stride"]), _pair(padding), dilation, bound["groups"])


def _pool_step(args: tuple[Any, ...], kwargs: dict[str, Any], like_max: bool) -> ConvMap:
    names = ["input", "kernel_size", "stride", "padding"]
    defaults: dict[str, Any] = {"stride": None, "padding": 0, "divisor_override": None}
    names += ["dilation", "ceil_mode", "return_indices"] if like_max else ["ceil_mode"]
    names += [] if like_max else ["count_include_pad", "divisor_override"]
    bound = _bound(args, kwargs, names, defaults)
    source = bound["input"]
    if not isinstance(source, ConvMap):
        raise NotComposable("pooling of something else")
    size = _pair(bound["kernel_size"])
    stride = _pair(bound["stride"] or size)
    # Inside the map every window is whole, so every divisor is the window's size.
    divisor = bound["divisor_override"] or size[0] * size[1]
    filters = torch.full((*size, 1), 1.0 / divisor, dtype=source.dtype, device=source.device)
    return source.depthwise(filters, stride, _pair(bound["padding"]))


def _pad_step(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ConvMap:
    bound = _bound(args, kwargs, ("input", "pad", "mode", "value"), {"mode": "constant"})
    source, pad = bound["input"], tuple(bound["pad"])
    if not isinstance(source, ConvMap) or bound["mode"] != "constant" or len(pad) not in (2, 4):
        raise NotComposable("padding other than constant padding of the two spatial axes")
    return source.padded(pad[2] if len(pad) == 4 else 0, pad[0])


def _cat_step(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ConvMap:
    bound = _bound(args, kwargs, ("tensors", "dim"), {"dim": 0})
    parts = list(bound["tensors"])
    if bound["dim"] not in (1, -3) or not all(isinstance(p, ConvMap) for p in parts):
        raise NotComposable("a concatenation other than A-derived tensors along channels")
    return concatenated(parts)


def _batch_norm_step(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ConvMap:
    names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum")
    bound = _bound(args, kwargs, (*names, "eps"), {"weight": None, "training": False, "eps": 1e-5})
    source, variance, weight = bound["input"], bound["running_var"], bound["weight"]
    if not isinstance(source, ConvMap) or bound["training"] or variance is None:
        raise NotComposable("batch norm in training mode")
    if any(isinstance(bound[n], ConvMap) for n in names[1:5]):
        raise NotComposable("batch norm whose statistics depend on A")
    factor = torch.rsqrt(variance.to(source.dtype) + bound["eps"])
    if weight is not None:
        factor = factor * weight.to(source.dtype)
    return source.scaled(factor)


_ADDS = {torch.add, Tensor.add, Tensor.add_, Tensor.__add__, Tensor.__radd__, Tensor.__iadd__}
_SUBS = {torch.sub, Tensor.sub, Tensor.sub_, Tensor.__sub__, Tensor.__isub__}
_MULS = {torch.mul, Tensor.mul, Tensor.mul_, Tensor.__mul__, Tensor.__rmul__, Tensor.__imul__}
_DIVS = {torch.div, Tensor.div, Tensor.div_, Tensor.__truediv__, Tensor.__itruediv__}
_IDENTITIES = {Tensor.contiguous, Tensor.clone, Tensor.detach}
_DROPOUTS = {F.dropout, F.dropout2d, F.alpha_dropout, F.feature_alpha_dropout}


def _arithmetic_step(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> ConvMap:
    bound = _bound(args, kwargs, ("input", "other"), {"alpha": 1, "rounding_mode": None})
    left, right = bound.get("input"), bound.get("other")
    if func in _ADDS or func in _SUBS:
        sign = -1.0 if func in _SUBS else 1.0
        if isinstance(left, ConvMap) and isinstance(right, ConvMap):
            return summed([left, right], [1.0, sign * bound["alpha"]])
        if isinstance(left, ConvMap) and isinstance(right, int | float):
            return left  # a constant shifts B's output, not its dependence on A
        raise NotComposable("A-derived tensors added to something computed without A")
    if bound["rounding_mode"] is not None:
        raise NotComposable("rounded division")
    if isinstance(left, ConvMap) and isinstance(right, int | float) and right != 0:
        return left.scaled(1.0 / right if func in _DIVS else right)
    if func in _MULS and isinstance(right, ConvMap) and isinstance(left, int | float):
        return right.scaled(left)
    raise NotComposable("a product that is not an A-derived tensor times a number")


def _dropout_training(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return bool(_bound(args, kwargs, ("input", "p", "training"), {"training": True})["training"])


def _apply(step: Step, maps: dict[int, ConvMap]) -> ConvMap:
    func = step.func
    if func is None or step.item is not None:
        raise NotComposable(f"an operation compose does not know: {func}")
    args, kwargs = tree_map(
        lambda x: maps[x.node] if isinstance(x, Ref) else x, (step.args, step.kwargs)
    )
    if func in CONVS:
        return _conv_step(args, kwargs)
    if func is avg_pool_like_max or func is F.avg_pool2d:
        return _pool_step(args, kwargs, like_max=func is avg_pool_like_max)
    if func is F.pad:
        return _pad_step(args, kwargs)
    if func in (torch.cat, torch.concat, torch.concatenate):
        return _cat_step(args, kwargs)
    if func is F.batch_norm:
        return _batch_norm_step(args, kwargs)
    if func in _ADDS or func in _SUBS or func in _MULS or func in _DIVS:
        return _arithmetic_step(func, args, kwargs)
    first = args[0] if args else None
    if isinstance(first, ConvMap) and (
        func in _IDENTITIES
        or (func is Tensor.view_as and args[1:2] == (first,))
        or (func in _DROPOUTS and not _dropout_training(args, kwargs))
    ):
        return first
    raise NotComposable(f"an operation compose does not know: {func}")


def compose(tape: Tape, target: Tensor, channels: int) -> ConvMap:
    """`target` (a tensor of the taped forward) as a convolution of A, which has `channels`
    channels and whose output the tape started from."""
    node = tape.node(target)
    if node is None:
        raise NotComposable("the target was not computed from A by recorded operations")
    needed, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n in needed or n == 0:
            continue
        needed.add(n)
        step = tape.steps[n - 1]
        leaves, _ = tree_flatten((step.args, step.kwargs))
        stack += [x.node for x in leaves if isinstance(x, Ref)]
    maps = {0: ConvMap(channels, channels, tape.source.dtype, tape.source.device)}
    for n in sorted(needed):
        maps[n] = _apply(tape.steps[n - 1], maps)
    return maps[node]
