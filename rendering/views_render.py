"""The "Render now" buttons of unit and layer pages, and the status a unit page's tab polls
while its job is on the way (the catalogue's URLs, `rendering:` names)."""

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from microscope_site.errors import RateLimited, Refused
from neurons import selectors
from neurons.views import UNITS_PER_PAGE
from rendering import selectors as selectors_r
from rendering.render_now import layer_render_request, technique_render_now


# Exempt from CSRF so unit pages can be cached whole for everyone (a token would be per
# visitor): the action only queues a deduplicated render and is rate-limited per client.
@csrf_exempt
@require_POST
def unit_render_now(request: HttpRequest, model: str, layer: str, index: int) -> HttpResponse:
    """A visitor's "render now" for one tab (`technique`, default the layer's first):
    deduplicated against active jobs and rate-limited per client."""
    network = selectors.model_get(model)
    unit = selectors.unit_get(selectors.layer_get(network, layer), index)
    technique = request.POST.get("technique") or unit.layer.grid_techniques[0]
    try:
        technique_render_now(unit=unit, technique=technique, client=_client(request))
    except Refused as error:
        return _refused(request, error)
    page = reverse("neurons:unit", kwargs={"model": model, "layer": layer, "index": index})
    return redirect(f"{page}?{urlencode({'technique': technique})}")


def _client(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _refused(request: HttpRequest, error: Refused) -> HttpResponse:
    if isinstance(error, RateLimited):
        response = render(request, "neurons/rate_limited.html", {"error": error}, status=429)
        response["Retry-After"] = str(error.retry_after)
        return response
    return render(request, "neurons/rate_limited.html", {"error": error}, status=error.status)


@csrf_exempt
@require_POST
def layer_render_now(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    """A visitor's "render these" on an empty technique of a layer page: the units of the
    page they were on (`page`), rate-limited per client."""
    return _layer_request(request, model, layer, staff=False)


@require_POST
def layer_queue(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    """Staff's "queue this layer": every unit, default parameters (CSRF-protected)."""
    if not request.user.is_staff:
        return HttpResponseForbidden("Only staff queue a whole layer.")
    return _layer_request(request, model, layer, staff=True)


def _layer_request(request: HttpRequest, model: str, layer: str, *, staff: bool) -> HttpResponse:
    network = selectors.model_get(model)
    found = selectors.layer_get(network, layer)
    technique = request.POST.get("technique", "")
    page = Paginator(found.units.all(), UNITS_PER_PAGE).get_page(request.POST.get("page"))
    try:
        layer_render_request(
            layer=found,
            technique=technique,
            units=[unit.index for unit in page.object_list],
            client=_client(request),
            staff=staff,
        )
    except Refused as error:
        return _refused(request, error)
    url = reverse("neurons:layer", kwargs={"model": model, "layer": found.name})
    return redirect(f"{url}?{urlencode({'technique': technique, 'page': page.number})}")


def unit_render_status(request: HttpRequest, model: str, layer: str, index: int) -> JsonResponse:
    """What a unit page's tab polls while its job is on the way (`technique`, default the
    layer's first): whether the tab has content yet, and the job's place in the queue."""
    network = selectors.model_get(model)
    unit = selectors.unit_get(selectors.layer_get(network, layer), index)
    technique = request.GET.get("technique") or unit.layer.grid_techniques[0]
    tabs = selectors_r.unit_tabs(unit.layer)
    if technique not in tabs:
        return JsonResponse(
            {"error": f"no technique {technique!r}; tabs: {list(tabs)}"}, status=404
        )
    contents = selectors_r.unit_contents(unit)
    job = selectors_r.technique_active_job(unit, technique)
    return JsonResponse(
        {
            "technique": technique,
            "ready": contents[technique],
            "renders": selectors_r.unit_renders(unit).count(),
            "job": selectors_r.job_state(job),
        }
    )
