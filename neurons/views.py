from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from neurons import selectors
from neurons.citations import unit_citation
from rendering import selectors as render_selectors
from rendering.connections import matrix_png
from rendering.models import LayerConnection
from rendering.services import RateLimited, RenderRefused, render_now

UNITS_PER_PAGE = 200
TECHNIQUES_ON_GRID = ("channel", "neuron", "negative", "diversity")


def model_list(request: HttpRequest) -> HttpResponse:
    """The zoo: every model's newest version with a representative feature visualization."""
    models = selectors.latest_models()
    cards = [(model, render_selectors.model_thumbnail(model)) for model in models]
    return render(request, "neurons/model_list.html", {"models": models, "cards": cards})


def model_detail(request: HttpRequest, model: str) -> HttpResponse:
    network = selectors.model_get(model)
    context = {
        "network": network,
        "versioned": "@" in model,
        "layers": network.layers.all(),
        "versions": selectors.model_versions().filter(slug=network.slug),
    }
    return render(request, "neurons/model_detail.html", context)


def layer_detail(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    network = selectors.model_get(model)
    found = selectors.layer_get_or_alias(network, layer)
    if found.name != layer:
        return redirect("neurons:layer", model=model, layer=found.name, permanent=True)
    page = Paginator(found.units.all(), UNITS_PER_PAGE).get_page(request.GET.get("page"))
    technique = request.GET.get("technique", "channel")
    if technique not in TECHNIQUES_ON_GRID:
        technique = "channel"
    thumbnails = render_selectors.layer_thumbnails(found, list(page.object_list), technique)
    cells = [(unit, thumbnails.get(unit.index)) for unit in page]
    context = {
        "network": network,
        "layer": found,
        "page": page,
        "cells": cells,
        "model_ref": model,
        "layer_renders": render_selectors.layer_renders(found),
        "technique": technique,
        "techniques": TECHNIQUES_ON_GRID,
    }
    return render(request, "neurons/layer_detail.html", context)


def unit_detail(request: HttpRequest, model: str, layer: str, index: int) -> HttpResponse:
    network = selectors.model_get(model)
    found = selectors.layer_get_or_alias(network, layer)
    if found.name != layer:
        return redirect("neurons:unit", model=model, layer=found.name, index=index, permanent=True)
    unit = selectors.unit_get(found, index)
    context = {
        "network": network,
        "layer": unit.layer,
        "unit": unit,
        "model_ref": model,
        "neighbours": selectors.unit_neighbours(unit),
        "renders": render_selectors.unit_renders(unit),
        "active_job": render_selectors.unit_active_job(unit),
        "connections": render_selectors.unit_connections(unit),
        "cite": unit_citation(
            unit,
            url=request.build_absolute_uri(unit.get_versioned_url()),
            accessed=timezone.now().date(),
        ),
    }
    return render(request, "neurons/unit_detail.html", context)


@require_POST
def unit_render_now(request: HttpRequest, model: str, layer: str, index: int) -> HttpResponse:
    """A visitor's "render now": deduplicated against queued jobs and rate-limited per client."""
    network = selectors.model_get(model)
    unit = selectors.unit_get(selectors.layer_get(network, layer), index)
    client = request.META.get("REMOTE_ADDR", "unknown")
    try:
        render_now(unit=unit, technique="channel", client=client)
    except RateLimited as error:
        response = render(request, "neurons/rate_limited.html", {"error": error}, status=429)
        response["Retry-After"] = str(error.retry_after)
        return response
    except RenderRefused as error:
        return render(request, "neurons/rate_limited.html", {"error": error}, status=400)
    return redirect(request.path.removesuffix("render/"))


def unit_render_status(request: HttpRequest, model: str, layer: str, index: int) -> JsonResponse:
    """What the unit page polls while a render is on its way."""
    network = selectors.model_get(model)
    unit = selectors.unit_get(selectors.layer_get(network, layer), index)
    job = render_selectors.unit_active_job(unit)
    return JsonResponse(
        {
            "renders": render_selectors.unit_renders(unit).count(),
            "job": None if job is None else {"status": job.status, "progress": job.progress},
        }
    )


def _incoming(model: str, layer: str) -> tuple[object, LayerConnection]:
    network = selectors.model_get(model)
    target = selectors.layer_get(network, layer)
    pair = LayerConnection.objects.filter(target=target).select_related("source").first()
    if pair is None:
        raise Http404(f"no weights into {target} have been computed yet")
    return network, pair


def layer_weights(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    """The weight matrix from the previous visualized layer into this one."""
    network, pair = _incoming(model, layer)
    sort = "strength" if request.GET.get("sort") == "strength" else "index"
    context = {"network": network, "pair": pair, "model_ref": model, "sort": sort}
    return render(request, "neurons/layer_weights.html", context)


def layer_weights_png(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    _, pair = _incoming(model, layer)
    sort = "strength" if request.GET.get("sort") == "strength" else "index"
    response = HttpResponse(matrix_png(pair, sort=sort), content_type="image/png")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def unit_cite_json(request: HttpRequest, model: str, layer: str, index: int) -> JsonResponse:
    """CSL-JSON for reference managers (Zotero, Mendeley, pandoc)."""
    network = selectors.model_get(model)
    unit = selectors.unit_get(selectors.layer_get(network, layer), index)
    url = request.build_absolute_uri(unit.get_versioned_url())
    csl = unit_citation(unit, url=url, accessed=timezone.now().date())["csl"]
    response = JsonResponse([csl], safe=False, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{csl["id"]}.json"'
    return response


def circuits_shorthand(request: HttpRequest, model: str, shorthand: str) -> HttpResponse:
    """`/inceptionv1/4c:447` (the Circuits thread's way of naming a unit) → the unit page."""
    network = selectors.model_get(model)
    layer_part, _, index = shorthand.partition(":")
    layer = selectors.layer_by_shorthand(network, layer_part)
    if not index.isdigit():
        raise Http404(f"{shorthand!r} is not <layer>:<index>")
    unit = selectors.unit_get(layer, int(index))
    return redirect(
        "neurons:unit", model=model, layer=unit.layer.name, index=unit.index, permanent=True
    )


def search(request: HttpRequest) -> HttpResponse:
    """A unit by shorthand (`inceptionv1 4c:447`, `mixed4c 447`), else units by curator label."""
    query = request.GET.get("q", "").strip()
    unit = selectors.unit_by_shorthand(query) if query else None
    if unit is not None:
        return redirect(unit.get_absolute_url())
    results = selectors.units_by_label(query)[:100] if query else []
    return render(request, "neurons/search.html", {"query": query, "results": results})
