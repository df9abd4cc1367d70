"""Tuning curves: the Django side of the engine's synthetic-stimuli pass.

Tuning curves are a `RenderJob` with technique "tuning" on one layer: one batched forward per
family of synthetic stimuli gives every unit's responses; each unit gets a `TuningCurve` row
per family, with its plot drawn once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import transaction

from microscope_site.progress import Progress
from neurons.models import NetworkModel
from neurons.services import model_touch
from rendering.engine.stimuli import FAMILIES
from rendering.engine.tuning import tuning_curves, tuning_summary
from rendering.engine.zoo import LoadedModel
from rendering.models import RenderJob, TuningCurve
from rendering.params import params_hash, render_params
from rendering.plots import tuning_svg
from rendering.services import layers_named, render_device, render_jobs_create


def tuning_jobs_create(
    *, model: NetworkModel, layers: Sequence[str] | None = None, enqueue: bool = True
) -> list[RenderJob]:
    jobs: list[RenderJob] = []
    params = {"size": model.input_size}
    phash = params_hash(render_params("tuning", params))
    for layer in layers_named(model, layers):
        if TuningCurve.objects.filter(unit__layer=layer, params_hash=phash).exists():
            continue
        jobs += render_jobs_create(layer=layer, technique="tuning", params=params, enqueue=enqueue)
    return jobs


def tuning_compute(*, job: RenderJob, loaded: LoadedModel, progress: Progress) -> None:
    layer = job.layer
    if TuningCurve.objects.filter(unit__layer=layer, params_hash=job.params_hash).exists():
        return
    map_size = (int(layer.output_shape[1]), int(layer.output_shape[2])) if layer.spatial else None
    progress(0.05, f"stimuli through {layer.name}")
    curves = tuning_curves(
        loaded.module,
        layer.module_path,
        None,
        input_size=job.params["size"],
        receptive_field=layer.receptive_field or job.params["size"],
        receptive_field_offset=layer.receptive_field_offset,
        map_size=map_size,
        preprocess=loaded.entry.preprocessing,
        device=render_device(),
    )
    progress(0.7, "storing")
    units = {u.index: u for u in layer.units.all()}
    rows = []
    for family, curve in curves.items():
        grid = {name: [float(v) for v in values] for name, values in curve.grid.items()}
        for index, unit in units.items():
            responses = np.asarray(curve.responses[index], dtype=np.float64)
            summary = tuning_summary(curve, index)
            rows.append(
                TuningCurve(
                    unit=unit,
                    family=family,
                    params_hash=job.params_hash,
                    grid=grid,
                    responses=np.round(responses, 6).tolist(),
                    summary=summary,
                    svg=tuning_svg(curve.unit(index), title=f"{FAMILIES[family].title} — {unit}"),
                )
            )
    with transaction.atomic():
        TuningCurve.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
        model_touch(layer.model_id)
    progress(1.0, f"{len(rows)} tuning curves stored")
