"""Writes for people, notes, comments and moderation. Views and admin call these.

Every write checks the rules itself (who may edit, what may be referenced, how often one may
post), so no caller can forget them; a refused write raises before anything is stored. Each
write that changes what a unit page shows touches the models concerned (`model_touch`), or,
for a comment on a unit, which only that unit's pages show, the unit (`unit_touch`), so the
cached pages refresh at once.
"""

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from annotations import selectors
from annotations.bidi import strip_bidi
from annotations.markdown import mentioned_usernames, render_markdown
from annotations.models import (
    COMMENT_BODY_MAX,
    NOTE_BODY_MAX,
    REASON_MAX,
    TITLE_MAX,
    Comment,
    CommentRevision,
    Institution,
    Membership,
    Mention,
    Note,
    NoteEdge,
    NoteRevision,
    NoteUnit,
    Profile,
    Report,
)
from microscope_site.errors import Refused
from microscope_site.ratelimit import hits_in_window
from neurons.models import NetworkModel, Unit
from neurons.selectors import unit_by_shorthand
from neurons.services import model_touch, unit_touch
from rendering.models import Connection

MAX_UNITS = 40
MAX_EDGES = 100
RATE_WINDOW_S = 60
MENTIONS_NOTIFIED = 20


class AnnotationRefused(Refused):
    """Bad input: nothing was stored. `field` names the form field at fault, if one is."""


class NotAllowed(AnnotationRefused):
    status = 403


class NotVisible(AnnotationRefused, Http404):
    """What the user may not read: answered 404, like the thing itself (its existence stays
    private), on every channel. An `Http404` too, so a caller that does not catch it still
    answers 404."""

    status = 404


class RateLimited(AnnotationRefused):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"you are posting too fast; try again in {retry_after} s")
        self.retry_after = retry_after


# --- people -------------------------------------------------------------------------------


def profile_for(user: Any) -> Profile:
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def user_signup(
    *,
    username: str,
    email: str,
    password: str,
    display_name: str = "",
    email_verified: bool = False,
) -> Any:
    """A new account, an ordinary user: an address at an institution's verified domain makes its
    owner a member only once confirmed through the signed link `membership` mails (typing an
    address proves nothing). `email_verified` is for addresses already known to belong to their
    owner (seed data, staff): the memberships start at once."""
    email = email.strip().lower()
    with transaction.atomic():
        user = get_user_model().objects.create_user(username, email, password)
        profile = Profile.objects.create(user=user, display_name=strip_bidi(display_name).strip())
        if email_verified:
            address_confirmed(user=user, profile=profile)
    return user


def institutions_at(email: str) -> list[Institution]:
    """The institutions whose verified domains include the domain of `email`."""
    domain = email.rpartition("@")[2].strip().lower()
    return [i for i in Institution.objects.all() if domain and domain in i.domains]


def address_confirmed(*, user: Any, profile: Profile | None = None) -> list[Institution]:
    """`user`'s present address is theirs (they followed a link sent to it): note it, and make
    them a member of the institutions at its domain. Returns the institutions joined now."""
    profile = profile or profile_for(user)
    profile.email_confirmed = user.email.strip().lower()
    joined = []
    for institution in institutions_at(profile.email_confirmed):
        _, created = Membership.objects.get_or_create(
            user=user, institution=institution, defaults={"source": Membership.Source.DOMAIN}
        )
        if created:
            joined.append(institution)
    affiliated = profile.institution is None and bool(joined)
    if affiliated:
        profile.institution = joined[0]
    profile.save()
    if affiliated:
        work_touch(user)
    return joined


def profile_update(*, user: Any, display_name: str, institution: Institution | None) -> Profile:
    if (
        institution is not None
        and not Membership.objects.filter(user=user, institution=institution).exists()
    ):
        raise NotAllowed(f"you are not a member of {institution}", field="institution")
    profile = profile_for(user)
    profile.display_name = strip_bidi(display_name).strip()
    profile.institution = institution
    profile.save()
    work_touch(user)
    return profile


def work_touch(user: Any) -> None:
    """Names and affiliations are printed beside public work on cached unit pages, and beside
    notes in cached search pages and API lists (keyed on the notes' `updated`): refresh them."""
    for model_id in _models_showing_work_of(user):
        model_touch(model_id)
    Note.objects.filter(author=user).update(updated=timezone.now())


def _models_showing_work_of(user: Any) -> set[int]:
    notes = selectors.public_notes().filter(author=user)
    from_notes = NoteUnit.objects.filter(note__in=notes).values_list(
        "unit__layer__model_id", flat=True
    )
    from_comments = Comment.objects.filter(author=user, unit__isnull=False).values_list(
        "unit__layer__model_id", flat=True
    )
    return set(from_notes) | set(from_comments)


# --- rules shared by every write -----------------------------------------------------------


def _rate_limit(user: Any) -> None:
    """At most ANNOTATIONS_POSTS_PER_MINUTE writes per user per minute (cache-based)."""
    limit = getattr(settings, "ANNOTATIONS_POSTS_PER_MINUTE", 10)
    if hits_in_window(f"annotations:posts:{user.pk}", RATE_WINDOW_S) > limit:
        raise RateLimited(retry_after=RATE_WINDOW_S)


def _require_author(user: Any, author_id: int, what: str) -> None:
    if not user.is_authenticated or user.pk != author_id:
        raise NotAllowed(f"only its author may change this {what}")


def _text(value: str, *, field: str, limit: int, required: bool = True) -> str:
    value = strip_bidi(value).replace("\r\n", "\n").strip()
    if required and not value:
        raise AnnotationRefused("this field is required", field=field)
    if len(value) > limit:
        raise AnnotationRefused(f"at most {limit:,} characters, not {len(value):,}", field=field)
    return value


# --- units and edges as written in a note --------------------------------------------------


@dataclass(frozen=True)
class UnitRef:
    unit: Unit
    role: str


@dataclass(frozen=True)
class EdgeSpec:
    source: Unit
    target: Unit
    kind: str
    strength: float | None


_EDGE = re.compile(
    r"(?P<source>\d+)\s*(?P<arrow>->|-\|)\s*(?P<target>\d+)(?:\s+(?P<strength>-?\d+(?:\.\d+)?))?"
)


def unit_label(unit: Unit) -> str:
    model = unit.layer.model
    return f"{model.slug}@{model.version}/{unit.layer.name}/{unit.index}"


def units_parse(text: str) -> list[UnitRef]:
    """One unit per line, `model[@version]/layer/index` or a shorthand such as
    `inceptionv1 4c:447`, optionally followed by `, role`. Every unit must exist."""
    refs: list[UnitRef] = []
    seen: set[int] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        raw, _, role = line.partition(",")
        raw, role = raw.strip(), role.strip()
        if not raw:
            continue
        if len(role) > 40:
            raise AnnotationRefused(
                f"line {number}: a role has at most 40 characters", field="units"
            )
        unit = unit_by_shorthand(raw)
        if unit is None:
            raise AnnotationRefused(
                f"line {number}: no unit {raw!r} (write model/layer/index, e.g. "
                "inceptionv1/mixed4c/447, or a shorthand such as inceptionv1 4c:447)",
                field="units",
            )
        if unit.pk in seen:
            raise AnnotationRefused(f"line {number}: {raw!r} is listed twice", field="units")
        seen.add(unit.pk)
        refs.append(UnitRef(unit=unit, role=role))
    if len(refs) > MAX_UNITS:
        raise AnnotationRefused(f"at most {MAX_UNITS} units per note", field="units")
    return refs


def connection_strength(source: Unit, target: Unit) -> float | None:
    """The stored weight from `source` into `target`, when the connections have it."""
    for unit, direction, other, layer_field in (
        (target, Connection.Direction.IN, source, "pair__source"),
        (source, Connection.Direction.OUT, target, "pair__target"),
    ):
        row = Connection.objects.filter(
            unit=unit, direction=direction, **{layer_field: other.layer}
        ).first()
        if row is not None and other.index in row.other_indices:
            return float(row.strengths[row.other_indices.index(other.index)])
    return None


def edge_sign_warnings(note: Note) -> list[str]:
    """The note's edges whose declared sign contradicts the stored connection between their
    units (or, where none is stored, the strength written after them): "excites" drawn with
    a negative weight says the opposite of what the numbers say."""
    warnings = []
    for edge in note.edges.select_related("source__layer", "target__layer"):
        stored = connection_strength(edge.source, edge.target)
        value, where = stored, "the stored connection"
        if stored is None:
            value, where = edge.strength, "the strength given"
        if not value:
            continue
        excites = edge.kind == NoteEdge.Kind.EXCITATORY
        if excites == (value > 0):
            continue
        source = f"{edge.source.layer.name}:{edge.source.index}"
        target = f"{edge.target.layer.name}:{edge.target.index}"
        warnings.append(
            f"{source} {'excites' if excites else 'inhibits'} {target} as written, but "
            f"{where} is {value:+.3f} ({'inhibitory' if value < 0 else 'excitatory'}): "
            "check the sign"
        )
    return warnings


def edges_parse(text: str, refs: list[UnitRef]) -> list[EdgeSpec]:
    """One edge per line between units by their line number in the units list: `1 -> 2`
    excites, `1 -| 2` inhibits; an optional number after it is the strength (otherwise the
    stored connection's, when there is one)."""
    edges: list[EdgeSpec] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _EDGE.fullmatch(line.strip())
        if match is None:
            raise AnnotationRefused(
                f"line {number}: write `1 -> 2` (excites) or `1 -| 2` (inhibits), with an "
                "optional strength after it",
                field="edges",
            )
        ends = []
        for end in ("source", "target"):
            position = int(match[end])
            if not 1 <= position <= len(refs):
                raise AnnotationRefused(
                    f"line {number}: there is no unit {position} (the note lists {len(refs)})",
                    field="edges",
                )
            ends.append(refs[position - 1].unit)
        if ends[0].pk == ends[1].pk:
            raise AnnotationRefused(f"line {number}: an edge joins two units", field="edges")
        strength = float(match["strength"]) if match["strength"] else None
        if strength is None:
            strength = connection_strength(ends[0], ends[1])
        kind = NoteEdge.Kind.EXCITATORY if match["arrow"] == "->" else NoteEdge.Kind.INHIBITORY
        edges.append(EdgeSpec(source=ends[0], target=ends[1], kind=kind, strength=strength))
    if len(edges) > MAX_EDGES:
        raise AnnotationRefused(f"at most {MAX_EDGES} edges per note", field="edges")
    return edges


def _model_of(refs: list[UnitRef]) -> NetworkModel | None:
    """The model a note's bare `layer:index` shorthands name: its first unit's."""
    return refs[0].unit.layer.model if refs else None


def _units_text(refs: list[UnitRef]) -> str:
    return "\n".join(unit_label(r.unit) + (f", {r.role}" if r.role else "") for r in refs)


def _edges_text(edges: list[EdgeSpec], refs: list[UnitRef]) -> str:
    position = {r.unit.pk: i for i, r in enumerate(refs, start=1)}
    lines = []
    for e in edges:
        arrow = "->" if e.kind == NoteEdge.Kind.EXCITATORY else "-|"
        line = f"{position[e.source.pk]} {arrow} {position[e.target.pk]}"
        lines.append(line + (f" {e.strength:g}" if e.strength is not None else ""))
    return "\n".join(lines)


# --- notes ---------------------------------------------------------------------------------


def _touch_models(model_ids: set[int]) -> None:
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
    _rate_limit(author)
    fields = _note_fields(title=title, body=body, units=units, edges=edges, visibility=visibility)
    with transaction.atomic():
        note = Note.objects.create(
            author=author,
            institution=profile_for(author).institution,
            title=fields["title"],
            body=fields["body"],
            body_html=render_markdown(fields["body"], model=_model_of(fields["refs"])),
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
    _require_author(editor, note.author_id, "note")
    _rate_limit(editor)
    fields = _note_fields(
        title=title, body=body, units=units, edges=edges, visibility=visibility or note.visibility
    )
    with transaction.atomic():
        was_public = note.is_public
        before = selectors.models_of_note(note)
        note.title = fields["title"]
        note.body = fields["body"]
        note.body_html = render_markdown(fields["body"], model=_model_of(fields["refs"]))
        note.visibility = fields["visibility"]
        note.save()
        note.note_units.all().delete()
        note.edges.all().delete()
        _note_store_parts(note, fields["refs"], fields["edges"])
        _note_revision(note, editor, fields)
        if was_public or note.is_public:
            _touch_models(before | selectors.models_of_note(note))
    return note


def note_publish(*, note: Note, user: Any) -> Note:
    _require_author(user, note.author_id, "note")
    if note.published is None:
        with transaction.atomic():
            _note_publish(note)
    return note


def _note_publish(note: Note) -> None:
    note.published = timezone.now()
    note.save(update_fields=["published", "updated"])
    if note.is_public:
        _touch_models(selectors.models_of_note(note))
    _mentions_notify(note.body, note=note, author=note.author)


def _note_fields(
    *, title: str, body: str, units: str, edges: str, visibility: str
) -> dict[str, Any]:
    if visibility not in Note.Visibility.values:
        raise AnnotationRefused(
            f"visibility is one of {', '.join(Note.Visibility.values)}", field="visibility"
        )
    fields: dict[str, Any] = {
        "title": _text(title, field="title", limit=TITLE_MAX),
        "body": _text(body, field="body", limit=NOTE_BODY_MAX),
        "visibility": visibility,
    }
    units = _text(units, field="units", limit=MAX_UNITS * 120, required=False)
    edges = _text(edges, field="edges", limit=MAX_EDGES * 40, required=False)
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
        units=_units_text(fields["refs"]),
        edges=_edges_text(fields["edges"], fields["refs"]),
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


# --- comments ------------------------------------------------------------------------------


def comment_create(
    *,
    author: Any,
    body: str,
    unit: Unit | None = None,
    note: Note | None = None,
    parent: Comment | None = None,
) -> Comment:
    """A comment on a unit or a note, or a reply (which joins its parent's thread)."""
    if not author.is_authenticated:
        raise NotAllowed("log in to comment")
    if parent is not None:
        if parent.deleted is not None or parent.hidden:
            raise AnnotationRefused("that comment was removed; reply to the thread instead")
        unit, note = parent.unit, parent.note
    if (unit is None) == (note is None):
        raise AnnotationRefused("a comment is about one unit or one note")
    if note is not None and (note.published is None and note.author_id != author.pk):
        raise NotAllowed("this note is not published")
    if note is not None and not selectors.note_visible(note, author):
        raise NotAllowed("you cannot see this note")
    _rate_limit(author)
    text = _text(body, field="body", limit=COMMENT_BODY_MAX)
    with transaction.atomic():
        comment = Comment.objects.create(
            author=author,
            unit=unit,
            note=note,
            parent=parent,
            body=text,
            body_html=render_markdown(text, model=selectors.model_written_about(unit, note)),
        )
        if unit is not None:
            unit_touch(unit.pk)
        _mentions_notify(text, comment=comment, author=author)
    return comment


def comment_update(*, comment: Comment, editor: Any, body: str) -> Comment:
    _require_author(editor, comment.author_id, "comment")
    if comment.deleted is not None:
        raise AnnotationRefused("a deleted comment cannot be edited")
    _rate_limit(editor)
    text = _text(body, field="body", limit=COMMENT_BODY_MAX)
    with transaction.atomic():
        CommentRevision.objects.create(
            comment=comment, body=comment.body, created=comment.edited or comment.created
        )
        comment.body = text
        comment.body_html = render_markdown(
            text, model=selectors.model_written_about(comment.unit, comment.note)
        )
        comment.edited = timezone.now()
        comment.save(update_fields=["body", "body_html", "edited"])
        _comment_touch(comment)
    return comment


def comment_delete(*, comment: Comment, user: Any) -> Comment:
    """Soft delete: the thread keeps a "comment deleted" line; the text stays for moderators."""
    _require_author(user, comment.author_id, "comment")
    if comment.deleted is None:
        comment.deleted = timezone.now()
        comment.save(update_fields=["deleted"])
        _comment_touch(comment)
    return comment


def _comment_touch(comment: Comment) -> None:
    if comment.unit_id is not None:
        unit_touch(comment.unit_id)


# --- mentions ------------------------------------------------------------------------------


def _mentions_notify(
    text: str, *, author: Any, note: Note | None = None, comment: Comment | None = None
) -> None:
    """Store a mention and e-mail each person `@named` in `text` who may see it."""
    names = sorted(mentioned_usernames(text))[:MENTIONS_NOTIFIED]
    if not names:
        return
    users = get_user_model().objects.filter(username__in=names).exclude(pk=author.pk)
    where = note if note is not None else comment
    assert where is not None
    seen_note = note if note is not None else (comment.note if comment is not None else None)
    for user in users:
        if seen_note is not None and not selectors.note_visible(seen_note, user):
            continue
        Mention.objects.create(user=user, note=note, comment=comment)
        if user.email:
            subject = f"{selectors.author_name(author)} mentioned you on Microscope"
            url = where.get_absolute_url()
            address = user.email
            message = f"{subject}:\n\n{text[:500]}\n\n{url}\n"
            transaction.on_commit(
                partial(send_mail, subject, message, None, [address], fail_silently=True)
            )


# --- moderation ----------------------------------------------------------------------------


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
    _rate_limit(reporter)
    text = _text(reason, field="reason", limit=REASON_MAX)
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
                _touch_models(selectors.models_of_note(target))
        else:
            _comment_touch(target)


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
