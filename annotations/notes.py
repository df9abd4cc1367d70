"""Notes: written, revised and published by their author only; every edit is a revision.

A write that changes what a public note shows touches the models whose unit pages show it
(`models_touch`), so the cached pages refresh at once.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations import selectors
from annotations.errors import AnnotationRefused, NotAllowed
from annotations.markdown import render_markdown
from annotations.mentions import mentions_notify
from annotations.models import NOTE_BODY_MAX, TITLE_MAX, Note, NoteEdge, NoteRevision, NoteUnit
from annotations.note_units import (
    MAX_EDGES,
    MAX_UNITS,
    EdgeSpec,
    UnitRef,
    edges_parse,
    edges_text,
    model_of,
    units_parse,
    units_text,
)
from annotations.people import profile_for
from annotations.write_rules import clean_text, rate_limit, require_author
from neurons.services import model_touch


def models_touch(model_ids: set[int]) -> None:
    for model_id in sorted(model_ids):
        model_touch(model_id)


def note_create(
    *,
    author: Any,
    title: str,
    body: str,
    units: str,
    edges: str = "",
    visibility: str = Note.Visibility.PRIVATE,
    publish: bool = False,
) -> Note:
    """A new note (a draft unless `publish`), with its first revision."""
    if not author.is_authenticated:
        raise NotAllowed("log in to write notes")
    rate_limit(author)
    fields = _note_fields(title=title, body=body, units=units, edges=edges, visibility=visibility)
    with transaction.atomic():
        note = Note.objects.create(
            author=author,
            institution=profile_for(author).institution,
            title=fields["title"],
            body=fields["body"],
            body_html=render_markdown(fields["body"], model=model_of(fields["refs"])),
            visibility=fields["visibility"],
        )
        _note_store_parts(note, fields["refs"], fields["edges"])
        _note_revision(note, author, fields)
        if publish:
            _note_publish(note)
    return note


def note_update(
    *,
    note: Note,
    editor: Any,
    title: str,
    body: str,
    units: str,
    edges: str = "",
    visibility: str | None = None,
) -> Note:
    """Only the author edits a note; the edit becomes the next revision."""
    require_author(editor, note.author_id, "note")
    rate_limit(editor)
    fields = _note_fields(
        title=title, body=body, units=units, edges=edges, visibility=visibility or note.visibility
    )
    with transaction.atomic():
        was_public = note.is_public
        before = selectors.models_of_note(note)
        note.title = fields["title"]
        note.body = fields["body"]
        note.body_html = render_markdown(fields["body"], model=model_of(fields["refs"]))
        note.visibility = fields["visibility"]
        note.save()
        note.note_units.all().delete()
        note.edges.all().delete()
        _note_store_parts(note, fields["refs"], fields["edges"])
        _note_revision(note, editor, fields)
        if was_public or note.is_public:
            models_touch(before | selectors.models_of_note(note))
    return note


def note_publish(*, note: Note, user: Any) -> Note:
    require_author(user, note.author_id, "note")
    if note.published is None:
        with transaction.atomic():
            _note_publish(note)
    return note


def _note_publish(note: Note) -> None:
    note.published = timezone.now()
    note.save(update_fields=["published", "updated"])
    if note.is_public:
        models_touch(selectors.models_of_note(note))
    mentions_notify(note.body, note=note, author=note.author)


def _note_fields(
    *, title: str, body: str, units: str, edges: str, visibility: str
) -> dict[str, Any]:
    if visibility not in Note.Visibility.values:
        raise AnnotationRefused(
            f"visibility is one of {', '.join(Note.Visibility.values)}", field="visibility"
        )
    fields: dict[str, Any] = {
        "title": clean_text(title, field="title", limit=TITLE_MAX),
        "body": clean_text(body, field="body", limit=NOTE_BODY_MAX),
        "visibility": visibility,
    }
    units = clean_text(units, field="units", limit=MAX_UNITS * 120, required=False)
    edges = clean_text(edges, field="edges", limit=MAX_EDGES * 40, required=False)
    fields["refs"] = units_parse(units)
    fields["edges"] = edges_parse(edges, fields["refs"])
    return fields


def _note_store_parts(note: Note, refs: list[UnitRef], edges: list[EdgeSpec]) -> None:
    NoteUnit.objects.bulk_create(
        NoteUnit(note=note, unit=r.unit, position=i, role=r.role) for i, r in enumerate(refs)
    )
    NoteEdge.objects.bulk_create(
        NoteEdge(note=note, source=e.source, target=e.target, kind=e.kind, strength=e.strength)
        for e in edges
    )


def _note_revision(note: Note, author: Any, fields: dict[str, Any]) -> NoteRevision:
    last = note.revisions.order_by("-number").values_list("number", flat=True).first() or 0
    return NoteRevision.objects.create(
        note=note,
        number=last + 1,
        author=author,
        title=fields["title"],
        body=fields["body"],
        units=units_text(fields["refs"]),
        edges=edges_text(fields["edges"], fields["refs"]),
        visibility=fields["visibility"],
    )


def note_editable_fields(note: Note) -> dict[str, str]:
    """The note as its edit form shows it (from its latest revision)."""
    latest = note.revisions.order_by("-number").first()
    return {
        "title": note.title,
        "body": note.body,
        "units": latest.units if latest else "",
        "edges": latest.edges if latest else "",
        "visibility": note.visibility,
    }
