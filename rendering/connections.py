"""Connections between units: computed once per layer pair by a job, read by pages and the API."""

import io
import math
from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction

from microscope_site.progress import Progress
from microscope_site.storage import store_content
from neurons.models import Layer, NetworkModel
from neurons.services import model_touch
from rendering.engine import expanded_weights, top_connections
from rendering.engine.zoo import LoadedModel
from rendering.models import Connection, LayerConnection, RenderJob
from rendering.services import render_jobs_create

# A fully connected layer's kernels span the whole map before it: (units, C, H, W) floats.
MAX_FULLY_CONNECTED = 1 << 26


def layer_pairs(model: NetworkModel) -> list[tuple[Layer, Layer]]:
    """Consecutive spatial layers, in order: each later layer's inputs come from the one before;
    and the first fully connected layer after the last spatial one (class logits), where its
    kernels fit in memory."""
    ordered = list(model.layers.order_by("order"))
    layers = [layer for layer in ordered if layer.spatial]
    pairs = list(zip(layers, layers[1:], strict=False))
    if layers and layers[-1] is not ordered[-1]:
        last = layers[-1]
        head = ordered[ordered.index(last) + 1]
        if head.num_units * math.prod(last.output_shape) <= MAX_FULLY_CONNECTED:
            pairs.append((last, head))
    return pairs


def connection_jobs_create(
    *, model: NetworkModel, top: int = 50, enqueue: bool = True, touching: Layer | None = None
) -> list[RenderJob]:
    """A job per layer pair not computed yet (only the pairs with `touching`, when given)."""
    jobs: list[RenderJob] = []
    for source, target in layer_pairs(model):
        if touching is not None and touching.pk not in (source.pk, target.pk):
            continue
        if LayerConnection.objects.filter(source=source, target=target).exists():
            continue
        jobs += render_jobs_create(
            layer=target,
            technique="connections",
            params={"source": source.name, "top": top},
            enqueue=enqueue,
        )
    return jobs


def connections_compute(*, job: RenderJob, loaded: LoadedModel, progress: Progress) -> None:
    """Compute one layer pair's weights and store the matrix and every unit's top-k both ways."""
    target = job.layer
    source = target.model.layers.get(name=job.params["source"])
    if LayerConnection.objects.filter(source=source, target=target).exists():
        return
    progress(0.05, f"expanded weights {source.name} → {target.name}")
    weights = expanded_weights(
        loaded.module,
        source.module_path,
        target.module_path,
        input_size=target.model.input_size,
        preprocess=loaded.entry.preprocessing,
    )
    incoming, outgoing = top_connections(weights, top=job.params["top"])
    progress(0.7, "storing")
    buffer = io.BytesIO()
    np.save(buffer, weights.strength.astype(np.float16))
    matrix_name, _ = store_content(buffer.getvalue(), folder="weights", suffix=".npy")
    source_units = {u.index: u for u in source.units.all()}
    target_units = {u.index: u for u in target.units.all()}
    with transaction.atomic():
        pair = LayerConnection.objects.create(
            source=source,
            target=target,
            method=weights.method,
            kernel_size=int(weights.kernels.shape[-1]),
            matrix=matrix_name,
        )
        rows = [
            _row(pair, target_units[b], "in", ranked, weights.strength[b], weights.kernels[b])
            for b, ranked in enumerate(incoming)
        ] + [
            _row(
                pair, source_units[a], "out", ranked, weights.strength[:, a], weights.kernels[:, a]
            )
            for a, ranked in enumerate(outgoing)
        ]
        Connection.objects.bulk_create(rows, batch_size=500)
        model_touch(target.model_id)
    progress(1.0, f"{len(rows)} unit connection lists stored")


def _row(
    pair: LayerConnection,
    unit: Any,
    direction: str,
    ranked: np.ndarray,
    strengths: np.ndarray,
    kernels: np.ndarray,
) -> Connection:
    order = [int(i) for i in ranked]
    return Connection(
        unit=unit,
        direction=direction,
        pair=pair,
        other_indices=order,
        strengths=[round(float(strengths[i]), 6) for i in order],
        kernels=kernels[order].astype(np.float16).tobytes(),
    )


def strength_matrix(pair: LayerConnection) -> np.ndarray:
    with default_storage.open(str(pair.matrix.name), "rb") as handle:
        return np.load(io.BytesIO(handle.read())).astype(np.float32)


def matrix_order(matrix: np.ndarray, *, sort: str = "index") -> tuple[np.ndarray, np.ndarray]:
    """The target units (rows) and source units (columns) in the order the matrix is drawn:
    by index, or (sort="strength") by total |strength|, strongest first, ties by index. The
    image, its axis ticks and its hover read the same order, so a cell always names its units."""
    if sort == "strength":
        rows = np.argsort(-np.abs(matrix).sum(axis=1), kind="stable")
        cols = np.argsort(-np.abs(matrix).sum(axis=0), kind="stable")
        return rows, cols
    return np.arange(matrix.shape[0]), np.arange(matrix.shape[1])


def matrix_png(pair: LayerConnection, *, sort: str = "index") -> bytes:
    """The strength matrix as an image: rows are target units, columns source units; red is
    positive, blue negative. sort="strength" orders rows and columns by total |strength|."""
    from PIL import Image

    matrix = strength_matrix(pair)
    rows, cols = matrix_order(matrix, sort=sort)
    matrix = matrix[rows][:, cols]
    scale = float(np.abs(matrix).max()) or 1.0
    v = np.clip(matrix / scale, -1.0, 1.0)
    red = np.where(v > 0, 255, 255 * (1 + v))
    blue = np.where(v < 0, 255, 255 * (1 - v))
    green = 255 * (1 - np.abs(v))
    rgb = np.stack([red, green, blue], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()
