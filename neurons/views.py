from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from neurons import selectors

UNITS_PER_PAGE = 200


def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "neurons/model_list.html", {"models": selectors.latest_models()})


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
    found = selectors.layer_get(network, layer)
    page = Paginator(found.units.all(), UNITS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"network": network, "layer": found, "page": page, "model_ref": model}
    return render(request, "neurons/layer_detail.html", context)


def unit_detail(request: HttpRequest, model: str, layer: str, index: int) -> HttpResponse:
    network = selectors.model_get(model)
    unit = selectors.unit_get(selectors.layer_get(network, layer), index)
    context = {
        "network": network,
        "layer": unit.layer,
        "unit": unit,
        "model_ref": model,
        "neighbours": selectors.unit_neighbours(unit),
    }
    return render(request, "neurons/unit_detail.html", context)
