"""Public entry points: render many units of one layer in one optimization, or a whole layer."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from rendering.engine import objectives
from rendering.engine.images import ImageInput, resize, to_batch, to_uint8
from rendering.engine.loop import (
    CompiledStep,
    Objective,
    Preprocess,
    Problem,
    Progress,
    Score,
    StepCounter,
    optimize,
)
from rendering.engine.param import (
    COLOR_CORRELATION_SVD_SQRT,
    DEFAULT_SD,
    ColorCorrelation,
    FourierImage,
)
from rendering.engine.seeds import LAYER_KEY, image_generator
from rendering.engine.transforms import DESCRIPTION, PAD, TransformSchedule
from rendering.engine.truncation import Truncation, frozen_eval, resolve_layer, truncate

UnitTechnique = Literal["channel", "neuron", "negative", "diversity"]
LayerTechnique = Literal["deepdream", "caricature"]

_UNIT_SCORES = {
    "channel": objectives.channel,
    "neuron": objectives.neuron,
    "negative": objectives.negative,
}
_PROBE_SEED = 1234


@dataclass
class RenderResult:
    """Images as (N, size, size, 3) uint8 RGB, and what was done to make them."""

    images: np.ndarray
    units: list[int]
    # Per image, the value it maximized, on the final image without transforms: channel mean,
    # centre activation, minus the channel mean (negative), or the channel mean minus
    # weight * its summed Gram similarity to its siblings (diversity).
    objective: list[float]
    metrics: dict[str, Any] = field(default_factory=dict)


def render_units(
    model: nn.Module,
    layer: str,
    units: Sequence[int],
    *,
    technique: UnitTechnique = "channel",
    size: int = 224,
    steps: int = 512,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    lr: float = 0.05,
    transforms: bool = True,
    preprocess: Preprocess | None = None,
    color_correlation: ColorCorrelation = COLOR_CORRELATION_SVD_SQRT,
    diversity: int = 4,
    diversity_weight: float = objectives.DEFAULT_DIVERSITY_WEIGHT,
    batch_size: int | None = None,
    progress: Progress | None = None,
    compile: bool = False,
    compile_mode: str | None = "reduce-overhead",
) -> RenderResult:
    """Feature visualizations of `units` of `layer`, one image each (diversity: `diversity`).

    All units share one optimization of at most `batch_size` images; each image still
    depends only on (seed, unit, replica). For diversity, images are ordered unit-major.
    `preprocess` maps the [0, 1] batch to the model's input (its own normalization);
    `color_correlation` is the image parameterization's colour basis (ImageNet's by default).
    `compile` (CUDA only; ignored on the CPU) compiles the whole step (parameterization,
    transforms, truncated forward, objective and backward; `compile_mode` "reduce-overhead"
    replays it as CUDA graphs) once per process and shape, with fused Adam;
    `dtype=torch.bfloat16` runs the model under autocast. The fast GPU path is both together.
    A layer the trace cannot stop at (the hook forward) renders eagerly.
    """
    started = time.perf_counter()
    if technique not in (*_UNIT_SCORES, "diversity"):
        known = [*_UNIT_SCORES, "diversity"]
        raise ValueError(f"unknown technique {technique!r} for units; use one of {known}")
    _check_common(size=size, steps=steps)
    if technique == "diversity" and diversity < 2:
        raise ValueError(f"diversity needs at least 2 images per unit, got {diversity}")
    replicas = diversity if technique == "diversity" else 1
    unit_list = [_as_index(unit) for unit in units]
    if not unit_list:
        raise ValueError("units is empty")
    per_chunk = len(unit_list) if batch_size is None else batch_size // replicas
    if per_chunk < 1:
        raise ValueError(f"batch_size {batch_size} is smaller than one unit's {replicas} images")
    device = torch.device(device)
    check_model_device(model, device)
    layer = resolve_layer(model, layer)
    preprocess = preprocess or _identity
    use_compile = compile and device.type == "cuda"

    chunks = [unit_list[i : i + per_chunk] for i in range(0, len(unit_list), per_chunk)]
    counter = StepCounter(total=steps * len(chunks), callback=progress)
    images, values = [], []
    objective = _unit_objective(technique, replicas, diversity_weight)
    with frozen_eval(model):
        # The compiled step compiles the truncated graph itself, with everything around it.
        truncation = _truncate(model, layer, size, transforms, preprocess, device, False)
        _check_units(unit_list, truncation.channels, layer)
        step = (
            compiled_step(truncation, preprocess, objective, size, _autocast(dtype), compile_mode)
            if use_compile
            else None
        )
        for chunk in chunks:
            keys = [(unit, replica) for unit in chunk for replica in range(replicas)]
            generators = [image_generator(seed, unit, replica) for unit, replica in keys]
            image = FourierImage(
                generators, size, color_correlation=color_correlation, device=device
            )
            unit_index = torch.tensor([unit for unit, _ in keys], device=device)
            problem = Problem(
                forward=truncation.forward,
                preprocess=preprocess,
                score=_scored(objective, unit_index),
                schedule=_schedule(generators, steps, size, device) if transforms else None,
                autocast_dtype=_autocast(dtype),
            )
            final, value = optimize(
                image,
                problem,
                steps=steps,
                lr=lr,
                counter=counter,
                compiled=(step, unit_index) if step is not None else None,
            )
            images.append(to_uint8(final))
            values.extend(value.float().cpu().tolist())

    extra: dict[str, Any] = {
        "units_per_batch": per_chunk,
        "batches": len(chunks),
        "color_correlation": color_correlation,
    }
    if technique == "diversity":
        extra |= {"diversity": replicas, "diversity_weight": diversity_weight}
    return RenderResult(
        images=np.concatenate(images),
        units=unit_list,
        objective=values,
        metrics=_metrics(
            settings=dict(steps=steps, seed=seed, size=size, technique=technique, lr=lr),
            transforms=transforms,
            device=device,
            dtype=dtype,
            truncation=truncation,
            compiled=step is not None,
            started=started,
            extra=extra,
        ),
    )


def render_layer(
    model: nn.Module,
    layer: str,
    *,
    technique: LayerTechnique = "deepdream",
    image: ImageInput | None = None,
    size: int = 224,
    steps: int = 512,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    lr: float = 0.05,
    transforms: bool = True,
    preprocess: Preprocess | None = None,
    color_correlation: ColorCorrelation = COLOR_CORRELATION_SVD_SQRT,
    caricature_power: float = 0.0,
    progress: Progress | None = None,
    compile: bool = False,
) -> RenderResult:
    """One image for a whole layer: DeepDream, or a caricature of `image` (floats in [0, 1]).

    Caricature follows Lucid's caricature recipe: the input image rides along in the batch,
    transformed like the optimized one each step, and the objective is
    dot(act, act_input) * max(dot / |act|, 0.1) ** caricature_power, with Lucid's default
    power 0 (see objectives.caricature).
    """
    started = time.perf_counter()
    if technique not in ("deepdream", "caricature"):
        raise ValueError(f"unknown layer technique {technique!r}; use 'deepdream' or 'caricature'")
    _check_common(size=size, steps=steps)
    device = torch.device(device)
    companion = None
    if technique == "caricature":
        if image is None:
            raise ValueError("caricature needs an input image")
        companion = resize(to_batch(image), size).to(device)
        if companion.shape[0] != 1:
            raise ValueError(f"caricature takes one image, got {companion.shape[0]}")
    check_model_device(model, device)
    layer = resolve_layer(model, layer)
    preprocess = preprocess or _identity
    use_compile = compile and device.type == "cuda"

    generators = [image_generator(seed, LAYER_KEY)]
    counter = StepCounter(total=steps, callback=progress)
    with frozen_eval(model):
        truncation = _truncate(model, layer, size, transforms, preprocess, device, use_compile)
        param = FourierImage(generators, size, color_correlation=color_correlation, device=device)
        schedule = _schedule(generators, steps, size, device) if transforms else None
        score: Score = objectives.deepdream
        if technique == "caricature":
            # Both images of the pair see the same warp, as in Lucid's batch-wide transforms.
            schedule = schedule.repeat_each(2) if schedule is not None else None
            score = _caricature_score(caricature_power)
        problem = Problem(
            forward=truncation.forward,
            preprocess=preprocess,
            score=score,
            schedule=schedule,
            companion=companion,
            autocast_dtype=_autocast(dtype),
        )
        final, value = optimize(param, problem, steps=steps, lr=lr, counter=counter)

    extra: dict[str, Any] = {"color_correlation": color_correlation}
    if technique == "caricature":
        extra["caricature_power"] = caricature_power
    return RenderResult(
        images=to_uint8(final),
        units=[],
        objective=value.float().cpu().tolist(),
        metrics=_metrics(
            settings=dict(steps=steps, seed=seed, size=size, technique=technique, lr=lr),
            transforms=transforms,
            device=device,
            dtype=dtype,
            truncation=truncation,
            compiled=use_compile,
            started=started,
            extra=extra,
        ),
    )


def unit_activation(
    model: nn.Module,
    layer: str,
    images: ImageInput,
    units: Sequence[int],
    *,
    preprocess: Preprocess | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
) -> np.ndarray:
    """Mean activation of channel units[i] on images[i], untransformed: shape (N,).

    The one quality measure for renders from any library: uint8 (N, H, W, 3) arrays, float
    arrays in [0, 1], or (N, 3, H, W) tensors all go through the same truncated forward.
    """
    batch = to_batch(images)
    unit_list = [_as_index(unit) for unit in units]
    if len(unit_list) != batch.shape[0]:
        raise ValueError(f"{batch.shape[0]} images but {len(unit_list)} units: give one each")
    device = torch.device(device)
    check_model_device(model, device)
    layer = resolve_layer(model, layer)
    preprocess = preprocess or _identity
    values = []
    with frozen_eval(model):
        probe = preprocess(batch[:1].to(device))
        truncation = truncate(model, layer, probe)
        _check_units(unit_list, truncation.channels, layer)
        with torch.no_grad():
            for start in range(0, len(unit_list), batch_size):
                chunk = batch[start : start + batch_size].to(device)
                acts = truncation.forward(preprocess(chunk))
                index = torch.tensor(unit_list[start : start + batch_size], device=device)
                values.append(objectives.channel(acts, index).double().cpu())
    return torch.cat(values).numpy()


def _identity(images: Tensor) -> Tensor:
    return images


def _as_index(unit: int) -> int:
    if isinstance(unit, bool) or not isinstance(unit, int | np.integer):
        raise ValueError(f"unit indices must be integers, got {unit!r}")
    return int(unit)


def _check_common(*, size: int, steps: int) -> None:
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")


def _check_units(units: Sequence[int], channels: int, layer: str) -> None:
    bad = [unit for unit in units if not 0 <= unit < channels]
    if bad:
        raise ValueError(
            f"unit indices {bad} out of range for layer {layer!r} with {channels} channels "
            f"(valid: 0..{channels - 1})"
        )


def check_model_device(model: nn.Module, device: torch.device) -> None:
    """Refuse a device the model is not on (moving it would change the caller's model)."""
    tensor: Tensor | None = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    if tensor is None:
        return
    here = tensor.device
    wanted_index = device.index
    if device.type == "cuda" and wanted_index is None:
        wanted_index = torch.cuda.current_device()
    if here.type != device.type or (device.type != "cpu" and here.index != wanted_index):
        # Moving the model ourselves would change the caller's model; say so instead.
        raise ValueError(f"model is on {here} but device={device}; call model.to({str(device)!r})")


def _truncate(
    model: nn.Module,
    layer: str,
    size: int,
    transforms: bool,
    preprocess: Preprocess,
    device: torch.device,
    compile: bool,
) -> Truncation:
    side = size + 2 * PAD if transforms else size
    generator = torch.Generator().manual_seed(_PROBE_SEED)
    probe = torch.rand((1, 3, side, side), generator=generator).to(device)
    return truncate(model, layer, preprocess(probe), compile=compile)


def _schedule(
    generators: Sequence[torch.Generator], steps: int, size: int, device: torch.device
) -> TransformSchedule:
    return TransformSchedule.draw(generators, steps=steps, size=size, device=device)


@functools.cache
def _unit_objective(technique: str, replicas: int, weight: float) -> Objective:
    """(activations, units) -> one value per image; one function per setting, so that a
    compiled step built around it is found again."""
    if technique == "diversity":
        return partial(_diversity, group=replicas, weight=weight)
    return _UNIT_SCORES[technique]


def _scored(objective: Objective, units: Tensor) -> Score:
    return lambda acts: objective(acts, units)


def _diversity(acts: Tensor, units: Tensor, *, group: int, weight: float) -> Tensor:
    return objectives.diversity(acts, units, group, weight)


# Compiled steps per truncated graph (weakly: they go with the model) and setting.
_compiled: weakref.WeakKeyDictionary[nn.Module, dict[tuple[Any, ...], CompiledStep]] = (
    weakref.WeakKeyDictionary()
)
# Dynamo keeps this many compiled variants per function before it falls back to eager; a
# worker keeps one per layer, objective and batch shape (a layer's last batch is shorter).
RECOMPILE_LIMIT = 256


def compiled_step(
    truncation: Truncation,
    preprocess: Preprocess,
    objective: Objective,
    size: int,
    autocast_dtype: torch.dtype | None,
    mode: str | None,
) -> CompiledStep | None:
    """The process's compiled step for this graph and setting; None for a hook forward (it
    ends by raising, which no compiled graph can hold)."""
    graph = getattr(truncation.forward, "graph", None)
    if not truncation.method.startswith("traced") or not isinstance(graph, nn.Module):
        return None
    dynamo = torch._dynamo.config
    dynamo.recompile_limit = max(dynamo.recompile_limit, RECOMPILE_LIMIT)
    dynamo.accumulated_recompile_limit = max(dynamo.accumulated_recompile_limit, RECOMPILE_LIMIT)
    steps = _compiled.setdefault(graph, {})
    key = (id(preprocess), objective, size, autocast_dtype, mode)
    if key not in steps:
        # The step holds `preprocess`, so its id stays unique while the key exists.
        steps[key] = CompiledStep(
            truncation.forward,
            preprocess,
            objective,
            size=size,
            autocast_dtype=autocast_dtype,
            mode=mode,
        )
    return steps[key]


def compile_cache(folder: str | os.PathLike[str]) -> None:
    """Keep inductor's and Triton's compiled kernels in `folder`, across processes, so that a
    restarted worker loads its steps instead of compiling them again. Call before the first
    compiled render; a cache directory already set in the environment wins."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(folder))
    os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(str(folder), "triton"))


def _caricature_score(power: float) -> Score:
    def score(acts: Tensor) -> Tensor:
        # Row 0 is the image being optimized, row 1 the input it caricatures.
        return objectives.caricature(acts[:1], acts[1:].detach(), power)

    return score


def _autocast(dtype: torch.dtype) -> torch.dtype | None:
    # The spectrum and Adam stay in float32; a lower dtype only runs the model in autocast.
    return None if dtype == torch.float32 else dtype


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for key, dist in (
        ("torch", "torch"),
        ("torchvision", "torchvision"),
        ("lucent", "torch-lucent"),
    ):
        try:
            versions[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = None
    return versions


def _metrics(
    *,
    settings: dict[str, Any],
    transforms: bool,
    device: torch.device,
    dtype: torch.dtype,
    truncation: Truncation,
    compiled: bool,
    started: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        **settings,
        "transforms": DESCRIPTION if transforms else "none",
        "parameterization": f"fft 1/f (decay 1), colour basis, sigmoid; sd {DEFAULT_SD}",
        "optimizer": "Adam",
        "versions": _versions(),
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "forward": truncation.method,
        "compiled": compiled,
        **extra,
        "wall_time_s": time.perf_counter() - started,
    }
