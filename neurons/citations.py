"""How to cite a model, a layer or a unit: BibTeX, APA, CSL-JSON and schema.org JSON-LD,
always naming the immutable versioned URL and the weights' sha256."""

import json
from datetime import date
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from neurons.models import Layer, NetworkModel, Unit

PUBLISHER = "Microscope"

# What json_script escapes: inside <script> these could end the element or open a comment.
_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def _citation(
    model: NetworkModel, *, title: str, what: str, key: str, url: str, accessed: date
) -> dict[str, Any]:
    version = f"{model.slug}@{model.version}"
    key = f"microscope_{model.slug}_{model.version}_{key}".replace(".", "_").replace("-", "_")
    note = f"model version {version}, weights sha256 {model.weights_sha256}"
    if model.untrained:
        note += ", untrained (random) weights"
    bibtex = (
        f"@misc{{{key},\n"
        f"  title = {{{title}}},\n"
        f"  author = {{{{{PUBLISHER}}}}},\n"
        f"  year = {{{model.created:%Y}}},\n"
        f"  howpublished = {{\\url{{{url}}}}},\n"
        f"  note = {{{note}; accessed {accessed:%Y-%m-%d}}}\n"
        f"}}"
    )
    apa = (
        f"{PUBLISHER}. ({model.created:%Y}). {title} [{what} of {version}]. "
        f"Retrieved {accessed:%B} {accessed.day}, {accessed:%Y}, from {url}"
    )
    csl = {
        "id": key,
        "type": "webpage",
        "title": title,
        "author": [{"literal": PUBLISHER}],
        "issued": {"date-parts": [[model.created.year, model.created.month, model.created.day]]},
        "accessed": {"date-parts": [[accessed.year, accessed.month, accessed.day]]},
        "URL": url,
        "version": version,
        "note": note,
    }
    jsonld = {
        "@context": "https://schema.org",
        "@type": "WebPage",
        "name": title,
        "url": url,
        "version": version,
        "datePublished": model.created.date().isoformat(),
        "publisher": {"@type": "Organization", "name": PUBLISHER},
        "about": {
            "@type": "SoftwareSourceCode" if what == "Model" else "Thing",
            "name": title,
            "description": note,
        },
    }
    return {"bibtex": bibtex, "apa": apa, "csl": csl, "title": title, "jsonld": jsonld}


def unit_citation(unit: Unit, *, url: str, accessed: date) -> dict[str, Any]:
    layer = unit.layer
    model = layer.model
    return _citation(
        model,
        title=f"{model.display_name} {layer.name}:{unit.index}",
        what="Unit",
        key=f"{layer.name}_{unit.index}",
        url=url,
        accessed=accessed,
    )


def layer_citation(layer: Layer, *, url: str, accessed: date) -> dict[str, Any]:
    model = layer.model
    return _citation(
        model,
        title=f"{model.display_name} layer {layer.name}",
        what="Layer",
        key=layer.name,
        url=url,
        accessed=accessed,
    )


def model_citation(model: NetworkModel, *, url: str, accessed: date) -> dict[str, Any]:
    return _citation(
        model, title=model.display_name, what="Model", key="model", url=url, accessed=accessed
    )


def jsonld_script(data: dict[str, Any]) -> SafeString:
    """A `<script type="application/ld+json">` element that nothing in `data` can break out of."""
    text = json.dumps(data, sort_keys=True).translate(_SCRIPT_ESCAPES)
    return mark_safe(f'<script type="application/ld+json">{text}</script>')  # noqa: S308
