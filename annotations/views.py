"""Note pages: index, detail with circuit and comments, write, edit, publish, history, cite."""

import difflib
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from annotations import notes, selectors
from annotations.citations import note_citation
from annotations.diagram import circuit_svg
from annotations.errors import AnnotationRefused
from annotations.forms import CommentForm, NoteForm
from annotations.markdown import removed_parts, render_markdown
from annotations.models import Note, NoteRevision
from annotations.note_units import edge_sign_warnings, unit_label
from annotations.responses import invalid, refused
from neurons.citations import jsonld_script
from neurons.models import Unit

NOTES_PER_PAGE = 50


def note_for(request: HttpRequest, pk: int) -> Note:
    """The note, or 404 when this visitor may not see it (its existence stays private)."""
    note = get_object_or_404(
        Note.objects.select_related("author__profile__institution", "institution"), pk=pk
    )
    if not selectors.note_visible(note, request.user):
        raise Http404("No such note")
    return note


def note_list(request: HttpRequest) -> HttpResponse:
    notes = selectors.with_people(selectors.notes_visible_to(request.user))
    filters = {key: request.GET.get(key, "").strip() for key in ("model", "author", "institution")}
    if filters["model"]:
        notes = notes.filter(note_units__unit__layer__model__slug=filters["model"])
    if filters["author"]:
        notes = notes.filter(author__username=filters["author"])
    if filters["institution"]:
        notes = notes.filter(institution__slug=filters["institution"])
    notes = notes.filter(published__isnull=False).distinct().order_by("-published", "-pk")
    page = Paginator(notes, NOTES_PER_PAGE).get_page(request.GET.get("page"))
    drafts = (
        Note.objects.filter(author_id=request.user.pk, published__isnull=True).order_by("-updated")
        if request.user.is_authenticated
        else Note.objects.none()
    )
    context = {"page": page, "filters": filters, "drafts": drafts}
    return render(request, "annotations/note_list.html", context)


def _cite(request: HttpRequest, revision: NoteRevision) -> dict[str, Any]:
    url = request.build_absolute_uri(revision.get_absolute_url())
    citation = note_citation(revision, url=url, accessed=timezone.now().date())
    return {**citation, "jsonld_script": jsonld_script(citation["jsonld"])}


def note_detail(request: HttpRequest, pk: int) -> HttpResponse:
    note = note_for(request, pk)
    parts = selectors.note_units(note)
    edges = list(note.edges.select_related("source__layer", "target__layer"))
    revision = note.revisions.order_by("-number").select_related("note__author__profile").first()
    assert revision is not None
    thread = selectors.flatten(selectors.comment_thread(note.comments.all()))
    context = {
        "note": note,
        "note_units": parts,
        "edges": edges,
        "svg": circuit_svg(parts, edges),
        "revision": revision,
        "thread": thread,
        "comment_form": CommentForm(),
        "is_author": note.author_id == request.user.pk,
        "is_moderator": selectors.is_moderator(request.user),
        "cite": _cite(request, revision),
        "edge_warnings": edge_sign_warnings(note),
    }
    return render(request, "annotations/note_detail.html", context)


def saved_with_warnings(request: HttpRequest, body: str, note: Note | None = None) -> None:
    """Tell the author what the page will not show of what they wrote, and which edges
    contradict the stored connections (the note page lists them)."""
    for part in removed_parts(body):
        messages.warning(request, f"Not shown: {part}.")
    if note is not None and (count := len(edge_sign_warnings(note))):
        messages.warning(
            request,
            f"Saved, but {count} edge{'s' if count > 1 else ''} contradict"
            f"{'' if count > 1 else 's'} the stored connections: see below.",
        )


def note_revision(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """One revision as it was written: the URL citations name; never changes."""
    note = note_for(request, pk)
    revision = get_object_or_404(note.revisions.select_related("author__profile"), number=number)
    context = {
        "note": note,
        "revision": revision,
        "body_html": render_markdown(
            revision.body, model=selectors.model_written_about(None, note)
        ),
        "cite": _cite(request, revision),
    }
    return render(request, "annotations/note_revision.html", context)


def note_short_link(request: HttpRequest, pk: int) -> HttpResponse:
    note = note_for(request, pk)
    return redirect(note.get_absolute_url(), permanent=True)


def note_cite_json(request: HttpRequest, pk: int) -> JsonResponse:
    note = note_for(request, pk)
    revision = note.revisions.order_by("-number").first()
    assert revision is not None
    csl = _cite(request, revision)["csl"]
    response = JsonResponse([csl], safe=False, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{csl["id"]}.json"'
    return response


def _diff(old: NoteRevision, new: NoteRevision) -> list[tuple[str, str]]:
    """Unified diff lines with their kind (add, del, hunk, same) for the template to colour."""

    def text(r: NoteRevision) -> list[str]:
        return [
            f"title: {r.title}",
            f"visibility: {r.visibility}",
            "",
            *r.body.splitlines(),
            "",
            "units:",
            *r.units.splitlines(),
            "edges:",
            *r.edges.splitlines(),
        ]

    lines = difflib.unified_diff(
        text(old), text(new), f"revision {old.number}", f"revision {new.number}", lineterm=""
    )
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [(kinds.get(line[:1], "same"), line) for line in lines]


def note_history(request: HttpRequest, pk: int) -> HttpResponse:
    note = note_for(request, pk)
    revisions = list(note.revisions.select_related("author__profile").order_by("-number"))
    numbers = {r.number: r for r in revisions}
    newest = revisions[0].number
    try:
        to = int(request.GET.get("to", newest))
        since = int(request.GET.get("from", max(to - 1, 1)))
    except ValueError:
        return render(
            request,
            "annotations/note_history.html",
            {"note": note, "revisions": revisions, "error": "from and to are revision numbers"},
            status=400,
        )
    asked = "from" in request.GET or "to" in request.GET
    if asked and (since not in numbers or to not in numbers):
        raise Http404("No such revision")
    diff = None
    if since in numbers and to in numbers and since != to:
        diff = _diff(numbers[since], numbers[to])
    context = {"note": note, "revisions": revisions, "diff": diff, "since": since, "to": to}
    return render(request, "annotations/note_history.html", context)


def _initial_units(request: HttpRequest) -> str:
    unit_id = request.GET.get("unit", "")
    if not unit_id.isdigit():
        return ""
    unit = Unit.objects.filter(pk=int(unit_id)).select_related("layer__model").first()
    return unit_label(unit) if unit is not None else ""


@login_required
def note_create(request: HttpRequest) -> HttpResponse:
    template = "annotations/note_form.html"
    if request.method != "POST":
        form = NoteForm(initial={"units": _initial_units(request)})
        return render(request, template, {"form": form})
    form = NoteForm(request.POST)
    if not form.is_valid():
        return invalid(request, template, {"form": form})
    try:
        note = notes.note_create(
            author=request.user, **form.cleaned_data, publish="publish" in request.POST
        )
    except AnnotationRefused as error:
        return refused(request, error, template, {}, form)
    saved_with_warnings(request, note.body, note)
    return redirect(note)


@login_required
def note_edit(request: HttpRequest, pk: int) -> HttpResponse:
    note = note_for(request, pk)
    if note.author_id != request.user.pk:
        return render(
            request,
            "annotations/refused.html",
            {"error": "only its author edits a note"},
            status=403,
        )
    template = "annotations/note_form.html"
    if request.method != "POST":
        form = NoteForm(initial=notes.note_editable_fields(note))
        return render(request, template, {"form": form, "note": note})
    form = NoteForm(request.POST)
    if not form.is_valid():
        return invalid(request, template, {"form": form, "note": note})
    try:
        notes.note_update(note=note, editor=request.user, **form.cleaned_data)
        if "publish" in request.POST:
            notes.note_publish(note=note, user=request.user)
    except AnnotationRefused as error:
        return refused(request, error, template, {"note": note}, form)
    saved_with_warnings(request, note.body, note)
    return redirect(note)


@login_required
@require_POST
def note_publish(request: HttpRequest, pk: int) -> HttpResponse:
    note = note_for(request, pk)
    try:
        notes.note_publish(note=note, user=request.user)
    except AnnotationRefused as error:
        return render(request, "annotations/refused.html", {"error": error}, status=error.status)
    return redirect(note)
