"""Notes found by the site search (`/search/?q=`): title and body text, visible notes only.

Full-text search on PostgreSQL (English stemming, title ranked above body); a case-insensitive
substring match on SQLite, as `neurons.selectors.units_by_label` does for curator labels.
Which notes a visitor may find is `selectors.notes_visible_to`, narrowed by one rule of its own:
hidden notes leave search for everyone, their authors included, as they leave every list.
"""

from django.db import connection
from django.db.models import F, Q, QuerySet

from annotations import selectors
from annotations.models import Note
from microscope_site.rows import sql_row

__all__ = ["NOTES_SHOWN", "notes_matching", "notes_version"]

NOTES_SHOWN = 50
# Explicit rather than the server's `default_text_search_config`, so stemming ("detectors"
# finds "detector") never depends on how the database was initialised.
TEXT_SEARCH_CONFIG = "english"
# The searcher's own drafts (not yet published) come after published notes on both databases.
_NEWEST_FIRST = F("published").desc(nulls_last=True)


def notes_matching(query: str, *, user: selectors.User) -> QuerySet[Note]:
    """Notes `user` may see whose title or body matches `query`, best match first (newest
    first on SQLite), with their authors and institutions; at most `NOTES_SHOWN`."""
    query = query.strip()
    if not query:
        return Note.objects.none()
    notes = selectors.with_people(selectors.notes_visible_to(user).filter(hidden=False))
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank

        # `search_vector`: title (A) and body (B) in TEXT_SEARCH_CONFIG, kept by a trigger and
        # indexed (migration 0004), so neither the match nor the rank parses any note's text.
        terms = SearchQuery(query, search_type="websearch", config=TEXT_SEARCH_CONFIG)
        notes = (
            notes.filter(search_vector=terms)
            .annotate(rank=SearchRank(F("search_vector"), terms))
            .order_by("-rank", _NEWEST_FIRST, "-pk")
        )
    else:
        notes = notes.filter(Q(title__icontains=query) | Q(body__icontains=query)).order_by(
            _NEWEST_FIRST, "-pk"
        )
    return notes[:NOTES_SHOWN]


def notes_version() -> str:
    """Changes whenever a note is written, edited, published, hidden or restored (each of them
    saves the note's `updated`; notes are never deleted): part of the cached search page's
    key, and of every cached answer of the notes API.

    One query of two subqueries, so that the newest `updated` is read from its index (the
    ORM's `aggregate` asks both in one SELECT, which scans every note's row: ~1.3 ms of the
    database's time on 2,000 notes, asked by every search page, cached or not)."""
    table = Note._meta.db_table
    row = sql_row(f"SELECT (SELECT COUNT(*) FROM {table}), (SELECT MAX(updated) FROM {table})")
    assert row is not None  # SELECT without FROM answers one row
    count, newest = row
    return f"{count}.{newest if newest is not None else '-'}"
