"""Layer facts measured on the model itself: output shape, receptive field and its stride.

Nothing here is a hand-written table. Shapes come from one forward pass at the model's input
size. The receptive field of a layer is the set of input pixels that can influence the unit at
the centre of its output: we measure it as the support of the input gradient of that unit in a
*linearized copy* of the network (weights replaced by their absolute values, batch-norm statistics
reset, max-pooling replaced by average pooling over the same window and -inf padding by zeros),
where every path through the window contributes with a positive sign, so no pixel is missed by a
ReLU, an argmax or a cancellation. The stride is how far that support moves when the unit moves
one position to the right. Both are measured inside the input image, so a receptive field larger
than the image is reported clipped to it. Where the support is clipped on both sides (deep
layers, global pools) the stride is measured from shapes instead: how many input columns one
more output column takes, over a canvas `_WIDER` columns wider (one forward, no gradient).
"""

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from rendering.engine.linearize import avg_pool_like_max
from rendering.engine.zoo.spec import LayerSpec


@dataclass(frozen=True)
class LayerInfo:
    name: str
    module: str
    kind: str
    num_units: int
    output_shape: tuple[int, ...]  # (C, H, W) for spatial layers, (C,) for linear ones
    receptive_field: int  # pixels, at the model's input size
    receptive_field_stride: int  # pixels between neighbouring units; 0 for non-spatial layers
    # Pixels from where a crop centred at (i + 0.5) * input_size / map_side puts unit i's field
    # to where its measured field's centre is (asymmetric padding moves it); 0 where the field
    # is clipped by the image on one side only, and for non-spatial layers.
    receptive_field_offset: float = 0.0

    @property
    def spatial(self) -> bool:
        return len(self.output_shape) == 3


class _LinearizedPooling(TorchFunctionMode):
    """Max-pooling → average pooling and -inf padding → 0 while measuring receptive fields."""

    _MAX_POOLS: frozenset[Callable[..., Any]] = frozenset(
        {F.max_pool2d, torch.max_pool2d, torch.nn.functional._max_pool2d}  # type: ignore[attr-defined]
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        if func in self._MAX_POOLS or getattr(func, "__name__", "") == "max_pool2d_with_indices":
            return avg_pool_like_max(*args, **kwargs)
        if func is F.pad and (
            kwargs.get("value") == -math.inf or (len(args) > 3 and args[3] == -math.inf)
        ):
            args = tuple(args[:3])
            kwargs["value"] = 0.0
        return func(*args, **kwargs)


def _pool_module_forward(module: nn.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    return avg_pool_like_max(
        x, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode
    )


def _linearized_copy(model: nn.Module) -> nn.Module:
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
        for parameter in twin.parameters():
            parameter.abs_()
            parameter.requires_grad_(False)
    for module in twin.modules():
        if isinstance(module, nn.MaxPool2d):
            module.forward = partial(_pool_module_forward, module)  # type: ignore[method-assign]
        if hasattr(module, "inplace"):
            module.inplace = False  # type: ignore[assignment]
    return twin


def _capture(
    model: nn.Module, specs: Sequence[LayerSpec], images: torch.Tensor
) -> list[torch.Tensor]:
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for spec in specs:
            module = model.get_submodule(spec.module)
            handles.append(
                module.register_forward_hook(
                    lambda _m, _i, out, name=spec.name: outputs.__setitem__(name, out)
                )
            )
        try:
            model(images)
        except RuntimeError:
            # Some models (lucent's InceptionV1) only run their classifier head at one input
            # size; on a wider canvas the layers we measure have still run by then.
            if len(outputs) < len(specs):
                raise
    finally:
        for handle in handles:
            handle.remove()
    return [outputs[spec.name] for spec in specs]


def resolve_layers(model: nn.Module, specs: Sequence[LayerSpec]) -> None:
    """Raise ValueError naming the valid module paths if a spec points at no module."""
    names = {name for name, _ in model.named_modules()}
    for spec in specs:
        if spec.module not in names:
            sample = ", ".join(sorted(n for n in names if n and "." not in n)[:12])
            raise ValueError(
                f"layer {spec.name!r} names module {spec.module!r}, which the model does not "
                f"have; top-level modules include: {sample}"
            )


def _support_box(grad: torch.Tensor) -> tuple[int, int, int, int]:
    rows = grad.abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = grad.abs().sum(dim=(0, 1)).nonzero().flatten()
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def _centre_supports(
    twin: nn.Module, specs: Sequence[LayerSpec], height: int, width: int
) -> tuple[list[torch.Tensor], list[tuple[tuple[int, int, int, int], ...]]]:
    """Per layer: its output, and the input support of its centre unit and right neighbour."""
    images = torch.rand(2, 3, height, width).requires_grad_(True)
    with _LinearizedPooling():
        outputs = _capture(twin, specs, images)
    supports: list[tuple[tuple[int, int, int, int], ...]] = []
    for output in outputs:
        if output.dim() != 4 or output.shape[3] < 2:
            supports.append(())
            continue
        cy, cx = output.shape[2] // 2, (output.shape[3] - 1) // 2
        # Channels weighted by random positive numbers, not summed: a plain sum over channels
        # has zero gradient through a normalization across channels (ConvNeXt's LayerNorm).
        weights = torch.rand(output.shape[1], generator=torch.Generator().manual_seed(0)) + 0.5
        target = (output[0, :, cy, cx] * weights).sum() + (output[1, :, cy, cx + 1] * weights).sum()
        (grad,) = torch.autograd.grad(target, images, retain_graph=True)
        if not grad[0].any() or not grad[1].any():
            supports.append(())  # nothing reaches the input: reported as the whole image
            continue
        supports.append((_support_box(grad[0]), _support_box(grad[1])))
    return outputs, supports


def _offset(
    pair: tuple[tuple[int, int, int, int], ...], output_width: int, input_size: int
) -> float:
    """Measured centre of the centre unit's support minus the (i + 0.5) * input / width
    estimate, along the columns (the zoo's models pad rows and columns alike)."""
    (_, _, left, right) = pair[0]
    if (left == 0) != (right == input_size - 1):
        return 0.0  # clipped on one side: its middle is not the field's centre
    cx = (output_width - 1) // 2
    return (left + right + 1) / 2 - (cx + 0.5) * input_size / output_width


def _stride(pair: tuple[tuple[int, int, int, int], ...]) -> int | None:
    """Column shift of the support between neighbours, read on the left edge when it is inside
    the canvas (a support that starts at column 0 may be clipped there)."""
    (_, _, left0, _), (_, _, left1, _) = pair
    return left1 - left0 if left0 > 0 else None


_WIDER = 256  # a multiple of every stride a vision model has (powers of two up to 256)


def _shape_strides(
    twin: nn.Module,
    specs: Sequence[LayerSpec],
    indices: Sequence[int],
    input_size: int,
) -> dict[int, int]:
    """Input columns per output column, from the output widths at two canvas widths."""
    height = min(input_size, 96)
    try:
        with torch.no_grad(), _LinearizedPooling():
            narrow = _capture(twin, specs, torch.rand(1, 3, height, input_size))
            wide = _capture(twin, specs, torch.rand(1, 3, height, input_size + _WIDER))
    except (RuntimeError, AssertionError, ValueError):
        return {}  # a model that only runs at its own size (a ViT, CLIP's attention pool)
    strides = {}
    for i, a, b in zip(indices, narrow, wide, strict=True):
        if a.dim() == 4 and b.shape[3] > a.shape[3]:
            strides[i] = round(_WIDER / (b.shape[3] - a.shape[3]))
    return strides


def inspect_layers(
    model: nn.Module, specs: Sequence[LayerSpec], *, input_size: int
) -> list[LayerInfo]:
    """Measure every layer in `specs` on `model` (left unchanged) at `input_size` pixels."""
    resolve_layers(model, specs)
    twin = _linearized_copy(model)
    outputs, supports = _centre_supports(twin, specs, input_size, input_size)
    sizes = {
        i: max(pair[0][1] - pair[0][0] + 1, pair[0][3] - pair[0][2] + 1)
        for i, pair in enumerate(supports)
        if pair
    }
    strides: dict[int, int] = {}
    for i, pair in enumerate(supports):
        found = _stride(pair) if pair else None
        if found is not None:
            strides[i] = found
    pending = [i for i, output in enumerate(outputs) if output.dim() == 4 and i not in strides]
    if pending:
        strides.update(_shape_strides(twin, [specs[i] for i in pending], pending, input_size))
    infos = []
    for i, (spec, output) in enumerate(zip(specs, outputs, strict=True)):
        if output.dim() == 4:
            shape = tuple(int(d) for d in output.shape[1:])
            size = sizes.get(i, input_size)
            # A model that only runs at its own size: the ratio of input to output width.
            stride = strides.get(i) or max(1, round(input_size / shape[2]))
            offset = _offset(supports[i], shape[2], input_size) if supports[i] else 0.0
            infos.append(
                LayerInfo(spec.name, spec.module, spec.kind, shape[0], shape, size, stride, offset)
            )
        else:
            units = int(output[0].numel())
            kind = spec.kind if spec.kind == "attention" else "linear"
            infos.append(LayerInfo(spec.name, spec.module, kind, units, (units,), input_size, 0))
    return infos
