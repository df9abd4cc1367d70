"""Benchmark: dataset examples for every unit of every mixed layer of InceptionV1, ours against
a naive pass and against plain inference, in one run on the same machine.

- naive: one full forward pass of the model per layer, keeping all of that layer's activations
  for all images, sorted at the end for the top k (the same exact tie rule as ours);
- ours: `collect_examples`, one forward per batch for all layers (top-k, bottom-k on the
  pre-activations, statistics);
- inference: the model's own (eager) forward up to mixed5b on the same batches, nothing else;
  also, for reference, the same torch.fx graph ours runs, without our reductions (lucent's
  eager forward keeps every intermediate tensor alive until it returns; the graph frees each
  after its last use, so it can be faster than the eager model, and so can ours).

Speed: ours and both inferences run in one process, alternating batch by batch (and which
goes first), so that the load of a shared machine falls on all alike. The naive pass costs
one full forward per layer and image, so it runs on the first `--naive-images` images only
(its cost per image does not depend on how many there are), in its own process; ours is
checked against it on exactly those images (a snapshot of our state after them). Memory: each variant alone in
its own process (peak resident set, maxrss; on CUDA `torch.cuda.max_memory_allocated`), ours
and inference on one batch (their memory does not grow with the images), naive on its images
(its memory does). Random-init weights (seed 0), synthetic structured uint8 images.

    .venv/bin/python bench/dataset_examples.py                 # CPU: 64 images
    .venv/bin/python bench/dataset_examples.py --device cuda   # 256 images
    .venv/bin/python bench/dataset_examples.py --images 128 --naive-images 64
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torchvision.models.feature_extraction import create_feature_extractor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lucent.modelzoo import inceptionv1  # noqa: E402

from rendering.engine.datasets import Batch  # noqa: E402
from rendering.engine.examples import ExamplesState, collect_examples  # noqa: E402
from rendering.engine.zoo.entries import get_entry  # noqa: E402

LAYERS = ["mixed3a", "mixed3b", "mixed4a", "mixed4b", "mixed4c", "mixed4d", "mixed4e"]
LAYERS += ["mixed5a", "mixed5b"]
SIZE = 224
K = 40
PREPROCESS = get_entry("inceptionv1").preprocessing


class _Stop(BaseException):
    """Ends the inference forward after mixed5b."""


def synthetic_images(count: int, seed: int) -> Tensor:
    """Smooth random colour fields with stripes and noise: activations with some structure."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 6, 6, generator=generator)
    fields = F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    stripes = (torch.arange(SIZE).view(1, 1, 1, SIZE) // 16 % 2).float()
    phase = torch.rand(count, 1, 1, 1, generator=generator)
    noise = torch.rand(count, 3, SIZE, SIZE, generator=generator)
    pixels = 0.6 * fields + 0.2 * stripes * phase + 0.2 * noise
    return (pixels * 255).round().clamp(0, 255).to(torch.uint8)


def make_batches(images: Tensor, batch_size: int) -> list[Batch]:
    starts = range(0, len(images), batch_size)
    return [
        Batch(torch.arange(i, i + len(chunk)), chunk, [])
        for i, chunk in zip(starts, images.split(batch_size), strict=True)
    ]


def model_on(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    model = inceptionv1(pretrained=False).eval().to(device)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inputs(batch: Batch, device: torch.device) -> Tensor:
    return PREPROCESS(batch.images.to(device).float().div_(255))


@contextlib.contextmanager
def stop_after(model: nn.Module, layer: str) -> Iterator[None]:
    def stop(*_: object) -> None:
        raise _Stop

    handle = model.get_submodule(layer).register_forward_hook(stop)
    try:
        yield
    finally:
        handle.remove()


class Clock:
    """Wall-clock and process CPU seconds (all threads) since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def infer(model: nn.Module, batch: Batch, device: torch.device) -> tuple[float, float]:
    """(wall, CPU) seconds of the model's forward up to mixed5b on one batch."""
    clock = Clock()
    with torch.no_grad(), stop_after(model, LAYERS[-1]), contextlib.suppress(_Stop):
        model(inputs(batch, device))
    sync(device)
    return clock.read()


def traced_forward(model: nn.Module) -> nn.Module:
    """The model traced by torch.fx up to mixed5b, nothing added: inference as ours runs it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dual = create_feature_extractor(
            model, return_nodes={LAYERS[-1]: "out"}, suppress_diff_warning=True
        )
    return fx.GraphModule(dual, dual.eval_graph).eval()


def infer_traced(graph: nn.Module, batch: Batch, device: torch.device) -> tuple[float, float]:
    """(wall, CPU) seconds of the traced forward up to mixed5b on one batch."""
    clock = Clock()
    with torch.no_grad():
        graph(inputs(batch, device))
    sync(device)
    return clock.read()


def collect(
    model: nn.Module, batch: Batch, device: torch.device, state: ExamplesState | None
) -> tuple[tuple[float, float], ExamplesState]:
    """(wall, CPU) seconds of our pass over one batch, continuing `state`."""
    clock = Clock()
    state = collect_examples(
        model, LAYERS, [batch], k=K, preprocess=PREPROCESS, device=device, state=state
    )
    sync(device)
    return clock.read(), state


def top_k_arrays(state: ExamplesState) -> dict[str, np.ndarray]:
    arrays = {}
    for layer in LAYERS:
        values, images, _, _ = state.layer(layer).table("top")
        arrays[f"{layer}.values"], arrays[f"{layer}.images"] = values, images
    return arrays


def run_paired(
    model: nn.Module, batches: list[Batch], device: torch.device, args: argparse.Namespace
) -> dict:
    start = time.perf_counter()
    warm = Batch(torch.arange(2), batches[0].images[:2], [])
    collect(model, warm, device, None)  # traces and checks the model once, like a worker
    setup = time.perf_counter() - start
    graph = traced_forward(model)
    infer(model, warm, device)
    infer_traced(graph, warm, device)
    variants = ("ours", "inference", "inference_traced")
    seconds = dict.fromkeys(variants, 0.0)
    cpu = dict.fromkeys(variants, 0.0)
    state = None
    for round_ in range(args.repeats):
        state = None
        for b, batch in enumerate(batches):
            shift = (b + round_) % len(variants)  # rotate which variant goes first
            for variant in variants[shift:] + variants[:shift]:
                if variant == "ours":
                    (wall, used), state = collect(model, batch, device, state)
                elif variant == "inference":
                    wall, used = infer(model, batch, device)
                else:
                    wall, used = infer_traced(graph, batch, device)
                seconds[variant] += wall
                cpu[variant] += used
            if round_ == 0 and state is not None and state.images_seen == args.naive_images:
                np.savez(args.out, **top_k_arrays(state))
    assert state is not None
    sources = sorted({state.layer(layer).negative_source for layer in LAYERS})
    images = sum(len(b.indices) for b in batches) * args.repeats
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "images": images,
        "setup_seconds": setup,
        "sources": sources,
    }


def run_alone(variant: str, model: nn.Module, batches: list[Batch], device: torch.device) -> dict:
    """One variant on `batches`, alone in its process: for its peak memory."""
    seconds, state = 0.0, None
    for batch in batches:
        if variant == "ours":
            (elapsed, _), state = collect(model, batch, device, state)
        else:
            elapsed, _ = infer(model, batch, device)
        seconds += elapsed
    return {"seconds": seconds, "images": sum(len(b.indices) for b in batches)}


def every_activation(
    model: nn.Module, layer: str, batches: list[Batch], device: torch.device
) -> Tensor:
    """(N, C, H, W): the layer's output for every image, from full forward passes."""
    stored: list[Tensor] = []

    def keep(_module: nn.Module, _inputs: object, output: Tensor) -> None:
        stored.append(output.clone())

    handle = model.get_submodule(layer).register_forward_hook(keep)
    try:
        for batch in batches:
            model(inputs(batch, device))  # the whole model, once per layer
    finally:
        handle.remove()
    return torch.cat(stored)


def run_naive(model: nn.Module, batches: list[Batch], device: torch.device, out: Path) -> dict:
    arrays = {}
    with torch.no_grad():
        model(inputs(batches[0], device)[:2])  # warm-up
        sync(device)
        clock = Clock()
        for layer in LAYERS:
            activations = every_activation(model, layer, batches, device)
            maxima = activations.flatten(2).amax(dim=2).T  # (C, N), images in index order
            # Stable: equal values keep index order, so ties go to the lower image index.
            values, images = torch.sort(maxima, dim=1, descending=True, stable=True)
            arrays[f"{layer}.values"] = values[:, :K].cpu().numpy()
            arrays[f"{layer}.images"] = images[:, :K].cpu().numpy()
            del activations
        sync(device)
    seconds, cpu = clock.read()
    np.savez(out, **arrays)
    return {"seconds": seconds, "cpu_seconds": cpu, "images": sum(len(b.indices) for b in batches)}


def child(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    count = {"naive": args.naive_images, "paired": args.images}.get(args.variant, args.batch)
    # The same images whatever the variant: naive gets the first of them.
    batches = make_batches(synthetic_images(args.images, args.seed)[:count], args.batch)
    model = model_on(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.variant == "paired":
        result = run_paired(model, batches, device, args)
    elif args.variant == "naive":
        result = run_naive(model, batches, device, Path(args.out))
    else:
        result = run_alone(args.variant, model, batches, device)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.update(
        maxrss_mib=after / 1024,
        growth_mib=(after - before) / 1024,
        cuda_peak_mib=(
            torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        ),
    )
    print(json.dumps(result))


def spawn(args: argparse.Namespace, variant: str, out: Path) -> dict:
    command = [sys.executable, __file__, "--variant", variant, "--out", str(out)]
    command += ["--device", args.device, "--images", str(args.images)]
    command += ["--naive-images", str(args.naive_images), "--batch", str(args.batch)]
    command += ["--seed", str(args.seed), "--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{variant} failed:\n{done.stderr}")
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(ours: Path, naive: Path, images: int) -> str:
    """Whether our top-k (values and image indices) equals naive's on the naive images."""
    n = min(K, images)
    with np.load(ours) as ours_arrays, np.load(naive) as naive_arrays:
        a = {key: ours_arrays[key][:, :n] for key in ours_arrays.files}
        b = {key: naive_arrays[key][:, :n] for key in naive_arrays.files}
    if all(np.array_equal(a[key], b[key]) for key in a):
        return "match"
    worst = max(float(np.abs(a[f"{x}.values"] - b[f"{x}.values"]).max()) for x in LAYERS)
    differ = sum(int((a[f"{x}.images"] != b[f"{x}.images"]).sum()) for x in LAYERS)
    return f"MISMATCH (max value difference {worst:.3g}, {differ} image slots differ)"


def memory(result: dict) -> str:
    if result["cuda_peak_mib"] is not None:
        return f"cuda peak {result['cuda_peak_mib']:.0f} MiB"
    return f"maxrss {result['maxrss_mib']:.0f} MiB (+{result['growth_mib']:.0f} MiB in the pass)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, help="default: 256 on CUDA, 64 on the CPU")
    parser.add_argument("--naive-images", type=int, help="default: all on CUDA, 32 on the CPU")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="rounds of ours and inference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    args.images = args.images or (256 if cuda else 64)
    args.naive_images = min(args.naive_images or (args.images if cuda else 32), args.images)
    if args.naive_images % args.batch and args.naive_images != args.images:
        parser.error("--naive-images must be a multiple of --batch (ours is snapshotted there)")
    if args.variant:
        child(args)
        return

    print(
        f"InceptionV1 (random init, seed 0), {len(LAYERS)} layers {LAYERS[0]}..{LAYERS[-1]}, "
        f"{args.images} images of {SIZE} px, batch {args.batch}, k={K}, device={args.device}, "
        f"torch threads={torch.get_num_threads()}; naive on the first {args.naive_images}"
    )
    with tempfile.TemporaryDirectory() as folder:
        ours_out, naive_out = Path(folder) / "ours.npz", Path(folder) / "naive.npz"
        paired = spawn(args, "paired", ours_out)
        naive = spawn(args, "naive", naive_out)
        verdict = compare(ours_out, naive_out, args.naive_images)
        alone = {
            variant: spawn(args, variant, Path(folder) / "unused")
            for variant in ("inference", "ours")
        }
    speed = {variant: paired["images"] / s for variant, s in paired["seconds"].items()}
    speed["naive"] = naive["images"] / naive["seconds"]
    wall, cpu = paired["seconds"], paired["cpu_seconds"]
    print(f"alternating per batch, {paired['images']} images each:")
    for variant, label in (
        ("ours", "ours (traced graph + reductions)"),
        ("inference", "inference (the model's eager forward)"),
        ("inference_traced", "inference (the same traced graph, no reductions)"),
    ):
        rate = paired["images"] / wall[variant]
        print(f"  {label:50s} {wall[variant]:6.1f} s  {cpu[variant]:6.1f} s CPU  {rate:6.2f} img/s")
    print(
        f"ours / traced inference: {wall['ours'] / wall['inference_traced']:.3f} wall, "
        f"{cpu['ours'] / cpu['inference_traced']:.3f} CPU (the cost of the reductions alone)"
    )
    print(
        f"naive: {naive['seconds']:.1f} s ({naive['cpu_seconds']:.1f} s CPU) for "
        f"{naive['images']} images ({len(LAYERS)} full passes)"
    )
    print(f"ours: tracing and checking the model once took {paired['setup_seconds']:.1f} s")
    print(f"ours: negative examples from the {' / '.join(paired['sources'])}")
    print(f"top-{K} of ours vs naive on the first {args.naive_images} images: {verdict}")
    print("peak memory, each variant alone in its own process:")
    for variant, result in (("naive", naive), *alone.items()):
        print(f"  {variant:9s} {memory(result)}  ({result['images']} images)")
    print(
        f"summary ours_img_per_s={speed['ours']:.3f} naive_img_per_s={speed['naive']:.3f} "
        f"inference_img_per_s={speed['inference']:.3f} "
        f"ratio_vs_naive={speed['ours'] / speed['naive']:.2f} "
        f"overhead_vs_inference={speed['inference'] / speed['ours']:.3f}"
    )


if __name__ == "__main__":
    main()
