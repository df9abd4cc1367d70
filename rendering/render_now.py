"""What a reader's "Render now" queues: one service per button, whatever the technique.

A unit page's tab asks for that tab's technique of one unit (`technique_render_now`); a layer
page's empty technique asks for the units it shows, or staff for the whole layer
(`layer_render_request`). Renders are per unit; dataset examples, tuning curves and
connections are computed for a whole layer at once, so asking for one unit's queues its layer.
An active job that already covers the request is answered without counting against the
visitor's rate limit; everything else counts one request.
"""

from collections.abc import Sequence

from django.conf import settings

from microscope_site.errors import RateLimited
from microscope_site.ratelimit import hits_in_window
from neurons.models import Layer, Unit
from rendering.connections import connection_jobs_create
from rendering.examples import examples_jobs_create
from rendering.models import Dataset, RenderJob
from rendering.selectors import RENDER_TABS, technique_active_job, unit_tabs
from rendering.services import RenderRefused, render_jobs_create, render_now
from rendering.tuning import tuning_jobs_create

WINDOW_S = 60


def _count_request(client: str) -> None:
    if hits_in_window(f"render-now:{client}", WINDOW_S) > settings.RENDER_NOW_PER_MINUTE:
        raise RateLimited(retry_after=WINDOW_S, message="too many render requests")


def _layer_jobs(layer: Layer, technique: str, units: Sequence[int] | None) -> list[RenderJob]:
    """Jobs computing `technique` for `layer` (render techniques: `units`, default all)."""
    model = layer.model
    if technique in RENDER_TABS:
        params = {"steps": settings.RENDER_NOW_STEPS} if units is not None else None
        return render_jobs_create(layer=layer, technique=technique, params=params, units=units)
    if technique == "examples":
        dataset = Dataset.objects.order_by("-created").first()
        if dataset is None:
            raise RenderRefused(
                "no dataset is registered here yet, so there are no dataset examples to compute;"
                " staff register one with `manage.py dataset_register`"
            )
        return examples_jobs_create(model=model, dataset=dataset, layers=[layer.name])
    if technique == "tuning":
        return tuning_jobs_create(model=model, layers=[layer.name])
    if technique == "connections":
        if not layer.spatial:
            raise RenderRefused(f"{layer.name} is not a convolutional layer: it has no kernels")
        return connection_jobs_create(model=model, touching=layer)
    raise RenderRefused(f"unknown technique {technique!r}")


def technique_render_now(*, unit: Unit, technique: str, client: str) -> RenderJob | None:
    """A visitor asks for one tab of a unit page: the job that fills it (an active one when
    there is one), or None when there is nothing left to compute."""
    if technique not in unit_tabs(unit.layer):
        raise RenderRefused(
            f"{unit.layer.name} has no {technique!r} tab; it has {', '.join(unit_tabs(unit.layer))}"
        )
    if technique in RENDER_TABS:
        return render_now(unit=unit, technique=technique, client=client)
    active = technique_active_job(unit, technique)
    if active is not None:
        return active
    _count_request(client)
    jobs = _layer_jobs(unit.layer, technique, None)
    return jobs[0] if jobs else None


def layer_render_request(
    *, layer: Layer, technique: str, units: Sequence[int], client: str, staff: bool
) -> list[RenderJob]:
    """A layer page's empty technique: staff queue the whole layer with the default
    parameters; a visitor (rate-limited, one request) the `units` the page shows, with the
    fewer steps of "Render now"."""
    if technique not in layer.grid_techniques:
        known = ", ".join(layer.grid_techniques)
        raise RenderRefused(f"{layer.name}'s grid has no {technique!r}; it has {known}")
    if not staff:
        _count_request(client)
    wanted = None if staff or technique not in RENDER_TABS else list(units)
    return _layer_jobs(layer, technique, wanted)
