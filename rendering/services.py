"""Render jobs: create them, run them, reap stale ones. Admin, commands, pages and tasks call these."""

import io
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import numpy as np
import torch
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from microscope_site.errors import RateLimited, Refused
from microscope_site.jobs import job_enqueue, job_retry, job_run, jobs_reap
from microscope_site.progress import Progress, ignore_progress
from microscope_site.ratelimit import hits_in_window
from microscope_site.storage import store_content
from neurons.models import Layer, NetworkModel, Technique, Unit
from neurons.services import model_touch
from rendering.engine import compile_cache, render_layer, render_units
from rendering.engine.zoo import LoadedModel, WeightsSpec, ZooEntry, get_entry, load_model
from rendering.jobs import RENDER_JOBS
from rendering.models import Render, RenderJob
from rendering.params import UNIT_TECHNIQUES, params_hash, render_params
from rendering.pipeline import BatchWriter
from rendering.storage import load_image, png_bytes, store_render

logger = logging.getLogger(__name__)


class RenderRefused(Refused):
    """A render request that cannot be taken as asked; the message says why."""


# --- the model a worker renders with ------------------------------------------------------

# One loaded model per worker process and model version: loading and hashing weights is slow,
# and a GPU worker renders many batches of the same model in a row.
_loaded: dict[tuple[int, str, str], LoadedModel] = {}


def render_device() -> torch.device:
    wanted = settings.RENDER_DEVICE
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(wanted)


# Per device type: images per optimization (a GPU is only busy with a big batch; the CPU's
# throughput is flat beyond a few images), and whole batches per job (more on the CPU, where a
# job's batches are short; a GPU job stays a few minutes, so a lost worker costs little).
DEVICE_BATCH = {"cuda": 256, "cpu": 8}
DEVICE_BATCHES_PER_JOB = {"cuda": 4, "cpu": 8}


def render_batch_size() -> int:
    """Images per optimization: `RENDER_BATCH_SIZE`, or the render device's default."""
    if settings.RENDER_BATCH_SIZE > 0:
        return int(settings.RENDER_BATCH_SIZE)
    return DEVICE_BATCH.get(render_device().type, DEVICE_BATCH["cpu"])


def render_units_per_job(variants: int = 1) -> int:
    """Units per job: always a whole number of device batches (of `variants` images per unit).

    `RENDER_UNITS_PER_JOB` is rounded up to whole batches; unset, a job is
    `RENDER_BATCHES_PER_JOB` batches (the device's default). Jobs are sized where they are
    created (the web process, a command), so set `RENDER_DEVICE` or `RENDER_BATCH_SIZE` there
    as on the workers.
    """
    per_batch = max(1, render_batch_size() // variants)
    if settings.RENDER_UNITS_PER_JOB > 0:
        return -(-int(settings.RENDER_UNITS_PER_JOB) // per_batch) * per_batch
    batches = settings.RENDER_BATCHES_PER_JOB or DEVICE_BATCHES_PER_JOB.get(
        render_device().type, DEVICE_BATCHES_PER_JOB["cpu"]
    )
    return per_batch * max(1, int(batches))


def network_module(network: NetworkModel) -> LoadedModel:
    """The model version's module, with the exact weights its sha256 names, in eval mode."""
    # Keyed on the version's identity, not its row id alone: a row id can name another model
    # once a transaction that made it is rolled back (SQLite reuses ids).
    key = (network.pk, network.registry_key, network.weights_sha256)
    if key not in _loaded:
        weights = WeightsSpec(
            source=network.weights_source,
            seed=int(network.weights_detail) if network.weights_source == "random" else 0,
            path=network.weights_detail if network.weights_source == "file" else "",
        )
        stored = None
        if network.weights_source == "train":  # trained once at import, kept in the storage
            with default_storage.open(network.weights_detail, "rb") as file:
                stored = torch.load(io.BytesIO(file.read()), map_location="cpu", weights_only=True)
        loaded = load_model(get_entry(network.registry_key), weights, state_dict=stored)
        if loaded.sha256 != network.weights_sha256:
            raise RenderRefused(
                f"the weights loaded for {network} hash to {loaded.sha256[:12]}, not "
                f"{network.version}: its weights source changed; import it again as a new version"
            )
        _loaded.clear()  # keep one model per process: GPU memory is the limit
        loaded.module.to(render_device())
        _loaded[key] = loaded
    return _loaded[key]


# --- creating jobs ------------------------------------------------------------------------


def _technique(slug: str) -> Technique:
    technique = Technique.objects.filter(slug=slug).first()
    if technique is None:
        known = ", ".join(Technique.objects.values_list("slug", flat=True))
        raise RenderRefused(f"unknown technique {slug!r}; known: {known}")
    return technique


def _variants(technique: str, params: dict[str, Any]) -> int:
    return int(params["diversity"]) if technique == "diversity" else 1


def _rendered_units(layer: Layer, technique: Technique, phash: str) -> set[int]:
    return set(
        Render.objects.filter(
            layer=layer, technique=technique, params_hash=phash, unit__isnull=False, variant=0
        ).values_list("unit__index", flat=True)
    )


def layers_named(model: NetworkModel, names: Sequence[str] | None) -> list[Layer]:
    """The layers of `model` that `names` name, in that order (default: every layer); refused
    when one names no layer of the model."""
    known = {layer.name: layer for layer in model.layers.all()}
    chosen = list(names) if names else list(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise RenderRefused(f"{model} has no layer {', '.join(unknown)}")
    return [known[name] for name in chosen]


def render_jobs_create(
    *,
    layer: Layer,
    technique: str,
    params: dict[str, Any] | None = None,
    units: Sequence[int] | None = None,
    units_per_job: int | None = None,
    enqueue: bool = True,
    requested_by: object | None = None,
) -> list[RenderJob]:
    """Jobs that render what is missing of `units` (default: all) of `layer`.

    Units already rendered with these parameters are skipped; a chunk that an active job already
    covers is not queued twice. Rows are written first and enqueued when the transaction commits.
    """
    try:
        full = render_params(technique, params)
    except ValueError as error:
        raise RenderRefused(str(error)) from None
    found = _technique(technique)
    phash = params_hash(full)
    if technique not in UNIT_TECHNIQUES:
        spans = [(0, 0)]
    else:
        wanted = sorted(set(range(layer.num_units) if units is None else units))
        if any(not 0 <= i < layer.num_units for i in wanted):
            raise RenderRefused(f"{layer} has units 0–{layer.num_units - 1}")
        missing = [i for i in wanted if i not in _rendered_units(layer, found, phash)]
        size = units_per_job or render_units_per_job(_variants(technique, full))
        spans = _spans(missing, size)
    jobs = []
    for start, stop in spans:
        job = _job_for_span(layer, found, full, phash, start, stop, requested_by)
        if job is not None:
            jobs.append(job)
    if jobs:
        model_touch(layer.model_id)  # unit pages say a render is on its way
    if enqueue:
        for job in jobs:
            if job.attempts == 0 and job.status == RenderJob.Status.QUEUED:
                job_enqueue(RENDER_JOBS, job)
    return jobs


def _spans(indices: list[int], size: int) -> list[tuple[int, int]]:
    """Contiguous runs of `indices`, cut into pieces of at most `size` units."""
    spans: list[tuple[int, int]] = []
    for index in indices:
        if spans and spans[-1][1] == index and spans[-1][1] - spans[-1][0] < size:
            spans[-1] = (spans[-1][0], index + 1)
        else:
            spans.append((index, index + 1))
    return spans


def _job_for_span(
    layer: Layer,
    technique: Technique,
    params: dict[str, Any],
    phash: str,
    start: int,
    stop: int,
    requested_by: object | None,
) -> RenderJob | None:
    active = RenderJob.objects.filter(
        layer=layer, technique=technique, params_hash=phash, status__in=RenderJob.ACTIVE
    )
    if stop and active.filter(unit_start__lte=start, unit_stop__gte=stop).exists():
        return None  # an active job already renders all of these
    try:
        with transaction.atomic():
            return RenderJob.objects.create(
                layer=layer,
                technique=technique,
                params=params,
                params_hash=phash,
                unit_start=start,
                unit_stop=stop,
                task_id=str(uuid.uuid4()),
                requested_by=requested_by,  # type: ignore[misc]
            )
    except IntegrityError:  # the same span is queued or running already
        return None


def render_now(*, unit: Unit, technique: str = "channel", client: str) -> RenderJob | None:
    """A visitor asks for a unit's render: dedupe against active jobs, then rate-limit."""
    params = render_params(technique, {"steps": settings.RENDER_NOW_STEPS})
    phash = params_hash(params)
    layer = unit.layer
    active = RenderJob.objects.filter(
        layer=layer,
        technique__slug=technique,
        params_hash=phash,
        status__in=RenderJob.ACTIVE,
        unit_start__lte=unit.index,
        unit_stop__gt=unit.index,
    ).first()
    if active is not None:
        return active
    window = 60
    if hits_in_window(f"render-now:{client}", window) > settings.RENDER_NOW_PER_MINUTE:
        raise RateLimited(retry_after=window, message="too many render requests")
    jobs = render_jobs_create(
        layer=layer, technique=technique, params=params, units=[unit.index], units_per_job=1
    )
    return jobs[0] if jobs else None


def render_job_retry(*, job: RenderJob) -> RenderJob:
    """Queue a failed (or never-sent) render job again; refused while it runs or once done."""
    return job_retry(RENDER_JOBS, job)


# --- running a job ------------------------------------------------------------------------


@dataclass
class _Heartbeat:
    """Progress and heartbeat written to the job row at most every `every` seconds."""

    job: RenderJob
    report: Progress
    done_before: int = 0  # units of the job finished before the current batch
    batch: int = 1  # units in the current batch
    every: float = 2.0
    last: float = 0.0

    def __call__(self, step: int, steps: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every and step < steps:
            return
        self.last = now
        total = max(self.job.unit_count, 1)
        fraction = min((self.done_before + step / max(steps, 1) * self.batch) / total, 1.0)
        RenderJob.objects.filter(pk=self.job.pk).update(progress=fraction, heartbeat=timezone.now())
        self.report(fraction, f"step {step}/{steps}")


class JobRunner(Protocol):
    def __call__(self, *, job: RenderJob, loaded: LoadedModel, progress: Progress) -> None: ...


# What a render job of a technique that draws no image computes (connections, dataset
# examples, tuning curves): registered by the modules that own them, in `RenderingConfig.ready`,
# so this module imports none of them.
JOB_RUNNERS: dict[str, JobRunner] = {}


def job_runner_register(techniques: Iterable[str], runner: JobRunner) -> None:
    for technique in techniques:
        JOB_RUNNERS[technique] = runner


def render_job_run(*, job_id: int, progress: Progress = ignore_progress) -> RenderJob | None:
    """Claim a queued job and render what it still lacks. None when another worker has it.

    Each engine batch is stored (files first, then rows in one transaction) before the next
    starts, so a job that dies half-way keeps its finished batches, and a rerun renders only
    what is missing. Failures go back to the queue until `RENDER_MAX_ATTEMPTS`, then stay failed.
    """

    def work(job: RenderJob) -> list[str]:
        slug = job.technique.slug
        if slug in UNIT_TECHNIQUES:
            _run_units(job, progress)
        elif slug in JOB_RUNNERS:
            JOB_RUNNERS[slug](job=job, loaded=network_module(job.layer.model), progress=progress)
        else:
            _run_layer(job, progress)
        return []

    return job_run(  # type: ignore[return-value]
        RENDER_JOBS, job_id, work, related=("layer__model", "technique")
    )


def _engine_kwargs(params: dict[str, Any], entry: ZooEntry) -> dict[str, Any]:
    device = render_device()
    cuda = device.type == "cuda"
    if cuda and settings.RENDER_COMPILE:
        compile_cache(settings.RENDER_COMPILE_CACHE_DIR)
    return {
        "size": params["size"],
        "steps": params["steps"],
        "seed": params["seed"],
        "lr": params["lr"],
        "transforms": params["transforms"],
        "preprocess": entry.preprocessing,
        "color_correlation": entry.color_correlation,
        "device": device,
        # Both are CUDA-only: the CPU renders exactly as it always has.
        "compile": settings.RENDER_COMPILE and cuda,
        "dtype": torch.bfloat16 if settings.RENDER_BF16 and cuda else torch.float32,
    }


def _run_units(job: RenderJob, progress: Progress) -> None:
    """Render the job's missing units batch by batch; each finished batch is stored (files,
    then its rows in one transaction) in the background while the next one renders."""
    layer = job.layer
    loaded = network_module(layer.model)
    params = job.params
    technique = job.technique
    done = _rendered_units(layer, technique, job.params_hash)
    todo = [i for i in range(job.unit_start, job.unit_stop) if i not in done]
    units = {u.index: u for u in layer.units.filter(index__in=todo)}
    variants = _variants(technique.slug, params)
    batch = max(1, render_batch_size() // variants)
    beat = _Heartbeat(job, progress)
    job.log += f"[{timezone.now():%H:%M:%S}] attempt {job.attempts}: {len(todo)} units to render\n"
    extra = {}
    if technique.slug == "diversity":
        extra = {"diversity": params["diversity"], "diversity_weight": params["diversity_weight"]}
    already = job.unit_count - len(todo)

    def commit(
        chunk: list[int], metrics: dict[str, Any], objective: list[float]
    ) -> Callable[[list[tuple[str, str, str]]], None]:
        """The batch's rows, inserted once every one of its files is stored."""

        def rows(stored: list[tuple[str, str, str]]) -> None:
            renders = [
                Render(
                    unit=units[chunk[position // variants]],
                    layer=layer,
                    technique=technique,
                    params=params,
                    params_hash=job.params_hash,
                    variant=position % variants,
                    image=name,
                    thumbnail=thumb,
                    image_sha256=sha,
                    objective=objective[position],
                    metrics=metrics,
                )
                for position, (name, sha, thumb) in enumerate(stored)
            ]
            with transaction.atomic():
                Render.objects.bulk_create(renders, ignore_conflicts=True)
                model_touch(layer.model_id)

        return rows

    engine_s = 0.0
    started = time.perf_counter()
    with BatchWriter(store_render, threads=settings.RENDER_WRITER_THREADS) as writer:
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            beat.batch = len(chunk)
            beat.done_before = already + start
            engine_started = time.perf_counter()
            result = render_units(
                loaded.module,
                layer.module_path,
                chunk,
                technique=technique.slug,  # type: ignore[arg-type]
                progress=beat,
                compile_mode=settings.RENDER_COMPILE_MODE or None,
                **_engine_kwargs(params, loaded.entry),
                **extra,
            )
            engine_s += time.perf_counter() - engine_started
            writer.put(result.images, commit(chunk, _json_safe(result.metrics), result.objective))
            fraction = (already + start + len(chunk)) / job.unit_count
            RenderJob.objects.filter(pk=job.pk).update(progress=fraction, heartbeat=timezone.now())
            progress(fraction, f"{start + len(chunk)}/{len(todo)} units rendered")
    total_s = time.perf_counter() - started
    # What the render farm watches: the engine's share of the job (see docs/render-farm.md).
    job.log += (
        f"[{timezone.now():%H:%M:%S}] rendered {len(todo)} units on {socket.gethostname()}:"
        f"{os.getpid()}: engine {engine_s:.2f} s of "
        f"{total_s:.2f} s, storing {writer.store_seconds:.2f} s in the background\n"
    )


def _run_layer(job: RenderJob, progress: Progress) -> None:
    layer = job.layer
    loaded = network_module(layer.model)
    params = job.params
    if Render.objects.filter(
        layer=layer, unit__isnull=True, technique=job.technique, params_hash=job.params_hash
    ).exists():
        return
    extra: dict[str, Any] = {}
    if job.technique.slug == "caricature":
        extra = {
            "image": load_image(_input_name(params["image_sha256"])),
            "caricature_power": params["power"],
        }
    beat = _Heartbeat(job, progress)
    result = render_layer(
        loaded.module,
        layer.module_path,
        technique=job.technique.slug,  # type: ignore[arg-type]
        progress=lambda step, steps: beat(step, steps),
        **_engine_kwargs(params, loaded.entry),
        **extra,
    )
    name, sha, thumb = store_render(result.images[0])
    with transaction.atomic():
        Render.objects.bulk_create(
            [
                Render(
                    layer=layer,
                    technique=job.technique,
                    params=params,
                    params_hash=job.params_hash,
                    image=name,
                    thumbnail=thumb,
                    image_sha256=sha,
                    objective=result.objective[0],
                    metrics=_json_safe(result.metrics),
                )
            ],
            ignore_conflicts=True,
        )
        model_touch(layer.model_id)
    progress(1.0, "layer rendered")


def _input_name(sha: str) -> str:
    return f"inputs/{sha[:2]}/{sha}.png"


def caricature_input_store(image: np.ndarray) -> str:
    """Keep a caricature's input image (content-addressed); returns its sha256 for the params."""
    name, sha = store_content(png_bytes(image), folder="inputs")
    assert name == _input_name(sha)
    return sha


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


# --- the reaper -----------------------------------------------------------------------------


def render_jobs_reap(*, stale_after: timedelta | None = None) -> list[int]:
    """Requeue running jobs whose heartbeat went stale (their worker died), and send again the
    queued jobs whose task never reached the broker; returns the ids of both."""
    return jobs_reap(RENDER_JOBS, stale_after=stale_after)
