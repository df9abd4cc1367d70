"""The network with its non-linear steps made linear, and a tape of what follows layer A.

`Linearized` runs a model linearized: every ReLU is the identity (`F.relu`, `torch.relu`,
`Tensor.relu`, in-place variants, and `clamp(min=0)`, which is how lucent's RedirectedReLU
computes its forward), max-pooling is average pooling over the same window (`avg_pool_like_max`)
and -inf padding is zero padding, local response normalization is the identity. Batch norm is
left alone: in eval mode it is affine.

Between two layers A and B the linearized network is a composition of convolutions, average
pools, paddings, per-channel scalings, concatenations and sums, so away from the borders of its
maps it is one convolution from A to B. A `Tape` records, during one forward, the operations
that read a tensor computed from A; `compose.compose` multiplies them out into that convolution
(`conv_map.ConvMap`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

__all__ = ["CONVS", "Linearized", "Ref", "Step", "Tape", "avg_pool_like_max"]


def avg_pool_like_max(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:
    """Average pooling over the window a max-pool call would use (same signature)."""
    if dilation not in (1, (1, 1)):
        raise ValueError("dilated max-pooling cannot be linearized here")
    if return_indices:
        raise ValueError("max-pooling that returns indices cannot be linearized here")
    return F.avg_pool2d(input, kernel_size, stride or kernel_size, padding, ceil_mode, True)


_RELUS: frozenset[Callable[..., Any]] = frozenset(
    {F.relu, F.relu_, torch.relu, torch.relu_, Tensor.relu, Tensor.relu_}
)
_CLAMPS: frozenset[Callable[..., Any]] = frozenset(
    {torch.clamp, torch.clamp_min, Tensor.clamp, Tensor.clamp_min}
)
_MAX_POOLS: frozenset[Callable[..., Any]] = frozenset(
    {F.max_pool2d, torch.max_pool2d, F._max_pool2d}  # type: ignore[attr-defined]
)
CONVS: frozenset[Callable[..., Any]] = frozenset({F.conv2d, torch.conv2d})


def _is_relu_clamp(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    lower = kwargs.get("min", args[1] if len(args) > 1 else None)
    upper = kwargs.get("max", args[2] if len(args) > 2 else None)
    return isinstance(lower, int | float) and lower == 0 and upper is None


class Linearized(TorchFunctionMode):
    """Runs the model linearized (module docstring). While `between` it records the weights of
    the convolutions that run and, given a tape, every operation on a tensor computed from A.
    With `meta_before`, everything before A runs on the meta device: shapes, no arithmetic."""

    def __init__(self, tape: Tape | None = None, *, meta_before: bool = False) -> None:
        super().__init__()
        self.between = False
        self.conv_weights: list[Tensor] = []
        self.tape = tape
        self.meta_before = meta_before

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        if self.meta_before and not self.between:
            args, kwargs = tree_map(_on_meta, (args, kwargs))
        if func in _RELUS or (func in _CLAMPS and _is_relu_clamp(args, kwargs)):
            return args[0] if args else kwargs["input"]
        if func is F.local_response_norm:
            return args[0] if args else kwargs["input"]
        if func in _MAX_POOLS or getattr(func, "__name__", "") == "max_pool2d_with_indices":
            func = avg_pool_like_max
        if func is F.pad and (
            kwargs.get("value") == -math.inf or (len(args) > 3 and args[3] == -math.inf)
        ):
            args = tuple(args[:3])
            kwargs["value"] = 0.0
        if func in CONVS and self.between:
            self.conv_weights.append(args[1] if len(args) > 1 else kwargs["weight"])
        output = func(*args, **kwargs)
        if self.between and self.tape is not None:
            self.tape.record(func, args, kwargs, output)
        return output


def _on_meta(value: Any) -> Any:
    return value.to("meta") if isinstance(value, Tensor) else value


@dataclass(frozen=True)
class Ref:
    node: int  # 0 is A's output; n > 0 the output of the tape's step n - 1


@dataclass
class Step:
    func: Callable[..., Any] | None  # None: a tensor an unknown in-place write changed
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    item: int | None = None  # which tensor of a tuple output


@dataclass
class Tape:
    """The operations of one forward that read a tensor computed from A's output, with those
    tensors replaced by references; Python object ids tell which tensors those are, so every
    recorded tensor is kept alive until the tape is dropped."""

    steps: list[Step] = field(default_factory=list)
    _nodes: dict[int, int] = field(default_factory=dict)
    _alive: list[Tensor] = field(default_factory=list)

    def start(self, source: Tensor) -> None:
        self._nodes[id(source)] = 0
        self._alive.append(source)

    def node(self, tensor: Tensor) -> int | None:
        return self._nodes.get(id(tensor))

    @property
    def source(self) -> Tensor:
        return self._alive[0]

    def record(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> None:
        leaves, _ = tree_flatten((args, kwargs))
        if not any(isinstance(x, Tensor) and id(x) in self._nodes for x in leaves):
            return
        refs, kwrefs = tree_map(
            lambda x: (
                Ref(self._nodes[id(x)]) if isinstance(x, Tensor) and id(x) in self._nodes else x
            ),
            (args, kwargs),
        )
        if isinstance(output, Tensor):
            self._add(Step(func, refs, kwrefs), output)
        elif isinstance(output, tuple | list):
            for item, tensor in enumerate(output):
                if isinstance(tensor, Tensor):
                    self._add(Step(func, refs, kwrefs, item), tensor)
        elif args and isinstance(args[0], Tensor) and _writes_in_place(func):
            self._add(Step(None, (), {}), args[0])

    def _add(self, step: Step, tensor: Tensor) -> None:
        self.steps.append(step)
        self._nodes[id(tensor)] = len(self.steps)
        self._alive.append(tensor)


def _writes_in_place(func: Callable[..., Any]) -> bool:
    name = getattr(func, "__name__", "")
    return name == "__setitem__" or (name.endswith("_") and not name.startswith("__"))
