"""The network with its non-linear steps made linear, and the exact linear map between layers.

`Linearized` runs a model linearized: every ReLU is the identity (`F.relu`, `torch.relu`,
`Tensor.relu`, in-place variants, and `clamp(min=0)`, which is how lucent's RedirectedReLU
computes its forward), max-pooling is average pooling over the same window (`avg_pool_like_max`)
and -inf padding is zero padding, local response normalization is the identity. Batch norm is
left alone: in eval mode it is affine.

Between two layers A and B the linearized network is a composition of convolutions, average
pools, paddings, per-channel scalings, concatenations and sums, so away from the borders of its
maps it is one convolution from A to B. A `Tape` records, during one forward, the operations
that read a tensor computed from A; `compose` multiplies them out into that convolution
(`ConvMap`; `dense` gives its kernels, a concatenation's as a `Stack` of parts), or raises
`NotComposable` at the first operation on the path to B that it does not know (any other
function of A's output, or A's output combined with a tensor computed without it, such as a
skip connection from before A). The result is exact only if the tape holds every operation
between A and B; callers check it against the network itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

__all__ = [
    "ConvMap",
    "Linearized",
    "NotComposable",
    "Stack",
    "Tape",
    "avg_pool_like_max",
    "compose",
]

Pair = tuple[int, int]


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
_CONVS: frozenset[Callable[..., Any]] = frozenset({F.conv2d, torch.conv2d})


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
        if func in _CONVS and self.between:
            self.conv_weights.append(args[1] if len(args) > 1 else kwargs["weight"])
        output = func(*args, **kwargs)
        if self.between and self.tape is not None:
            self.tape.record(func, args, kwargs, output)
        return output


def _on_meta(value: Any) -> Any:
    return value.to("meta") if isinstance(value, Tensor) else value


class NotComposable(Exception):
    """The path from A to B holds an operation `compose` does not know."""


@dataclass(frozen=True)
class _Ref:
    node: int  # 0 is A's output; n > 0 the output of the tape's step n - 1


@dataclass
class _Step:
    func: Callable[..., Any] | None  # None: a tensor an unknown in-place write changed
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    item: int | None = None  # which tensor of a tuple output


@dataclass
class Tape:
    """The operations of one forward that read a tensor computed from A's output, with those
    tensors replaced by references; Python object ids tell which tensors those are, so every
    recorded tensor is kept alive until the tape is dropped."""

    steps: list[_Step] = field(default_factory=list)
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
                _Ref(self._nodes[id(x)]) if isinstance(x, Tensor) and id(x) in self._nodes else x
            ),
            (args, kwargs),
        )
        if isinstance(output, Tensor):
            self._add(_Step(func, refs, kwrefs), output)
        elif isinstance(output, tuple | list):
            for item, tensor in enumerate(output):
                if isinstance(tensor, Tensor):
                    self._add(_Step(func, refs, kwrefs, item), tensor)
        elif args and isinstance(args[0], Tensor) and _writes_in_place(func):
            self._add(_Step(None, (), {}), args[0])

    def _add(self, step: _Step, tensor: Tensor) -> None:
        self.steps.append(step)
        self._nodes[id(tensor)] = len(self.steps)
        self._alive.append(tensor)


def _writes_in_place(func: Callable[..., Any]) -> bool:
    name = getattr(func, "__name__", "")
    return name == "__setitem__" or (name.endswith("_") and not name.startswith("__"))


@dataclass(frozen=True, eq=False)
class _Prefix:
    """A per-channel filter of A: Z[a, z] = sum_l filters[l, a] A[a, stride z + origin + l]."""

    filters: Tensor  # (fh, fw, C_A or 1)
    stride: Pair
    origin: Pair


@dataclass(frozen=True, eq=False)
class Stack:
    """Kernels stacked along output channels, each in its own place of a common box, spatial
    axes first; a concatenation whose zero-padded kernel need not be built."""

    parts: tuple[tuple[Tensor, Pair], ...]  # (kernel (kh, kw, C_i, C_A), its offset in the box)
    size: Pair

    def solid(self) -> Tensor:
        """The stacked kernel (kh, kw, C, C_A), zero outside each part."""
        first = self.parts[0][0]
        channels = sum(kernel.shape[2] for kernel, _ in self.parts)
        out = first.new_zeros(*self.size, channels, first.shape[3])
        start = 0
        for kernel, (y, x) in self.parts:
            (rows, cols, count) = kernel.shape[:3]
            out[y : y + rows, x : x + cols, start : start + count] = kernel
            start += count
        return out


@dataclass(frozen=True, eq=False)
class ConvMap:
    """A tensor T computed from A, as a convolution of A (exact away from the maps' borders):
    T[c, y] = sum over a, i of kernel[i, c, a] Z[a, stride y + origin + i], per spatial axis,
    where Z is A through `prefix` (None: Z = A). `kernel` None is the identity, T[c] = Z[c].

    Kernels are stored spatial axes first, (kh, kw, C, C_A), so that shifting and adding them
    moves whole (C, C_A) blocks. Per-channel filters right after A (the pools that open a mixed
    layer) stay in `prefix`, so the convolutions after them compose on small kernels; `folded`
    multiplies them in.
    """

    channels: int  # C of T
    sources: int  # C_A
    dtype: torch.dtype
    device: torch.device
    kernel: Tensor | Stack | None = None  # (kh, kw, channels, sources)
    stride: Pair = (1, 1)
    origin: Pair = (0, 0)
    prefix: _Prefix | None = None

    def conv(
        self, weight: Tensor, stride: Pair, padding: Pair, dilation: Pair, groups: int
    ) -> ConvMap:
        if isinstance(self.kernel, Stack):
            return self._solid().conv(weight, stride, padding, dilation, groups)
        weight = _ungrouped(weight.detach().to(self.dtype), groups)
        if weight.shape[1] != self.channels:
            raise NotComposable(
                f"a convolution expects {weight.shape[1]} channels, not {self.channels}"
            )
        spacing = _mul(self.stride, dilation)
        if self.kernel is None:
            kernel = _dilated(weight, spacing)
        else:
            kernel = _conv_of_kernels(weight, spacing, self.kernel)
        return replace(
            self,
            channels=weight.shape[0],
            kernel=kernel,
            stride=_mul(self.stride, stride),
            origin=_sub(self.origin, _mul(self.stride, padding)),
        )

    def depthwise(self, filters: Tensor, stride: Pair, padding: Pair) -> ConvMap:
        """T'[c, y] = sum_j filters[j, c] T[c, stride y - padding + j]; filters (u, v, C or 1)."""
        if isinstance(self.kernel, Stack):
            return self._solid().depthwise(filters, stride, padding)
        filters = filters.to(self.dtype)
        if self.kernel is None:
            prefix = self._prefix_with_identity()
            return replace(
                self,
                stride=(1, 1),
                origin=(0, 0),
                prefix=_Prefix(
                    _spread(prefix.filters, (1, 1), filters, prefix.stride),
                    _mul(prefix.stride, stride),
                    _sub(prefix.origin, _mul(prefix.stride, padding)),
                ),
            )
        return replace(
            self,
            kernel=_spread(self.kernel, (1, 1), filters[..., None], self.stride),
            stride=_mul(self.stride, stride),
            origin=_sub(self.origin, _mul(self.stride, padding)),
        )

    def scaled(self, factor: Tensor | float) -> ConvMap:
        if not isinstance(factor, Tensor):
            factor = torch.full((1,), float(factor), dtype=self.dtype, device=self.device)
        return self.depthwise(factor.reshape(1, 1, -1), (1, 1), (0, 0))

    def padded(self, top: int, left: int) -> ConvMap:
        return replace(self, origin=_sub(self.origin, _mul(self.stride, (top, left))))

    def folded(self) -> ConvMap:
        """The same map with `prefix` multiplied into `kernel`."""
        if self.prefix is None:
            return self
        prefix = self.prefix
        return replace(
            self,
            kernel=_spread(self._dense_kernel(), prefix.stride, prefix.filters, (1, 1)),
            stride=_mul(prefix.stride, self.stride),
            origin=_add(prefix.origin, _mul(prefix.stride, self.origin)),
            prefix=None,
        )

    def dense(self) -> tuple[Stack, Pair, Pair]:
        """(kernels of T over A itself, stride, origin), a concatenation left in parts."""
        folded = self.folded()
        if isinstance(folded.kernel, Stack):
            return folded.kernel, folded.stride, folded.origin
        kernel = folded._dense_kernel()
        return (
            Stack(((kernel, (0, 0)),), (kernel.shape[0], kernel.shape[1])),
            folded.stride,
            folded.origin,
        )

    def _solid(self) -> ConvMap:
        return replace(self, kernel=self._dense_kernel())

    def _dense_kernel(self) -> Tensor:
        if isinstance(self.kernel, Stack):
            return self.kernel.solid()
        if self.kernel is not None:
            return self.kernel
        return torch.eye(self.sources, dtype=self.dtype, device=self.device)[None, None]

    def _prefix_with_identity(self) -> _Prefix:
        """The prefix that, with an identity kernel of stride 1 and origin 0, is this map."""
        prefix = self.prefix or _Prefix(
            torch.ones(1, 1, 1, dtype=self.dtype, device=self.device), (1, 1), (0, 0)
        )
        return _Prefix(
            prefix.filters,
            _mul(prefix.stride, self.stride),
            _add(prefix.origin, _mul(prefix.stride, self.origin)),
        )


def _mul(a: Pair, b: Pair) -> Pair:
    return a[0] * b[0], a[1] * b[1]


def _add(a: Pair, b: Pair) -> Pair:
    return a[0] + b[0], a[1] + b[1]


def _sub(a: Pair, b: Pair) -> Pair:
    return a[0] - b[0], a[1] - b[1]


def _ungrouped(weight: Tensor, groups: int) -> Tensor:
    """A grouped convolution's weight as the block-diagonal weight of an ungrouped one."""
    if groups == 1:
        return weight
    out_channels, per_group = weight.shape[:2]
    full = weight.new_zeros(out_channels, per_group * groups, *weight.shape[2:])
    rows = out_channels // groups
    for g in range(groups):
        full[g * rows : (g + 1) * rows, g * per_group : (g + 1) * per_group] = weight[
            g * rows : (g + 1) * rows
        ]
    return full


def _dilated(weight: Tensor, spacing: Pair) -> Tensor:
    """Convolution weight (O, C, u, v) as a kernel (kh, kw, O, C) with its taps `spacing` apart;
    a copy, never the model's own memory."""
    (o, c, u, v), (sy, sx) = weight.shape, spacing
    out = weight.new_zeros(sy * (u - 1) + 1, sx * (v - 1) + 1, o, c)
    out[::sy, ::sx] = weight.permute(2, 3, 0, 1)
    return out


def _spread(x: Tensor, x_step: Pair, taps: Tensor, tap_step: Pair) -> Tensor:
    """out[x_step i + tap_step j] = sum of x[i] taps[j] (spatial axes first, the others
    broadcast): the convolution of two filters, each with its own spacing."""
    if taps.shape[0] * taps.shape[1] > x.shape[0] * x.shape[1]:
        x, x_step, taps, tap_step = taps, tap_step, x, x_step
    (h, w), (u, v) = x.shape[:2], taps.shape[:2]
    rest = torch.broadcast_shapes(x.shape[2:], taps.shape[2:])
    x = x.reshape(h, w, *[1] * (len(rest) + 2 - x.dim()), *x.shape[2:])
    height = x_step[0] * (h - 1) + tap_step[0] * (u - 1) + 1
    width = x_step[1] * (w - 1) + tap_step[1] * (v - 1) + 1
    if (u, v) == (1, 1) and x_step == (1, 1):
        return x * taps[0, 0]  # a per-channel scaling (batch norm): one pass
    out = x.new_zeros(height, width, *rest)
    rows, cols = x_step[0] * (h - 1) + 1, x_step[1] * (w - 1) + 1
    # Pools filter every channel alike: then each tap is a number, one fused add.
    numbers = taps.flatten().tolist() if taps[0, 0].numel() == 1 else None
    for j in range(u):
        for k in range(v):
            y0, x0 = tap_step[0] * j, tap_step[1] * k
            block = out[y0 : y0 + rows : x_step[0], x0 : x0 + cols : x_step[1]]
            if numbers is None:
                block += x * taps[j, k]
            elif numbers[j * v + k] != 0:
                block.add_(x, alpha=numbers[j * v + k])
    return out


def _conv_of_kernels(weight: Tensor, spacing: Pair, kernel: Tensor) -> Tensor:
    """out[spacing j + i, o, a] = sum_c weight[o, c, j] kernel[i, c, a]: a convolution after
    the map `kernel`, one batch of matrix products per tap of whichever of the two has fewer."""
    (o, c, u, v), (kh, kw, _, a) = weight.shape, kernel.shape
    (sy, sx) = spacing
    # Contiguous taps: a product with a strided or permuted view is many times slower.
    taps = weight.permute(2, 3, 0, 1).contiguous()  # (u, v, O, C)
    out = kernel.new_zeros(sy * (u - 1) + kh, sx * (v - 1) + kw, o, a)
    if u * v <= kh * kw:
        for j in range(u):
            for k in range(v):
                out[sy * j : sy * j + kh, sx * k : sx * k + kw] += taps[j, k] @ kernel
    else:
        rows, cols = sy * (u - 1) + 1, sx * (v - 1) + 1
        flat = taps.view(u * v * o, c)
        for i in range(kh):
            for m in range(kw):
                product = (flat @ kernel[i, m]).view(u, v, o, a)
                out[i : i + rows : sy, m : m + cols : sx] += product
    return out


def _aligned(maps: Sequence[ConvMap]) -> tuple[ConvMap, Pair, list[tuple[Tensor, Pair]]]:
    """The maps' dense kernels on one prefix, stride and origin: (a map with the common prefix,
    stride and origin and no kernel, the common box's size, each kernel with its offset in it)."""
    first = maps[0]
    if not all(m.prefix is first.prefix and m.stride == first.stride for m in maps):
        maps = [m.folded() for m in maps]
        first = maps[0]
    if any(m.stride != first.stride or m.sources != first.sources for m in maps):
        raise NotComposable("tensors on different grids are combined")
    kernels = [m._dense_kernel() for m in maps]
    low = (min(m.origin[0] for m in maps), min(m.origin[1] for m in maps))
    high = (
        max(m.origin[0] + k.shape[0] for m, k in zip(maps, kernels, strict=True)),
        max(m.origin[1] + k.shape[1] for m, k in zip(maps, kernels, strict=True)),
    )
    placed = [(k, _sub(m.origin, low)) for m, k in zip(maps, kernels, strict=True)]
    return replace(first, kernel=None, origin=low), _sub(high, low), placed


def _concatenated(maps: Sequence[ConvMap]) -> ConvMap:
    common, size, placed = _aligned(maps)
    channels = sum(m.channels for m in maps)
    return replace(common, channels=channels, kernel=Stack(tuple(placed), size))


def _summed(maps: Sequence[ConvMap], signs: Sequence[float]) -> ConvMap:
    if any(m.channels != maps[0].channels for m in maps):
        raise NotComposable("tensors of different channel counts are added")
    common, (height, width), placed = _aligned(maps)
    out = placed[0][0].new_zeros(height, width, common.channels, common.sources)
    for (kernel, (y, x)), sign in zip(placed, signs, strict=True):
        out[y : y + kernel.shape[0], x : x + kernel.shape[1]] += sign * kernel
    return replace(common, kernel=out)


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
    return _concatenated(parts)


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
            return _summed([left, right], [1.0, sign * bound["alpha"]])
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


def _apply(step: _Step, maps: dict[int, ConvMap]) -> ConvMap:
    func = step.func
    if func is None or step.item is not None:
        raise NotComposable(f"an operation compose does not know: {func}")
    args, kwargs = tree_map(
        lambda x: maps[x.node] if isinstance(x, _Ref) else x, (step.args, step.kwargs)
    )
    if func in _CONVS:
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
        stack += [x.node for x in leaves if isinstance(x, _Ref)]
    maps = {0: ConvMap(channels, channels, tape.source.dtype, tape.source.device)}
    for n in sorted(needed):
        maps[n] = _apply(tape.steps[n - 1], maps)
    return maps[node]
