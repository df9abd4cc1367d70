from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from annotations.errors import AnnotationRefused, NotAllowed
from annotations.models import Note, NoteRevision
from annotations.notes import (
    models_touch,
    note_create,
    note_editable_fields,
    note_publish,
    note_update,
)

pytestmark = pytest.mark.django_db

UNITS = "inceptionv1 4c:447, input\ninceptionv1/mixed4c/448"


def test_a_new_note_is_a_draft_with_its_units_edges_and_first_revision(
    people: dict[str, Any], institutions: dict[str, Any], inceptionv1: Any
) -> None:
    note = note_create(
        author=people["alice"], title=" Curves ", body="About **4c**.", units=UNITS, edges="1 -> 2"
    )
    assert (note.title, note.visibility, note.published) == ("Curves", "private", None)
    assert note.institution == institutions["mit"] and "<strong>4c</strong>" in note.body_html
    assert [(p.position, p.unit.index, p.role) for p in note.note_units.order_by("position")] == [
        (0, 447, "input"),
        (1, 448, ""),
    ]
    edge = note.edges.get()
    assert (edge.source.index, edge.target.index, edge.kind) == (447, 448, "excitatory")
    revision = NoteRevision.objects.get(note=note)
    assert (revision.number, revision.author, revision.title) == (1, people["alice"], "Curves")
    model = f"inceptionv1@{inceptionv1.version}/mixed4c"
    assert revision.units == f"{model}/447, input\n{model}/448"
    assert revision.edges == "1 -> 2"


def test_a_refused_note_stores_nothing(people: dict[str, Any], inceptionv1: Any) -> None:
    with pytest.raises(NotAllowed):
        note_create(author=AnonymousUser(), title="t", body="b", units=UNITS)
    with pytest.raises(AnnotationRefused) as refused:
        note_create(author=people["alice"], title="t", body="b", units=UNITS, visibility="all")
    assert refused.value.field == "visibility"
    with pytest.raises(AnnotationRefused) as refused:
        note_create(author=people["alice"], title="t", body="b", units="inceptionv1 4c:9999")
    assert refused.value.field == "units"
    assert not Note.objects.exists() and not NoteRevision.objects.exists()


def test_an_edit_is_the_next_revision_and_replaces_the_units(
    people: dict[str, Any], make_note: Any
) -> None:
    note = make_note()
    note_update(
        note=note, editor=people["alice"], title="Curves, again", body="Edited.", units=UNITS
    )
    note.refresh_from_db()
    assert (note.title, note.body, note.visibility) == ("Curves, again", "Edited.", "public")
    assert note.note_units.count() == 2 and not note.edges.exists()
    assert list(note.revisions.order_by("number").values_list("number", "title")) == [
        (1, "Curve detectors"),
        (2, "Curves, again"),
    ]
    with pytest.raises(NotAllowed):
        note_update(note=note, editor=people["amir"], title="Mine", body="b", units=UNITS)
    assert Note.objects.get(pk=note.pk).title == "Curves, again"


def test_only_the_author_publishes_and_publishing_twice_keeps_the_date(
    people: dict[str, Any], make_note: Any
) -> None:
    draft = make_note(publish=False)
    assert draft.published is None
    with pytest.raises(NotAllowed):
        note_publish(note=draft, user=people["bea"])
    assert Note.objects.get(pk=draft.pk).published is None
    published = note_publish(note=draft, user=people["alice"]).published
    assert published is not None
    assert note_publish(note=draft, user=people["alice"]).published == published
    assert Note.objects.get(pk=draft.pk).published == published


def test_the_edit_form_shows_the_latest_revision(
    people: dict[str, Any], make_note: Any, inceptionv1: Any
) -> None:
    note = make_note(edges="1 -| 2 0.5")
    note_update(note=note, editor=people["alice"], title="T", body="B", units=UNITS, edges="2 -> 1")
    assert note_editable_fields(note) == {
        "title": "T",
        "body": "B",
        "units": f"inceptionv1@{inceptionv1.version}/mixed4c/447, input\n"
        f"inceptionv1@{inceptionv1.version}/mixed4c/448",
        "edges": "2 -> 1",
        "visibility": "public",
    }


def test_touching_models_moves_their_content_version(inceptionv1: Any) -> None:
    version = inceptionv1.content_version
    models_touch({inceptionv1.pk})
    inceptionv1.refresh_from_db()
    assert inceptionv1.content_version == version + 1
