"""Annotations' table in a model's bulk export: the public notes about its units (what an
anonymous visitor may read). Registered when the app is ready (`AnnotationsConfig.ready`)."""

from collections.abc import Iterator
from typing import Any

from django.db.models import Prefetch

from annotations.models import NoteEdge, NoteUnit
from annotations.selectors import author_name, public_notes, with_people
from neurons.export_tables import export_table_register, unit_key
from neurons.models import NetworkModel, Unit


def _note_rows(model: NetworkModel) -> Iterator[dict[str, Any]]:
    about = public_notes().filter(note_units__unit__layer__model=model).values("pk")
    notes = (
        with_people(public_notes().filter(pk__in=about))
        .prefetch_related(
            Prefetch(
                "note_units",
                queryset=NoteUnit.objects.select_related("unit__layer__model").order_by("position"),
            ),
            Prefetch(
                "edges",
                queryset=NoteEdge.objects.select_related(
                    "source__layer__model", "target__layer__model"
                ).order_by("pk"),
            ),
        )
        .order_by("pk")
    )
    for note in notes:
        yield {
            "id": note.pk,
            "title": note.title,
            "body": note.body,
            "body_html": note.body_html,
            "author": author_name(note.author),
            "institution": note.institution.slug if note.institution else None,
            "published": note.published.isoformat() if note.published else None,
            "url": note.get_absolute_url(),
            "units": [
                {"key": _unit_key(part.unit), "role": part.role} for part in note.note_units.all()
            ],
            "edges": [
                {
                    "source": _unit_key(edge.source),
                    "target": _unit_key(edge.target),
                    "kind": edge.kind,
                    "strength": edge.strength,
                }
                for edge in note.edges.all()
            ],
        }


def _unit_key(unit: Unit) -> str:
    return unit_key(unit.layer.model, unit.layer.name, unit.index)


def register() -> None:
    export_table_register(
        "notes",
        "id:int title:str body:str body_html:str author:str institution:str published:str "
        "url:str units:json edges:json",
        _note_rows,
    )
