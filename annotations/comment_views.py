"""Comment pages: a unit's discussion, comment on a note, reply, edit, delete, history."""

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotations import comments, selectors
from annotations.errors import AnnotationRefused
from annotations.forms import CommentForm
from annotations.markdown import render_markdown
from annotations.models import Comment
from annotations.responses import invalid, refused
from annotations.views import note_for, saved_with_warnings
from neurons.models import Unit


def comment_for(request: HttpRequest, pk: int) -> Comment:
    """The comment, or 404 when this visitor may not see the note it belongs to."""
    comment = get_object_or_404(
        Comment.objects.select_related("author__profile__institution", "unit__layer__model"),
        pk=pk,
    )
    if comment.note_id is not None:
        note_for(request, comment.note_id)
    return comment


def unit_discussion(request: HttpRequest, unit_id: int) -> HttpResponse:
    """A unit's comment thread with the forms (the cached unit page links here)."""
    unit = get_object_or_404(Unit.objects.select_related("layer__model"), pk=unit_id)
    template = "annotations/unit_discussion.html"
    notes = selectors.with_people(
        selectors.notes_visible_to(request.user).filter(
            note_units__unit=unit, published__isnull=False
        )
    ).order_by("-published")
    context = {
        "unit": unit,
        "notes": notes,
        "thread": selectors.flatten(selectors.comment_thread(Comment.objects.filter(unit=unit))),
        "is_moderator": selectors.is_moderator(request.user),
    }
    if request.method != "POST":
        return render(request, template, {**context, "form": CommentForm()})
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    form = CommentForm(request.POST)
    if not form.is_valid():
        return invalid(request, template, {**context, "form": form})
    try:
        comment = comments.comment_create(
            author=request.user, body=form.cleaned_data["body"], unit=unit
        )
    except AnnotationRefused as error:
        return refused(request, error, template, context, form)
    saved_with_warnings(request, comment.body)
    return redirect(comment.get_absolute_url())


@login_required
@require_POST
def note_comment(request: HttpRequest, pk: int) -> HttpResponse:
    note = note_for(request, pk)
    form = CommentForm(request.POST)
    template = "annotations/comment_form.html"
    context = {"target": note, "action": "Comment on"}
    if not form.is_valid():
        return invalid(request, template, {**context, "form": form})
    try:
        comment = comments.comment_create(
            author=request.user, body=form.cleaned_data["body"], note=note
        )
    except AnnotationRefused as error:
        return refused(request, error, template, context, form)
    saved_with_warnings(request, comment.body)
    return redirect(comment.get_absolute_url())


@login_required
def comment_reply(request: HttpRequest, pk: int) -> HttpResponse:
    parent = comment_for(request, pk)
    template = "annotations/comment_form.html"
    context = {"parent": parent, "action": "Reply to"}
    if request.method != "POST":
        return render(request, template, {**context, "form": CommentForm()})
    form = CommentForm(request.POST)
    if not form.is_valid():
        return invalid(request, template, {**context, "form": form})
    try:
        comment = comments.comment_create(
            author=request.user, body=form.cleaned_data["body"], parent=parent
        )
    except AnnotationRefused as error:
        return refused(request, error, template, context, form)
    saved_with_warnings(request, comment.body)
    return redirect(comment.get_absolute_url())


@login_required
def comment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    comment = comment_for(request, pk)
    template = "annotations/comment_form.html"
    context = {"editing": comment, "action": "Edit"}
    if comment.author_id != request.user.pk:
        return render(
            request,
            "annotations/refused.html",
            {"error": "only its author edits a comment"},
            status=403,
        )
    if request.method != "POST":
        return render(
            request, template, {**context, "form": CommentForm(initial={"body": comment.body})}
        )
    form = CommentForm(request.POST)
    if not form.is_valid():
        return invalid(request, template, {**context, "form": form})
    try:
        comments.comment_update(
            comment=comment, editor=request.user, body=form.cleaned_data["body"]
        )
    except AnnotationRefused as error:
        return refused(request, error, template, context, form)
    saved_with_warnings(request, comment.body)
    return redirect(comment.get_absolute_url())


@login_required
@require_POST
def comment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    comment = comment_for(request, pk)
    try:
        comments.comment_delete(comment=comment, user=request.user)
    except AnnotationRefused as error:
        return render(request, "annotations/refused.html", {"error": error}, status=error.status)
    return redirect(comment.get_absolute_url())


def comment_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Earlier bodies of a comment. A removed comment's text is for its author and moderators."""
    comment = comment_for(request, pk)
    if not comment.shown and not (
        comment.author_id == request.user.pk or selectors.is_moderator(request.user)
    ):
        raise Http404("No such comment")
    model = selectors.model_written_about(comment.unit, comment.note)
    revisions = [
        (r, render_markdown(r.body, model=model)) for r in comment.revisions.order_by("-created")
    ]
    return render(
        request, "annotations/comment_history.html", {"comment": comment, "revisions": revisions}
    )
