"""Moderation: reports, hiding and restoring notes and comments, and curators' unit labels.

Moderators (curators and staff) act only on what they may read.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations import selectors
from annotations.bidi import strip_bidi
from annotations.comments import comment_touch
from annotations.errors import AnnotationRefused, NotAllowed, NotVisible
from annotations.models import REASON_MAX, Comment, Note, Report
from annotations.notes import models_touch
from annotations.write_rules import clean_text, rate_limit
from neurons.models import Unit
from neurons.services import model_touch


def report_create(
    *, reporter: Any, reason: str, note: Note | None = None, comment: Comment | None = None
) -> Report:
    if not reporter.is_authenticated:
        raise NotAllowed("log in to report")
    if (note is None) == (comment is None):
        raise AnnotationRefused("a report is about one note or one comment")
    about = note if note is not None else (comment.note if comment is not None else None)
    if about is not None and not selectors.note_visible(about, reporter):
        raise NotVisible("no such note" if note is not None else "no such comment")
    rate_limit(reporter)
    text = clean_text(reason, field="reason", limit=REASON_MAX)
    return Report.objects.create(reporter=reporter, note=note, comment=comment, reason=text)


def moderation_set_hidden(
    *, moderator: Any, hidden: bool, note: Note | None = None, comment: Comment | None = None
) -> None:
    """Hide or restore a note or a comment; closes (or reopens) the reports about it."""
    target: Note | Comment | None = note if note is not None else comment
    if target is None:
        raise AnnotationRefused("nothing to moderate")
    _require_moderator_of(moderator, note=note, comment=comment)
    with transaction.atomic():
        was_public = isinstance(target, Note) and target.is_public
        target.hidden = hidden
        # A note's `updated` moves too: the cached search pages' key (`notes_version`).
        target.save(update_fields=["hidden", "updated"] if isinstance(target, Note) else ["hidden"])
        reports = target.reports.filter(
            status=Report.Status.OPEN if hidden else Report.Status.HIDDEN
        )
        reports.update(
            status=Report.Status.HIDDEN if hidden else Report.Status.OPEN,
            resolved_by=moderator if hidden else None,
            resolved=timezone.now() if hidden else None,
        )
        if isinstance(target, Note):
            if was_public or target.is_public:
                models_touch(selectors.models_of_note(target))
        else:
            comment_touch(target)


def _require_moderator_of(
    moderator: Any, *, note: Note | None = None, comment: Comment | None = None
) -> None:
    """Moderators only (403), and only of what they may read (404, as for reading it)."""
    if not selectors.is_moderator(moderator):
        raise NotAllowed("only curators and staff moderate")
    if not selectors.may_moderate(moderator, note=note, comment=comment):
        raise NotVisible("no such note" if note is not None else "no such comment")


def report_dismiss(*, moderator: Any, report: Report) -> Report:
    """Close a report without acting on its content (moderators of what it is about)."""
    if not selectors.is_moderator(moderator):
        raise NotAllowed("only curators and staff moderate")
    if not selectors.reports_moderatable_by(moderator).filter(pk=report.pk).exists():
        raise NotVisible("no such report")
    report.status = Report.Status.DISMISSED
    report.resolved_by = moderator
    report.resolved = timezone.now()
    report.save(update_fields=["status", "resolved_by", "resolved"])
    return report


def unit_label_set(*, unit: Unit, label: str, user: Any) -> Unit:
    """A curator's label for a unit (staff and curators); its pages and search show it."""
    if not selectors.is_moderator(user):
        raise NotAllowed("only curators and staff label units")
    unit.curator_label = strip_bidi(label).strip()[:200]
    unit.save(update_fields=["curator_label"])
    model_touch(unit.layer.model_id)
    return unit
