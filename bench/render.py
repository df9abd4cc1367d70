"""Benchmark: our batched engine against Lucent, stock and batched, in one run.

Same machine, same model (Lucent's InceptionV1, random-init with a fixed seed), same layer,
size, steps and transform distribution. Throughput is channels rendered per second; quality is
the mean activation of each target channel on the final images, measured for all three by
the same function (`unit_activation`, no transforms), and compared at 224 px only: below
224 px Lucent must be given `fixed_image_size`, which resizes its transformed canvas down to
the image size before the model sees it while ours keeps the padded canvas, so activations
at other sizes are not a like-for-like comparison (speed still is).

    .venv/bin/python bench/render.py                 # CPU defaults: K=8, 32 steps, 224 px
    .venv/bin/python bench/render.py --device cuda --k 256 --steps 512 --stock-channels 4
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lucent.modelzoo import inceptionv1  # noqa: E402
from lucent.optvis import objectives, param, render  # noqa: E402

from rendering.engine import render_units, unit_activation  # noqa: E402

QUALITY_SIZE = 224  # the one size at which both methods see the same canvas


def preprocess_inceptionv1(images: torch.Tensor) -> torch.Tensor:
    # What Lucent's render_vis(preprocess=True) applies for InceptionV1: TF's [-117, 138] range.
    return images * 255 - 117


def lucent_render(
    model: nn.Module, layer: str, channels: list[int], size: int, steps: int, seed: int
) -> np.ndarray:
    """One render_vis call over a batch of len(channels) images, image i for channels[i]."""
    torch.manual_seed(seed)
    np.random.seed(seed)  # Lucent's transforms draw from numpy's global generator
    batch = len(channels)
    objective = objectives.channel(layer, channels[0], batch=0)
    for index, channel in enumerate(channels[1:], start=1):
        objective = objective + objectives.channel(layer, channel, batch=index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = render.render_vis(
            model,
            objective,
            param_f=lambda: param.image(size, batch=batch, fft=True, decorrelate=True),
            thresholds=(steps,),
            show_image=False,
            progress=False,
            preprocess=True,
            # Below 224 px Lucent would upsample to 224 first; keep every method at `size`.
            fixed_image_size=size if size < 224 else None,
        )
    return np.asarray(images[-1])


def timed(run: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    images = run()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return images, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8, help="channels rendered together")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--layer", default="mixed4a")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--stock-channels", type=int, default=2, help="channels timed one call each (stock)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile (CUDA only)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = inceptionv1(pretrained=False).to(device)
    # Lucent's render_vis leaves 138 hooks on every model it touches: give it its own copies.
    stock_model, batched_model, warm_model = (copy.deepcopy(model) for _ in range(3))
    channels = list(range(args.k))
    stock_channels = channels[: args.stock_channels]
    size, steps, layer = args.size, args.steps, args.layer

    # Warm-up (oneDNN / cuDNN primitive caches, our trace) so each timing is steady state.
    lucent_render(warm_model, layer, channels[:1], size, 1, args.seed)
    lucent_render(warm_model, layer, channels, size, 1, args.seed)
    ours_kwargs = dict(size=size, seed=args.seed, device=device, preprocess=preprocess_inceptionv1)
    warm_start = time.perf_counter()
    render_units(model, layer, channels, steps=1, compile=args.compile, **ours_kwargs)
    first_call_s = time.perf_counter() - warm_start

    stock_images, stock_s = timed(
        lambda: np.concatenate(
            [lucent_render(stock_model, layer, [c], size, steps, args.seed) for c in stock_channels]
        )
    )
    batched_images, batched_s = timed(
        lambda: lucent_render(batched_model, layer, channels, size, steps, args.seed)
    )
    ours_result = None

    def ours() -> np.ndarray:
        nonlocal ours_result
        ours_result = render_units(
            model, layer, channels, steps=steps, compile=args.compile, **ours_kwargs
        )
        return ours_result.images

    ours_images, ours_s = timed(ours)

    def quality(images: np.ndarray, units: list[int]) -> float:
        acts = unit_activation(
            model, layer, images, units, preprocess=preprocess_inceptionv1, device=device
        )
        return float(acts.mean())

    noise = np.random.default_rng(args.seed).random((len(channels), size, size, 3))
    rows = [
        ("stock lucent (1 ch/call)", len(stock_channels), stock_s, stock_images, stock_channels),
        (f"lucent batched (K={args.k})", len(channels), batched_s, batched_images, channels),
        (f"ours (K={args.k})", len(channels), ours_s, ours_images, channels),
    ]
    print(
        f"layer {layer}, {size} px, {steps} steps, device {device}, "
        f"threads {torch.get_num_threads()}, compile {args.compile}"
    )
    print(
        f"{'method':<26} {'channels':>8} {'seconds':>9} {'ch/s':>8} {'s/ch-step':>10} "
        f"{'mean act':>9}"
    )
    per_s, acts = {}, {}
    for name, count, seconds, images, units in rows:
        per_s[name] = count / seconds
        acts[name] = quality(images, units)
        print(
            f"{name:<26} {count:>8} {seconds:>9.2f} {per_s[name]:>8.3f} "
            f"{seconds / (count * steps):>10.4f} {acts[name]:>9.4f}"
        )
    print(
        f"{'uniform noise (baseline)':<26} {len(channels):>8} {'':>9} {'':>8} {'':>10} "
        f"{quality(noise, channels):>9.4f}"
    )
    stock_name, batched_name, ours_name = (row[0] for row in rows)
    ours_on_stock = float(
        np.mean(
            unit_activation(
                model,
                layer,
                ours_images[: len(stock_channels)],
                stock_channels,
                preprocess=preprocess_inceptionv1,
                device=device,
            )
        )
    )
    ratio_batched = per_s[ours_name] / per_s[batched_name]
    ratio_stock = per_s[ours_name] / per_s[stock_name]
    comparable = size == QUALITY_SIZE
    quality_ratio = acts[ours_name] / acts[batched_name] if comparable else float("nan")
    stock_ratio = ours_on_stock / acts[stock_name] if comparable else float("nan")
    if not comparable:
        print(
            f"quality is compared at {QUALITY_SIZE} px only: at {size} px Lucent resizes its "
            "transformed canvas and ours does not (see the module docstring)"
        )
    print(
        f"ours vs lucent batched: {ratio_batched:.2f}x channels/s, "
        f"{quality_ratio:.3f}x mean activation"
    )
    print(
        f"ours vs stock lucent:   {ratio_stock:.2f}x channels/s, "
        f"{stock_ratio:.3f}x mean activation on the same channels"
    )
    assert ours_result is not None
    print(
        f"ours: forward {ours_result.metrics['forward']}, first call incl. trace "
        f"{first_call_s:.2f} s for 1 step"
    )
    print(
        f"summary ours_ch_per_s={per_s[ours_name]:.4f} "
        f"lucent_batched_ch_per_s={per_s[batched_name]:.4f} "
        f"stock_ch_per_s={per_s[stock_name]:.4f} ratio_vs_batched={ratio_batched:.3f} "
        f"ratio_vs_stock={ratio_stock:.3f} quality_vs_lucent={quality_ratio:.3f}"
    )


if __name__ == "__main__":
    main()
