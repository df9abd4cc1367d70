"""Images and a job runner for the tests of datasets, dataset examples and tuning curves."""

import numpy as np
from PIL import Image

from rendering.models import RenderJob
from rendering.services import render_job_run


def photo(seed: int, size: int = 40) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size + 7, 3), dtype=np.uint8))


def run_jobs(jobs: list[RenderJob]) -> list[RenderJob]:
    done = [render_job_run(job_id=job.pk) for job in jobs]
    assert all(job is not None for job in done)
    return [job for job in done if job is not None]
