import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.cache import set_response_etag
from django.utils.html import format_html
from django.views.decorators.clickjacking import xframe_options_exempt

from neurons import selectors
from neurons.citations import jsonld_script, layer_citation, model_citation, unit_citation
from neurons.models import NetworkModel, Unit, layer_path
from neurons.pagecache import (
    cached_response,
    page_cacheable,
    page_unit_id,
    response_keep,
)
from neurons.panels import page_contents
from neurons.search import SECTIONS, CatalogueMatches, catalogue_search
from neurons.search import sections_version as search_sections_version

UNITS_PER_PAGE = 200
EMBED_SIZE = (360, 420)  # iframe width, height of the embeddable unit card
COMPARE_UNITS_PER_MODEL = 48
LABEL_MAX, FAMILY_MAX = 200, 64  # Unit.curator_label and Unit.family_tag lengths


def _cite(request: HttpRequest, citation: dict[str, Any]) -> dict[str, Any]:
    return {**citation, "jsonld_script": jsonld_script(citation["jsonld"])}


def _today() -> Any:
    return timezone.now().date()


def _newer(network: NetworkModel, model_ref: str) -> NetworkModel | None:
    """The newest version when `network` is an older one (its pages say so and link to it)."""
    if "@" not in model_ref:
        return None
    latest = selectors.model_get(network.slug)
    return latest if latest.pk != network.pk else None


def _thumbnail(model: NetworkModel | None) -> Any:
    return page_contents().model_thumbnail(model) if model is not None else None


@page_cacheable
def model_list(request: HttpRequest) -> HttpResponse:
    """The zoo: every registry model by family, imported or not; each imported one with its
    newest version and a representative feature visualization."""
    families = [
        (
            family,
            [(row, _thumbnail(row.model)) for row in rows],
        )
        for family, rows in selectors.zoo_families()
    ]
    imported = sum(row.model is not None for _, rows in families for row, _ in rows)
    context = {"families": families, "imported": imported}
    return render(request, "neurons/model_list.html", context)


@page_cacheable
def model_detail(request: HttpRequest, model: str) -> HttpResponse:
    network = selectors.model_get(model)

    layers = list(network.layers.all())
    nav_layers = [selectors.LayerStep(layer.name, layer.num_units, layer.kind) for layer in layers]
    strips, available = page_contents().model_layers(network)
    context = {
        "network": network,
        "model_ref": model,
        "versioned": "@" in model,
        "newer": _newer(network, model),
        "rows": [
            (layer, strips.get(layer.pk, []), available.get(layer.pk, [])) for layer in layers
        ],
        "versions": selectors.model_versions().filter(slug=network.slug),
        "cite": _cite(
            request,
            model_citation(
                network,
                url=request.build_absolute_uri(network.get_versioned_url()),
                accessed=_today(),
            ),
        ),
        "cite_url": reverse("neurons:model-cite", kwargs={"model": model}),
        "weights_url_is_link": network.weights_url.startswith(("https://", "http://")),
        "nav_layers": nav_layers,
    }
    return render(request, "neurons/model_detail.html", context)


@page_cacheable
def layer_detail(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    network = selectors.model_get(model)
    found = selectors.layer_get_or_alias(network, layer)
    if found.name != layer:
        return redirect("neurons:layer", model=model, layer=found.name, permanent=True)
    # A layer's units are indices 0 … num_units - 1: a page is a range of indices, and the
    # paginator needs no COUNT query.
    page = Paginator(range(found.num_units), UNITS_PER_PAGE).get_page(request.GET.get("page"))
    start = (page.number - 1) * UNITS_PER_PAGE
    # By index alone: the units' default order (model, layer, index) joins two tables to sort.
    units = list(
        found.units.filter(index__gte=start, index__lt=start + UNITS_PER_PAGE).order_by("index")
    )
    nav_layers = selectors.model_layers(network)
    previous_layer, next_layer = selectors.layer_neighbours(nav_layers, found.name)
    context = {
        **page_contents().layer_page(request, found, units),  # what fills the grid
        "network": network,
        "layer": found,
        "page": page,
        "units": units,
        "model_ref": model,
        "newer": _newer(network, model),
        "page_units": f"{units[0].index}–{units[-1].index}" if units else "",
        "nav_layers": nav_layers,
        "previous_layer": previous_layer,
        "next_layer": next_layer,
        "cite": _cite(
            request,
            layer_citation(
                found,
                url=request.build_absolute_uri(found.get_versioned_url()),
                accessed=_today(),
            ),
        ),
        "cite_url": reverse("neurons:layer-cite", kwargs={"model": model, "layer": found.name}),
    }
    return render(request, "neurons/layer_detail.html", context)


def _unit_context(
    request: HttpRequest, model: str, network: NetworkModel, unit: Unit
) -> dict[str, Any]:
    versioned_path = unit.get_versioned_url()
    versioned_url = request.build_absolute_uri(versioned_path)
    return {
        "network": network,
        "layer": unit.layer,
        "unit": unit,
        "model_ref": model,
        "versioned_path": versioned_path,
        "versioned_url": versioned_url,
        "cite": _cite(request, unit_citation(unit, url=versioned_url, accessed=_today())),
    }


@page_cacheable
def unit_detail(request: HttpRequest, model: str, layer: str, index: int) -> HttpResponse:
    unit_id = page_unit_id(request)  # the page cache's key query found it
    unit = selectors.unit_by_id(unit_id) if unit_id else selectors.unit_at(model, layer, index)
    network, found = unit.layer.model, unit.layer
    if found.name != layer:
        url = reverse("neurons:unit", kwargs={"model": model, "layer": found.name, "index": index})
        query = request.META.get("QUERY_STRING", "")
        return redirect(url + (f"?{query}" if query else ""), permanent=True)
    contents = page_contents().unit_page(request, unit)  # the tabs
    technique = contents["technique"]
    nav_layers = selectors.model_layers(network)
    previous_layer, next_layer = selectors.layer_neighbours(nav_layers, found.name)
    here = {"model": model, "layer": found.name}
    about = _unit_context(request, model, network, unit)
    context = {
        **about,
        **contents,
        "newer": _newer(network, model),
        "nav_layers": nav_layers,
        "previous_unit": _unit_url(here, index - 1, technique) if index > 0 else None,
        "next_unit": (
            _unit_url(here, index + 1, technique) if index + 1 < found.num_units else None
        ),
        "previous_layer": previous_layer,
        "next_layer": next_layer,
        "cite_url": reverse(
            "neurons:unit-cite", kwargs={"model": model, "layer": found.name, "index": index}
        ),
        "oembed_url": request.build_absolute_uri(reverse("oembed"))
        + "?"
        + urlencode({"url": about["versioned_url"], "format": "json"}),
    }
    return render(request, "neurons/unit_detail.html", context)


def _unit_url(here: dict[str, str], index: int, technique: str | None) -> str:
    """A unit page of this layer, on the same tab (the reader stays where they were)."""
    url = f"{layer_path(here['model'], here['layer'])}{index}/"
    return f"{url}?{urlencode({'technique': technique})}" if technique else url


@page_cacheable
@xframe_options_exempt
def unit_embed(request: HttpRequest, model: str, layer: str, index: int) -> HttpResponse:
    """The embeddable unit card: the only page other sites may put in a frame."""
    network = selectors.model_get(model)
    unit = selectors.unit_get(selectors.layer_get(network, layer), index)
    context = {
        **_unit_context(request, model, network, unit),
        "renders": list(page_contents().unit_images(unit)),
    }
    return render(request, "neurons/unit_embed.html", context)


def oembed(request: HttpRequest) -> HttpResponse:
    """oEmbed (https://oembed.com) for unit pages: `?url=<unit page URL>&format=json`."""
    url = request.GET.get("url", "")
    if request.GET.get("format", "json") != "json":
        return JsonResponse({"error": "only format=json is served"}, status=501)
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.get_host():
        return JsonResponse({"error": f"{parts.netloc} is not this site"}, status=404)
    try:
        match = resolve(parts.path or "/")
    except Resolver404:
        return JsonResponse({"error": f"{url!r} is not a page of this site"}, status=404)
    if match.view_name != "neurons:unit":
        return JsonResponse({"error": "only unit pages can be embedded"}, status=404)
    unit = selectors.unit_following_renames(
        match.kwargs["model"], match.kwargs["layer"], match.kwargs["index"]
    )
    if unit is None:
        return JsonResponse({"error": f"{url!r} names no unit"}, status=404)
    network = unit.layer.model
    model_ref = network.slug + (f"@{network.version}" if "@" in match.kwargs["model"] else "")
    width, height = EMBED_SIZE
    for name, limit in (("maxwidth", width), ("maxheight", height)):
        value = request.GET.get(name, "")
        if value.isdigit():
            if name == "maxwidth":
                width = min(limit, int(value))
            else:
                height = min(limit, int(value))
    embed = request.build_absolute_uri(
        reverse(
            "unit-embed", kwargs={"model": model_ref, "layer": unit.layer.name, "index": unit.index}
        )
    )
    title = f"{network.display_name} {unit.layer.name}:{unit.index}"
    data: dict[str, Any] = {
        "version": "1.0",
        "type": "rich",
        "title": title,
        "provider_name": "Microscope",
        "provider_url": request.build_absolute_uri("/"),
        "width": width,
        "height": height,
        "html": format_html(
            '<iframe src="{}" width="{}" height="{}" title="{}" style="border:0" '
            'loading="lazy"></iframe>',
            embed,
            width,
            height,
            title,
        ),
    }
    first = next(iter(page_contents().unit_images(unit)), None)
    if first is not None:
        data["thumbnail_url"] = request.build_absolute_uri(first.thumbnail.url)
        data["thumbnail_width"] = data["thumbnail_height"] = 96
    return JsonResponse(data)


def short_link(request: HttpRequest, unit_id: int) -> HttpResponse:
    """`/u/<id>`: a short, permanent link to one unit of one model version."""
    unit = get_object_or_404(Unit.objects.select_related("layer__model"), pk=unit_id)
    return redirect(unit.get_versioned_url(), permanent=True)


def _csl_download(csl: dict[str, Any]) -> JsonResponse:
    """CSL-JSON for reference managers (Zotero, Mendeley, pandoc)."""
    response = JsonResponse([csl], safe=False, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{csl["id"]}.json"'
    return response


def unit_cite_json(request: HttpRequest, model: str, layer: str, index: int) -> JsonResponse:
    network = selectors.model_get(model)
    unit = selectors.unit_get(selectors.layer_get(network, layer), index)
    url = request.build_absolute_uri(unit.get_versioned_url())
    return _csl_download(unit_citation(unit, url=url, accessed=_today())["csl"])


def layer_cite_json(request: HttpRequest, model: str, layer: str) -> JsonResponse:
    found = selectors.layer_get(selectors.model_get(model), layer)
    url = request.build_absolute_uri(found.get_versioned_url())
    return _csl_download(layer_citation(found, url=url, accessed=_today())["csl"])


def model_cite_json(request: HttpRequest, model: str) -> JsonResponse:
    network = selectors.model_get(model)
    url = request.build_absolute_uri(network.get_versioned_url())
    return _csl_download(model_citation(network, url=url, accessed=_today())["csl"])


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


# What `catalogue_page_cacheable` keeps, by status: the headers a kept answer needs.
_CATALOGUE_KEPT_HEADERS = {200: ("Content-Type", "ETag"), 301: ("Location",), 302: ("Location",)}


def catalogue_page_cacheable(
    *versions: Callable[[], str],
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """`page_cacheable` for a page that spans every model, which `PageCache` (keyed on one
    model's content version, found from the path) does not keep: its anonymous 200 responses
    are stored here, keyed on the URL, every model's content version (what the zoo page
    uses) and whatever else the page shows (`versions`: functions answering a version
    string), so any change to what the page shows makes a new key. Its redirects are kept
    too. A hit costs those queries (and `PageCache`'s own lookup, when the path looks like a
    model page's)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if (
                request.method not in ("GET", "HEAD")
                or settings.SESSION_COOKIE_NAME in request.COOKIES
            ):
                return view(request, *args, **kwargs)
            parts = [request.build_absolute_uri(), selectors.catalogue_version()]
            raw = "|".join(parts + [version() for version in versions])
            key = "page:catalogue:" + hashlib.sha256(raw.encode()).hexdigest()
            cached = cached_response(key)
            if cached is not None:
                return cached
            response = view(request, *args, **kwargs)
            # A redirect is kept too: where a name leads (a unit's shorthand in search, a
            # tray's added unit) depends on the catalogue only, which the key holds.
            kept = _CATALOGUE_KEPT_HEADERS.get(response.status_code)
            if kept is not None and not response.cookies:
                if response.status_code == 200:
                    set_response_etag(response)
                response_keep(key, response, kept)
                response["X-Page-Cache"] = "miss"
            return response

        return wrapper

    return decorate


@catalogue_page_cacheable(search_sections_version)
def search(request: HttpRequest) -> HttpResponse:
    """A unit by shorthand (`InceptionV1 4c:447`, `mixed4c 447`) goes straight to its page;
    anything else lists the models, layers and units it names (`neurons.search`: names, class
    names, curator labels, family tags; `model=<slug>` keeps one model's) and the notes this
    visitor may see whose title or body matches. The notes differ by visitor: only anonymous
    visitors' pages (public notes) are cached, keyed on every model's version and the notes'
    (`neurons.search.sections_version`)."""

    query = request.GET.get("q", "").strip()
    model = request.GET.get("model", "").strip()
    usable = bool(query) and "\x00" not in query + model  # PostgreSQL refuses NUL in strings
    unit = selectors.unit_by_shorthand(query) if usable and not model else None
    if unit is not None:
        return redirect(unit.get_absolute_url())
    found = catalogue_search(query, model=model) if usable else CatalogueMatches()
    sections = {
        name: list(section.matching(query, user=request.user)) if usable and not model else []
        for name, section in SECTIONS.items()
    }
    context = {
        "query": query,
        "model": model,
        "found": found,
        "results": found.labelled,
        "tagged": found.tagged,
        **sections,  # "notes", from annotations
        "compare_url": _compare_url(label=query) if found.labelled else None,
        "compare_family_url": _compare_url(family=query) if found.tagged else None,
    }
    return render(request, "neurons/search.html", context)


def _compare_url(*, label: str = "", family: str = "") -> str:
    query = {"label": label} if label else {"family": family}
    return reverse("neurons:compare") + "?" + urlencode(query)


class BadCompare(ValueError):
    """A compare request that cannot be answered; the message says why."""


def _compare_terms(request: HttpRequest) -> tuple[str, str]:
    label = request.GET.get("label", "").strip()
    family = request.GET.get("family", "").strip()
    if label and family:
        raise BadCompare("Compare by a label or by a family tag, not both at once.")
    for name, value, limit in (("label", label, LABEL_MAX), ("family", family, FAMILY_MAX)):
        if len(value) > limit:
            raise BadCompare(f"A {name} is at most {limit} characters; this one has {len(value)}.")
        if any(ord(character) < 32 for character in value):
            raise BadCompare(f"The {name} contains control characters.")
    return label, family


@catalogue_page_cacheable()
def compare(request: HttpRequest) -> HttpResponse:
    """Units with the same curator label (`?label=`, substring) or family tag (`?family=`)
    side by side, one column per model (its newest version), above the index of the labels
    and tags in use. Bad parameters answer 400, a family tag no unit has 404."""
    if "units" in request.GET or "add" in request.GET:  # the comparison tray
        return page_contents().compare_tray(request)
    models = selectors.latest_models()
    label = family = error = ""
    status = 200
    try:
        label, family = _compare_terms(request)
    except BadCompare as bad:
        error, status = str(bad), 400
    columns = []
    if label or family:
        compared = selectors.units_compare(
            label=label, family=family, per_model=COMPARE_UNITS_PER_MODEL, models=models
        )
        columns = [
            {
                "compared": column,
                "cards": page_contents().unit_thumbnails(column.units),
                "more_url": reverse("search")
                + "?"
                + urlencode({"q": label or family, "model": column.model.slug}),
            }
            for column in compared
        ]
        if family and not columns:
            error, status = f"No unit of any model has the family tag “{family}”.", 404
    context: dict[str, Any] = {
        "label": label,
        "family": family,
        "columns": columns,
        "per_model": COMPARE_UNITS_PER_MODEL,
        "error": error,
        "labels": selectors.unit_terms("curator_label", models=models),
        "families": selectors.unit_terms("family_tag", models=models),
    }
    return render(request, "neurons/compare.html", context, status=status)
