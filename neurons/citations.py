"""How to cite a unit: BibTeX, APA and CSL-JSON, always naming the immutable versioned URL."""

from datetime import date
from typing import Any

from neurons.models import Unit

PUBLISHER = "Microscope"


def unit_citation(unit: Unit, *, url: str, accessed: date) -> dict[str, Any]:
    layer = unit.layer
    model = layer.model
    title = f"{model.display_name} {layer.name}:{unit.index}"
    version = f"{model.slug}@{model.version}"
    key = f"microscope_{model.slug}_{model.version}_{layer.name}_{unit.index}".replace(".", "_")
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
        f"{PUBLISHER}. ({model.created:%Y}). {title} [Unit of {version}]. "
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
    return {"bibtex": bibtex, "apa": apa, "csl": csl, "title": title}
