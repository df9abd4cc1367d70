"""How to cite a circuit note: BibTeX, APA, CSL-JSON and JSON-LD, naming the revision's
permanent URL (a revision never changes), as `neurons.citations` does for units."""

from datetime import date
from typing import Any

from annotations.models import NoteRevision
from annotations.selectors import author_name
from neurons.citations import PUBLISHER


def _bibtex_escape(text: str) -> str:
    return "".join("\\" + c if c in "{}%&$#_\\" else c for c in text)


def note_citation(revision: NoteRevision, *, url: str, accessed: date) -> dict[str, Any]:
    note = revision.note
    author = author_name(note.author)
    issued = (note.published or note.created).date()
    title = revision.title
    key = f"microscope_note_{note.pk}_r{revision.number}"
    bibtex = (
        f"@misc{{{key},\n"
        f"  title = {{{_bibtex_escape(title)}}},\n"
        f"  author = {{{_bibtex_escape(author)}}},\n"
        f"  year = {{{issued:%Y}}},\n"
        f"  howpublished = {{\\url{{{url}}}}},\n"
        f"  note = {{{PUBLISHER} circuit note, revision {revision.number}; accessed "
        f"{accessed:%Y-%m-%d}}}\n"
        f"}}"
    )
    apa = (
        f"{author}. ({issued:%Y}). {title} [Circuit note, revision {revision.number}]. "
        f"{PUBLISHER}. Retrieved {accessed:%B} {accessed.day}, {accessed:%Y}, from {url}"
    )
    csl = {
        "id": key,
        "type": "post-weblog",
        "title": title,
        "author": [{"literal": author}],
        "issued": {"date-parts": [[issued.year, issued.month, issued.day]]},
        "accessed": {"date-parts": [[accessed.year, accessed.month, accessed.day]]},
        "URL": url,
        "version": str(revision.number),
        "container-title": PUBLISHER,
    }
    jsonld = {
        "@context": "https://schema.org",
        "@type": "ScholarlyArticle",
        "headline": title,
        "name": title,
        "url": url,
        "version": str(revision.number),
        "datePublished": issued.isoformat(),
        "dateModified": revision.created.date().isoformat(),
        "author": {"@type": "Person", "name": author},
        "publisher": {"@type": "Organization", "name": PUBLISHER},
    }
    return {"bibtex": bibtex, "apa": apa, "csl": csl, "title": title, "jsonld": jsonld}
