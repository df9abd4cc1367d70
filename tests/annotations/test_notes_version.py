"""`notes_version`, part of the key of every cached search page and notes API answer: it moves
with every write to a note and with nothing else, and on PostgreSQL the newest `updated` comes
from its index rather than from a scan of every note's row."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.models import Note
from annotations.moderation import moderation_set_hidden
from annotations.notes import note_publish, note_update
from annotations.search import notes_version

pytestmark = pytest.mark.django_db


def test_every_write_to_a_note_moves_the_version_and_reading_does_not(
    make_note: Any, people: dict[str, Any]
) -> None:
    empty = notes_version()
    assert empty == "0.-"
    note = make_note(title="Zebra", visibility="public", publish=False)
    seen = [empty, notes_version()]
    assert notes_version() == seen[-1]  # asking again changes nothing
    assert seen[-1].startswith("1.")
    note_publish(note=note, user=people["alice"])
    seen.append(notes_version())
    note_update(note=note, editor=people["alice"], title="Zebras", body="Stripes.", units="")
    seen.append(notes_version())
    moderation_set_hidden(moderator=people["bruno"], hidden=True, note=note)
    seen.append(notes_version())
    moderation_set_hidden(moderator=people["bruno"], hidden=False, note=note)
    seen.append(notes_version())
    make_note(title="Okapi", visibility="private")
    seen.append(notes_version())
    assert len(set(seen)) == len(seen), seen
    assert seen[-1].startswith("2.")


def test_the_newest_update_is_read_from_its_index(make_note: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    for title in ("Zebra", "Okapi", "Quagga"):
        make_note(title=title)
    with CaptureQueriesContext(connection) as asked:
        notes_version()
    (sql,) = [query["sql"] for query in asked.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # three rows: make the index worth it
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "note_updated" in plan, plan
    assert Note.objects.count() == 3
