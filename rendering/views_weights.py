"""The weight matrix between two consecutive layers: the page (an image with labelled axes
that names the units under the pointer), its numbers as .npy, the stored kernels of one row,
and the PNG the page draws."""

import re
from typing import Any

from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from neurons import selectors
from neurons.models import NetworkModel
from neurons.pagecache import page_cacheable
from rendering.connections import matrix_order, matrix_png, strength_matrix
from rendering.models import Connection, LayerConnection

# Stands for a unit index in the URLs the page's script fills in (reversed, not hand-built).
INDEX_SENTINEL = 999999999
MATRIX_WIDTH = 960  # pixels the matrix may take at most; a cell is 1 to 6 pixels square
MARGIN_LEFT, MARGIN_TOP = 64, 48
_NICE_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)


def _incoming(model: str, layer: str) -> tuple[NetworkModel, LayerConnection]:
    network = selectors.model_get(model)
    target = selectors.layer_get(network, layer)
    pair = LayerConnection.objects.filter(target=target).select_related("source").first()
    if pair is None:
        raise Http404(f"no weights into {target} have been computed yet")
    pair.target = target
    return network, pair


def _sort(request: HttpRequest) -> str:
    return "strength" if request.GET.get("sort") == "strength" else "index"


def tick_positions(count: int, pixels: int, *, spacing: int) -> list[int]:
    """Positions (0-based) along an axis of `count` cells drawn over `pixels` that get a
    labelled tick: every `step`-th cell for the smallest round step that leaves at least
    `spacing` pixels between labels."""
    step = next((s for s in _NICE_STEPS if s * pixels / max(count, 1) >= spacing), _NICE_STEPS[-1])
    return list(range(0, count, step))


def _axis(order: list[int], cell: int, *, spacing: int) -> list[dict[str, int]]:
    return [
        {"position": p, "index": order[p], "offset": p * cell + cell // 2}
        for p in tick_positions(len(order), len(order) * cell, spacing=spacing)
    ]


def _unit_url(model_ref: str, layer: str) -> str:
    kwargs = {"model": model_ref, "layer": layer, "index": INDEX_SENTINEL}
    return reverse("neurons:unit", kwargs=kwargs)


@page_cacheable
def layer_weights(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    """The weight matrix from the previous visualized layer into this one: each row a unit
    of this layer, each column a unit of the one before; ticks name the units in the order
    drawn, hovering a cell names both units, its strength and its stored kernel."""
    network, pair = _incoming(model, layer)
    sort = _sort(request)
    rows, cols = (order.tolist() for order in matrix_order(strength_matrix(pair), sort=sort))
    cell = max(1, min(6, MATRIX_WIDTH // len(cols)))
    width, height = len(cols) * cell, len(rows) * cell
    source, target = pair.source.name, pair.target.name
    data: dict[str, Any] = {
        "source": source,
        "target": target,
        "shape": [len(rows), len(cols)],
        "rows": rows,
        "cols": cols,
        "sentinel": str(INDEX_SENTINEL),
        "npy": reverse("rendering:layer-weights-npy", kwargs={"model": model, "layer": target}),
        "kernels": reverse(
            "rendering:layer-weights-row",
            kwargs={"model": model, "layer": target, "index": INDEX_SENTINEL},
        ),
        "target_url": _unit_url(model, target),
        "source_url": _unit_url(model, source),
    }
    context = {
        "network": network,
        "pair": pair,
        "model_ref": model,
        "sort": sort,
        "data": data,
        "cell": cell,
        "width": width,
        "height": height,
        "svg_width": MARGIN_LEFT + width + 8,
        "svg_height": MARGIN_TOP + height + 8,
        "left": MARGIN_LEFT,
        "top": MARGIN_TOP,
        "x_ticks": _axis(cols, cell, spacing=36),
        "y_ticks": _axis(rows, cell, spacing=16),
    }
    return render(request, "neurons/layer_weights.html", context)


def layer_weights_png(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    _, pair = _incoming(model, layer)
    response = HttpResponse(matrix_png(pair, sort=_sort(request)), content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600"
    return response


def _download_name(pair: LayerConnection, network: NetworkModel) -> str:
    name = f"{network.slug}-{network.version}-{pair.source.name}-{pair.target.name}-weights.npy"
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", name)


def layer_weights_npy(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    """The strengths as stored: a float16 .npy of shape (target units, source units), rows
    and columns by unit index (numpy.load reads it)."""
    network, pair = _incoming(model, layer)
    with default_storage.open(str(pair.matrix.name), "rb") as handle:
        content = handle.read()
    response = HttpResponse(content, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{_download_name(pair, network)}"'
    response["Cache-Control"] = "public, max-age=3600"
    return response


def layer_weights_row(request: HttpRequest, model: str, layer: str, index: int) -> JsonResponse:
    """The kernels stored for one unit of this layer: its strongest inputs (the pair's top-k),
    strongest first; the page's hover shows the one under the pointer."""
    _, pair = _incoming(model, layer)
    if index >= pair.target.num_units:
        raise Http404(f"{pair.target} has units 0–{pair.target.num_units - 1}, not {index}")
    row = Connection.objects.filter(pair=pair, direction="in", unit__index=index).first()
    if row is None:
        raise Http404(f"no stored inputs for {pair.target}:{index}")
    import numpy as np

    k = pair.kernel_size
    kernels = np.frombuffer(bytes(row.kernels), dtype=np.float16).reshape(-1, k, k)
    response = JsonResponse(
        {
            "target": index,
            "kernel_size": k,
            "sources": row.other_indices,
            "strengths": row.strengths,
            "kernels": kernels.astype(float).round(5).tolist(),
        }
    )
    response["Cache-Control"] = "public, max-age=3600"
    return response
