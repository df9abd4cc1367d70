from typing import Any

import pytest

from rendering.models import TuningCurve
from rendering.tuning import tuning_jobs_create
from tests.rendering.passes import run_jobs

pytestmark = pytest.mark.django_db


def test_tuning_curves_are_stored_with_their_plot(tiny_model: Any) -> None:
    jobs = tuning_jobs_create(model=tiny_model, layers=["conv2", "logits"], enqueue=False)
    assert all(job.status == "succeeded" for job in run_jobs(jobs))
    curves = TuningCurve.objects.filter(unit__layer__name="conv2", unit__layer__model=tiny_model)
    assert sorted(set(curves.values_list("family", flat=True))) == ["colour", "curves", "gratings"]
    assert curves.count() == 3 * 16
    colour = curves.get(family="colour", unit__index=0)
    assert list(colour.grid) == ["hue"] and len(colour.responses) == len(colour.grid["hue"])
    assert colour.svg.startswith("<svg") and "<title" in colour.svg
    assert TuningCurve.objects.filter(unit__layer__name="logits").count() == 3 * 10
