from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from neurons.models import Layer
from neurons.selectors import model_get
from rendering.engine.datasets import BadImage, load_image
from rendering.params import LAYER_TECHNIQUES
from rendering.services import (
    RenderRefused,
    caricature_input_store,
    render_job_run,
    render_jobs_create,
)

CARICATURE_INPUT_SIZE = 512  # decoded at most this large; the render resizes it again


def _caricature_input(path: str) -> np.ndarray:
    """The input image, decoded as dataset images are: bombs, truncated files and files that
    are not images are refused with the reason."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        return load_image(data, CARICATURE_INPUT_SIZE)
    except BadImage as error:
        raise CommandError(f"{path}: {error.reason}") from None


class Command(BaseCommand):
    help = "Render feature visualizations of whole layers (through the queue, or here with --here)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="model slug, or slug@version")
        parser.add_argument("--layers", required=True, help="comma-separated layer names, or 'all'")
        parser.add_argument("--technique", default="channel")
        parser.add_argument("--steps", type=int)
        parser.add_argument("--size", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--units", help="a range such as 0:64 (default: every unit)")
        parser.add_argument("--image", help="input image file for --technique caricature")
        parser.add_argument("--here", action="store_true", help="render in this process")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            network = model_get(options["model"])
        except Exception:
            raise CommandError(f"no imported model {options['model']!r}") from None
        layers = self._layers(network.layers.all(), options["layers"])
        params = {k: options[k] for k in ("steps", "size", "seed") if options[k] is not None}
        if options["technique"] == "caricature":
            if not options["image"]:
                raise CommandError("--technique caricature needs --image PATH")
            params["image_sha256"] = caricature_input_store(_caricature_input(options["image"]))
        units = None
        if options["units"]:
            start, _, stop = options["units"].partition(":")
            units = range(int(start), int(stop))
        jobs = []
        try:
            with transaction.atomic():
                for layer in layers:
                    jobs += render_jobs_create(
                        layer=layer,
                        technique=options["technique"],
                        params=params,
                        units=None if options["technique"] in LAYER_TECHNIQUES else units,
                        enqueue=not options["here"],
                    )
        except RenderRefused as error:
            raise CommandError(str(error)) from None
        if not jobs:
            self.stdout.write("nothing to render: every requested render exists or is queued")
            return
        if not options["here"]:
            self.stdout.write(f"queued {len(jobs)} render jobs on queue 'gpu'")
            return
        total = sum(max(job.unit_count, 1) for job in jobs)
        with tqdm(total=total, unit="unit", desc=options["technique"]) as bar:
            for job in jobs:
                base = bar.n

                def progress(
                    fraction: float, _message: str, job: Any = job, base: int = base
                ) -> None:
                    bar.update(base + round(fraction * max(job.unit_count, 1)) - bar.n)

                done = render_job_run(job_id=job.pk, progress=progress)
                if done is not None and done.status != "succeeded":
                    raise CommandError(
                        f"{done} {done.status}: {done.error.strip().splitlines()[-1]}"
                    )
        self.stdout.write(self.style.SUCCESS(f"rendered {total} targets in {len(jobs)} jobs"))

    def _layers(self, available: Any, wanted: str) -> list[Layer]:
        layers = list(available)
        if wanted == "all":
            return layers
        by_name = {layer.name: layer for layer in layers}
        names = [name.strip() for name in wanted.split(",") if name.strip()]
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise CommandError(f"unknown layers {unknown}; this model has {list(by_name)}")
        return [by_name[name] for name in names]
