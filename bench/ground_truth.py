"""Ground truth at full size: train the model organism, then check every class unit's render,
orientation or hue, tuning curve and dataset examples against the feature it was trained on.

    .venv/bin/python bench/ground_truth.py                  # the registry's training, seed 0
    .venv/bin/python bench/ground_truth.py --render-steps 256 --seed 1

Prints the training's CPU and wall time (the machine may be shared: CPU time is the honest
measure of the work, wall time what a user waits), a table with one row per class, the
fraction of classes that pass each check, and last a line
`summary render_hits=… orientation_hits=… colour_hits=… examples_precision=… tuning_hits=…`.
The checks are those of rendering/engine/ground_truth.py; the goal is >= 0.9 for each.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rendering.engine.ground_truth import check_organism  # noqa: E402
from rendering.engine.zoo.organism import StimuliCNN  # noqa: E402
from rendering.engine.zoo.training import (  # noqa: E402
    DEFAULT_CONFIG,
    THREADS,
    held_out,
    normalize,
    train,
)
from rendering.engine.zoo.weights import state_dict_sha256  # noqa: E402


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render-steps", type=int, default=256)
    parser.add_argument("--held-out-per-class", type=int, default=50)
    args = parser.parse_args()
    config = DEFAULT_CONFIG

    cpu, wall = _cpu_seconds(), time.perf_counter()
    last = [0.0]

    def progress(step: int, steps: int, accuracy: float) -> None:
        if step == steps or time.perf_counter() - last[0] > 10:
            last[0] = time.perf_counter()
            print(f"  training step {step}/{steps}, batch accuracy {accuracy:.2f}", flush=True)

    trained = train(args.seed, config, progress=progress)
    train_cpu, train_wall = _cpu_seconds() - cpu, time.perf_counter() - wall
    print(
        f"trained {config.steps} steps x {config.batch_size} images at {config.size} px "
        f"on {THREADS} thread(s): {train_cpu:.1f} s CPU, {train_wall:.1f} s wall; "
        f"held-out accuracy {trained.held_out_accuracy:.3f} on {trained.held_out_images} images; "
        f"weights sha256 {state_dict_sha256(trained.state_dict)[:16]}"
    )
    model = StimuliCNN(classes=len(config.class_indices), width=config.width)
    model.load_state_dict(trained.state_dict)
    model.eval()
    images, labels = held_out(args.seed, config, args.held_out_per_class)

    cpu, wall = _cpu_seconds(), time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        truth = check_organism(
            model,
            config.class_indices,
            images,
            labels,
            preprocess=normalize,
            size=config.size,
            steps=args.render_steps,
            seed=args.seed,
        )
    print(
        f"checks ({args.render_steps} render steps, {len(labels)} held-out images): "
        f"{_cpu_seconds() - cpu:.1f} s CPU, {time.perf_counter() - wall:.1f} s wall"
    )

    def mark(value: bool | None) -> str:
        return "-" if value is None else ("yes" if value else "NO")

    print(
        f"{'class':<22} {'render':>7} {'best ex':>7} {'hit':>4} {'feature':>8} {'hit':>4} "
        f"{'tuning':>7} {'hit':>4} {'top9':>5} {'in':>4}"
    )
    for r in truth.classes:
        feature = "" if r.feature is None else f"{r.feature:.0f}°"
        tuning = "" if r.tuning_peak is None else f"{r.tuning_peak:.0f}°"
        print(
            f"{r.name:<22} {r.render_value:>7.1f} {r.best_example_value:>7.1f} "
            f"{mark(r.render_hit):>4} {feature:>8} {mark(r.feature_hit):>4} {tuning:>7} "
            f"{mark(r.tuning_hit):>4} {r.examples_of_class:>3}/9 {r.top_input:>4}"
        )
    print(
        f"distinct strongest conv4 inputs over {len(truth.classes)} classes: "
        f"{truth.distinct_top_inputs} ({'ok' if truth.inputs_distinct else 'all the same unit'})"
    )
    print(truth.summary())


if __name__ == "__main__":
    main()
