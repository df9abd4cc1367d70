"""Benchmark: render layers of a model through the real worker path, beside Lucent batched.

RenderJobs are created by the service (`render_jobs_create`), a real Celery worker (solo pool,
queue "gpu") claims and renders them, files land in the storage and rows in the database, as
in production. Reported:

- atlas_s: wall time from the first claim to the last Render row; ch_per_s: channels over it;
- pipeline_efficiency: the engine's compute time, as each job's worker recorded it in the job
  log ("engine X s": time inside the engine's render calls), over atlas_s. What is not engine
  time: claiming, loading the model, storing what the background writer had not finished when
  a job ended, queue hand-offs between jobs;
- lucent_batched_ch_per_s: Lucent's render_vis with one image per channel (K at once, same
  steps, size and transform distribution, on a copy of the same model) on a sample of each
  layer's channels, run after the worker has stopped, in the same process that set up the run.

By default the run gets its own embedded stack (SQLite, the filesystem broker, a media folder)
in a temporary folder; `--database-url` and `--broker-url` point it at PostgreSQL and Redis.

    .venv/bin/python bench/atlas.py --quick
    .venv/bin/python bench/atlas.py --model inceptionv1 --layers conv2d2,mixed3a --steps 64 --size 128
    .venv/bin/python bench/atlas.py --device cuda --layers all --steps 512 --size 224   # a GPU
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUICK = {"layers": "conv2d0", "steps": 8, "size": 64}
_ENGINE = re.compile(r"engine ([\d.]+) s of ([\d.]+) s")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="inceptionv1", help="registry key (random init)")
    parser.add_argument("--layers", default="conv2d2,mixed3a", help="comma-separated, or 'all'")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--units", type=int, default=0, help="the first N channels per layer")
    parser.add_argument("--device", default="cpu", help="the worker's RENDER_DEVICE")
    parser.add_argument("--k", type=int, default=0, help="batch size (0: the device's default)")
    parser.add_argument("--units-per-job", type=int, default=0, help="0: the service's sizing")
    parser.add_argument(
        "--lucent-batches", type=int, default=1, help="Lucent batches of K channels per layer"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    parser.add_argument("--broker-url", default="", help="default: the filesystem broker")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait")
    parser.add_argument(
        "--quick", action="store_true", help=f"a small run: {QUICK} (overrides those options)"
    )
    args = parser.parse_args()
    if args.quick:  # one job of 64 channels
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


def _environment(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    """Settings shared by this process (job creation, checks) and the worker."""
    env = {
        "DJANGO_SETTINGS_MODULE": "microscope_site.settings",
        "MICROSCOPE_VAR_DIR": str(var_dir),
        "RENDER_DEVICE": args.device,
        "OMP_NUM_THREADS": str(args.threads),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        # Compiled kernels outlive the run's temporary folder (CUDA only).
        "RENDER_COMPILE_CACHE_DIR": os.environ.get(
            "RENDER_COMPILE_CACHE_DIR", str(ROOT / "var" / "inductor")
        ),
    }
    if args.k:
        env["RENDER_BATCH_SIZE"] = str(args.k)
    if args.units_per_job:
        env["RENDER_UNITS_PER_JOB"] = str(args.units_per_job)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    if args.broker_url:
        env["CELERY_BROKER_URL"] = args.broker_url
    return env


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "celery", "-A", "microscope_site", "worker", "-Q", "gpu",
        "--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--loglevel", "INFO", "--logfile", str(log),
    ]  # fmt: skip
    banner = open(log.with_suffix(".out"), "wb")  # noqa: SIM115 (the worker writes it)
    return subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=banner, stderr=subprocess.STDOUT
    )


def _wait(predicate: Any, timeout: float, what: str, log: Path, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    tail = log.read_text()[-3000:] if log.exists() else "(no worker log)"
    sys.exit(f"timed out waiting for {what}; worker log:\n{tail}")


def _lucent_batched(
    module: Any, layers: list[str], args: argparse.Namespace, k: int, preprocess: Any
) -> tuple[int, float]:
    """Channels and seconds for Lucent batched: `--lucent-batches` calls of K channels per
    layer, each one render_vis over K images (image i maximizes channel i)."""
    import numpy as np
    import torch
    from lucent.optvis import objectives, param, render, transform

    model = copy.deepcopy(module)  # render_vis leaves its hooks on the model it is given
    transforms = [*transform.standard_transforms, preprocess]

    def batch(layer: str, channels: list[int], steps: int) -> None:
        torch.manual_seed(0)
        np.random.seed(0)  # Lucent's transforms draw from numpy's global generator
        objective = objectives.channel(layer, channels[0], batch=0)
        for index, channel in enumerate(channels[1:], start=1):
            objective = objective + objectives.channel(layer, channel, batch=index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            render.render_vis(
                model,
                objective,
                param_f=lambda: param.image(args.size, batch=len(channels), fft=True),
                transforms=transforms,
                thresholds=(steps,),
                show_image=False,
                progress=False,
                preprocess=False,  # the model's own preprocessing is the last transform
                fixed_image_size=args.size if args.size < 224 else None,
            )

    channels, seconds = 0, 0.0
    for layer in layers:
        sample = [list(range(k))] * args.lucent_batches
        batch(layer, sample[0], 1)  # warm-up: oneDNN / cuDNN caches, hooks
        for chosen in sample:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            started = time.perf_counter()
            batch(layer, chosen, args.steps)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds += time.perf_counter() - started
            channels += len(chosen)
    return channels, seconds


def main() -> None:
    args = _arguments()
    var_dir = Path(tempfile.mkdtemp(prefix="atlas-"))
    env = _environment(args, var_dir)
    os.environ.update(env)

    import django

    django.setup()
    import torch
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from django.db import transaction
    from django.db.models import Max, Min

    from neurons.services import model_import
    from rendering.engine.zoo import WeightsSpec
    from rendering.models import Render, RenderJob
    from rendering.services import (
        network_module,
        render_batch_size,
        render_jobs_create,
        render_units_per_job,
    )

    torch.set_num_threads(args.threads)
    call_command("migrate", verbosity=0)
    network = model_import(registry_key=args.model, weights=WeightsSpec("random", seed=0))
    every = list(network.layers.order_by("order"))
    if args.layers == "all":
        layers = [layer for layer in every if layer.num_units > 1]
    else:
        names = [name.strip() for name in args.layers.split(",") if name.strip()]
        known = {layer.name: layer for layer in every}
        unknown = [name for name in names if name not in known]
        if unknown:
            sys.exit(f"unknown layers {unknown}; {args.model} has {list(known)}")
        layers = [known[name] for name in names]
    k = render_batch_size()
    params = {"steps": args.steps, "size": args.size}
    wanted = {
        layer.pk: range(min(args.units, layer.num_units) if args.units else layer.num_units)
        for layer in layers
    }
    units = sum(len(indices) for indices in wanted.values())
    print(
        f"{args.model} (random init), layers {', '.join(layer.name for layer in layers)}: "
        f"{units} channels, {args.steps} steps, {args.size} px, device {args.device}, K={k}, "
        f"{render_units_per_job()} units per job, {torch.get_num_threads()} threads, "
        f"var {var_dir}"
    )

    log = var_dir / "worker.log"
    worker = _worker(env, log)
    try:
        _wait(lambda: log.exists() and " ready." in log.read_text(), 300, "the worker", log)
        created = time.perf_counter()
        with transaction.atomic():  # sent when the rows are committed, as the admin does
            jobs = [
                job
                for layer in layers
                for job in render_jobs_create(
                    layer=layer, technique="channel", params=params, units=wanted[layer.pk]
                )
            ]
        ids = [job.pk for job in jobs]
        print(f"{len(jobs)} jobs created; waiting for the worker")

        def finished() -> bool:
            active = RenderJob.objects.filter(pk__in=ids, status__in=RenderJob.ACTIVE)
            return not active.exists()

        _wait(finished, args.timeout, "the jobs", log, every=0.5)
        end_to_end_s = time.perf_counter() - created
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    done = list(RenderJob.objects.filter(pk__in=ids))
    failed = [job for job in done if job.status != RenderJob.Status.SUCCEEDED]
    if failed:
        sys.exit(f"{len(failed)} jobs failed: {failed[0].error[-2000:]}")
    renders = Render.objects.filter(layer__in=layers, technique__slug="channel", unit__isnull=False)
    rows = renders.count()
    missing = sum(
        not (default_storage.exists(r.image.name) and default_storage.exists(r.thumbnail.name))
        for r in renders.only("image", "thumbnail")
    )
    if rows != units or missing:
        sys.exit(f"{rows} rows for {units} channels, {missing} without their files")
    first_claim = RenderJob.objects.filter(pk__in=ids).aggregate(t=Min("started"))["t"]
    last_row = renders.aggregate(t=Max("created"))["t"]
    atlas_s = (last_row - first_claim).total_seconds()
    engine_s = job_s = 0.0
    for job in done:
        for engine, total in _ENGINE.findall(job.log):
            engine_s += float(engine)
            job_s += float(total)
    efficiency = engine_s / atlas_s
    ch_per_s = units / atlas_s

    loaded = network_module(network)  # the same weights, on this process's device
    module = loaded.module.to(args.device)
    lucent_channels, lucent_s = _lucent_batched(
        module, [layer.module_path.replace(".", "_") for layer in layers], args, k,
        loaded.entry.preprocessing,
    )  # fmt: skip
    lucent_ch_per_s = lucent_channels / lucent_s
    ratio = ch_per_s / lucent_ch_per_s

    print(f"{'':<34} {'seconds':>9} {'channels':>9} {'ch/s':>9}")
    print(f"{'atlas: first claim to last row':<34} {atlas_s:>9.2f} {units:>9} {ch_per_s:>9.3f}")
    print(f"{'atlas: jobs created to done':<34} {end_to_end_s:>9.2f} {units:>9}")
    print(f"{'engine compute (worker-recorded)':<34} {engine_s:>9.2f}")
    print(f"{'jobs, claim to last row stored':<34} {job_s:>9.2f}")
    print(
        f"{f'lucent batched (K={k}, sample)':<34} {lucent_s:>9.2f} {lucent_channels:>9} "
        f"{lucent_ch_per_s:>9.3f}"
    )
    print(f"rows {rows}, files present for all; {len(jobs)} jobs, all succeeded")
    print(
        f"summary atlas_s={atlas_s:.2f} ch_per_s={ch_per_s:.4f} "
        f"lucent_batched_ch_per_s={lucent_ch_per_s:.4f} ratio_vs_batched={ratio:.3f} "
        f"pipeline_efficiency={efficiency:.3f} device={args.device}"
    )


if __name__ == "__main__":
    main()
