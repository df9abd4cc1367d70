"""Dataset examples: the Django side of the engine's pass over a dataset.

A pass over a registered `Dataset` is a `RenderJob` with technique "examples" that targets the
deepest of its layers: the job row exists first, a worker claims it, and the engine computes
every unit of every layer in one forward per batch. The pass runs in chunks of images; after
each chunk the engine's streaming state is stored, so a worker that dies resumes from the last
chunk and ends with the same result as one that never stopped. At the end, each unit gets a
`UnitExamples` row (its top and bottom images, crops at its receptive field, activation
statistics).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image

from microscope_site.progress import Progress
from microscope_site.storage import store_content
from neurons.models import Layer, NetworkModel
from neurons.services import model_touch
from rendering.datasets import VerifiedReader, dataset_manifest, dataset_reader
from rendering.engine.crops import crop, receptive_field_box
from rendering.engine.datasets import ImageFiles, batches
from rendering.engine.datasets import load_image as decode_image
from rendering.engine.examples import ExamplesState, collect_examples
from rendering.engine.zoo import LoadedModel
from rendering.models import Dataset, RenderJob, UnitExamples
from rendering.params import params_hash, render_params
from rendering.services import RenderRefused, layers_named, render_device, render_jobs_create

CHUNK_IMAGES = 256  # images between checkpoints of a pass


def examples_jobs_create(
    *,
    model: NetworkModel,
    dataset: Dataset,
    layers: Sequence[str] | None = None,
    k: int = 40,
    enqueue: bool = True,
) -> list[RenderJob]:
    """A job for one pass of `dataset` through `layers` (default: every layer) of `model`."""
    ordered = sorted(set(layers_named(model, layers)), key=lambda layer: layer.order)
    params = {
        "dataset": dataset.slug,
        "manifest_sha256": dataset.manifest_sha256,
        "layers": ",".join(layer.name for layer in ordered),
        "k": k,
        "size": model.input_size,
    }
    done = UnitExamples.objects.filter(
        unit__layer__in=ordered, params_hash=params_hash(render_params("examples", params))
    )
    if done.exists():
        return []
    return render_jobs_create(
        layer=ordered[-1], technique="examples", params=params, enqueue=enqueue
    )


def _checkpoint_name(job: RenderJob) -> str:
    return f"examples/checkpoints/{job.layer.model_id}-{job.params_hash}.json"


def _checkpoint_load(job: RenderJob) -> tuple[ExamplesState | None, int, list[list[str]]]:
    """(engine state, images done, skipped [path, reason]) saved after the last full chunk."""
    name = _checkpoint_name(job)
    if not default_storage.exists(name):
        return None, 0, []
    with default_storage.open(name, "rb") as handle:
        meta = json.loads(handle.read())
    with default_storage.open(meta["state"], "rb") as handle:
        state = ExamplesState.from_npz_bytes(handle.read())
    return state, int(meta["done"]), meta["skipped"]


def _checkpoint_save(job: RenderJob, state: ExamplesState, done: int, skipped: list) -> None:
    # The state file is content-addressed and written first; the small pointer file names it,
    # so a crash between the two leaves the previous checkpoint intact.
    state_name, _ = store_content(state.to_npz_bytes(), folder="examples/states", suffix=".npz")
    name = _checkpoint_name(job)
    payload = json.dumps({"state": state_name, "done": done, "skipped": skipped}).encode()
    if default_storage.exists(name):
        default_storage.delete(name)
    from django.core.files.base import ContentFile

    default_storage.save(name, ContentFile(payload))


def _checkpoint_clear(job: RenderJob) -> None:
    name = _checkpoint_name(job)
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as handle:
            state_name = json.loads(handle.read())["state"]
        default_storage.delete(name)
        if default_storage.exists(state_name):
            default_storage.delete(state_name)


def examples_compute(*, job: RenderJob, loaded: LoadedModel, progress: Progress) -> None:
    """Run (or resume) one pass, then store every unit's examples and statistics."""
    params = job.params
    model = job.layer.model
    dataset = Dataset.objects.filter(slug=params["dataset"]).first()
    if dataset is None or dataset.manifest_sha256 != params["manifest_sha256"]:
        raise RenderRefused(
            f"dataset {params['dataset']} with manifest {params['manifest_sha256'][:12]} is gone"
        )
    manifest = dataset_manifest(dataset)  # read once: it may be a large file in a bucket
    names = [entry["path"] for entry in manifest]
    expected = {entry["path"]: entry["sha256"] for entry in manifest}
    layer_names = params["layers"].split(",")
    layers = {layer.name: layer for layer in model.layers.filter(name__in=layer_names)}
    if UnitExamples.objects.filter(
        unit__layer__in=layers.values(), dataset=dataset, params_hash=job.params_hash
    ).exists():
        return  # stored by an earlier attempt that died after storing
    paths = [layers[name].module_path for name in layer_names]
    reader = VerifiedReader(dataset_reader(dataset.location), expected)
    files = ImageFiles(names, reader, params["size"])
    state, done, skipped = _checkpoint_load(job)
    if done:
        job.log += f"[{timezone.now():%H:%M:%S}] resuming after {done} images\n"
    job.log += f"{loader_workers()} image-decoding processes\n"
    while done < len(names):
        stop = min(done + CHUNK_IMAGES, len(names))
        chunk = _Subset(files, range(done, stop))
        for batch in _batches(chunk):
            skipped += [[names[index], reason] for index, reason in batch.skipped]
            state = collect_examples(
                loaded.module,
                paths,
                [batch],
                k=params["k"],
                preprocess=loaded.entry.preprocessing,
                device=render_device(),
                state=state,
            )
        done = stop
        assert state is not None
        _checkpoint_save(job, state, done, skipped)
        fraction = 0.8 * done / len(names)
        RenderJob.objects.filter(pk=job.pk).update(progress=fraction, heartbeat=timezone.now())
        progress(fraction, f"{done}/{len(names)} images")
    if state is None:
        raise RenderRefused(f"no image of {dataset} could be read ({len(skipped)} skipped)")
    for path, reason in skipped:
        job.log += f"skipped {path}: {reason}\n"
    job.log += f"{len(names) - len(skipped)} images read, {len(skipped)} skipped\n"
    _store_examples(job, dataset, layers, layer_names, state, names, reader, progress)
    _checkpoint_clear(job)


def loader_workers() -> int:
    """Image-decoding processes for a pass: none inside a daemonic process (a Celery prefork
    child may not have children; run GPU workers with `-P solo` or `-P threads` to decode in
    parallel)."""
    if multiprocessing.current_process().daemon:
        return 0
    return min(settings.EXAMPLES_LOADER_WORKERS, os.cpu_count() or 1)


def _batches(chunk: Any) -> Any:
    return batches(chunk, batch_size=settings.EXAMPLES_BATCH_SIZE, workers=loader_workers())


class _Subset:
    """Items `indices` of a dataset, keeping the dataset's own index in each item."""

    def __init__(self, dataset: ImageFiles, indices: range) -> None:
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> Any:
        return self.dataset[self.indices[position]]


def _store_examples(
    job: RenderJob,
    dataset: Dataset,
    layers: dict[str, Layer],
    layer_names: list[str],
    state: ExamplesState,
    names: list[str],
    reader: Callable[[str], bytes],
    progress: Progress,
) -> None:
    params = job.params
    size, crop_px = params["size"], params["crop"]
    results = {name: state.layer(layers[name].module_path) for name in layer_names}
    wanted = sorted(
        {int(i) for result in results.values() for i in result.image_indices() if i >= 0}
    )
    images: dict[int, np.ndarray] = {}
    full: dict[int, str] = {}
    for index in wanted:
        images[index] = decode_image(reader(names[index]), size)
        buffer = io.BytesIO()
        Image.fromarray(images[index]).save(buffer, format="JPEG", quality=90)
        full[index], _ = store_content(buffer.getvalue(), folder="examples/images", suffix=".jpg")
    for position, name in enumerate(layer_names):
        layer = layers[name]
        result = results[name]
        map_size = (
            (int(layer.output_shape[1]), int(layer.output_shape[2])) if layer.spatial else (1, 1)
        )
        rows = []
        units = {u.index: u for u in layer.units.all()}
        for index, unit in units.items():
            entries = {}
            sprites = {}
            for side in ("top", "bottom"):
                values, image_ids, ys, xs = result.ranked(index, side)
                listed = []
                crops = []
                for value, image_id, y, x in zip(values, image_ids, ys, xs, strict=True):
                    if image_id < 0:
                        continue  # fewer images than k
                    box = receptive_field_box(
                        int(y),
                        int(x),
                        map_size=map_size,
                        input_size=size,
                        receptive_field=layer.receptive_field or size,
                        offset=layer.receptive_field_offset,
                    )
                    crops.append(crop(images[int(image_id)], box, crop_px))
                    listed.append(
                        {
                            "image": int(image_id),
                            "path": names[int(image_id)],
                            "value": round(float(value), 6),
                            "y": int(y),
                            "x": int(x),
                            "box": [int(v) for v in box],
                            "full": full[int(image_id)],
                        }
                    )
                entries[side] = listed
                sprites[side] = _sprite(crops, crop_px)
            rows.append(
                UnitExamples(
                    unit=unit,
                    dataset=dataset,
                    params_hash=job.params_hash,
                    top=entries["top"],
                    bottom=entries["bottom"],
                    negative_source=result.negative_source,
                    sprite_top=sprites["top"],
                    sprite_bottom=sprites["bottom"],
                    crop_size=crop_px,
                    stats=result.stats(index),
                )
            )
        with transaction.atomic():
            UnitExamples.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
            model_touch(layer.model_id)
        fraction = 0.8 + 0.2 * (position + 1) / len(layer_names)
        RenderJob.objects.filter(pk=job.pk).update(progress=fraction, heartbeat=timezone.now())
        progress(fraction, f"stored examples of {name}")


def _sprite(crops: list[np.ndarray], size: int) -> str:
    """The crops side by side in one JPEG: one request per unit and side, not one per crop."""
    if not crops:
        strip = np.full((size, size, 3), 255, dtype=np.uint8)
    else:
        strip = np.concatenate(crops, axis=1)
    buffer = io.BytesIO()
    # JPEG: photographs compress 5-10x better than as PNG, and a unit has two strips.
    Image.fromarray(strip).save(buffer, format="JPEG", quality=88)
    name, _ = store_content(buffer.getvalue(), folder="examples/sprites", suffix=".jpg")
    return name
