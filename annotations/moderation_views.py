"""Reports from readers and the moderators' queue (curators of any institution, and staff)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from annotations import moderation, selectors
from annotations.comment_views import comment_for
from annotations.errors import AnnotationRefused
from annotations.forms import ReportForm
from annotations.models import Comment, Note, Report
from annotations.responses import invalid, refused
from annotations.views import note_for


def _report(
    request: HttpRequest, *, note: Note | None = None, comment: Comment | None = None
) -> HttpResponse:
    template = "annotations/report_form.html"
    context = {"note": note, "comment": comment}
    if request.method != "POST":
        return render(request, template, {**context, "form": ReportForm()})
    form = ReportForm(request.POST)
    if not form.is_valid():
        return invalid(request, template, {**context, "form": form})
    try:
        moderation.report_create(
            reporter=request.user, reason=form.cleaned_data["reason"], note=note, comment=comment
        )
    except AnnotationRefused as error:
        return refused(request, error, template, context, form)
    return render(request, "annotations/reported.html", context)


@login_required
def note_report(request: HttpRequest, pk: int) -> HttpResponse:
    return _report(request, note=note_for(request, pk))


@login_required
def comment_report(request: HttpRequest, pk: int) -> HttpResponse:
    return _report(request, comment=comment_for(request, pk))


def _refuse_non_moderator(request: HttpRequest) -> HttpResponse | None:
    if selectors.is_moderator(request.user):
        return None
    error = "only curators and staff moderate"
    return render(request, "annotations/refused.html", {"error": error}, status=403)


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    if (refusal := _refuse_non_moderator(request)) is not None:
        return refusal
    status = request.GET.get("status", Report.Status.OPEN)
    if status not in Report.Status.values:
        status = Report.Status.OPEN
    # Only reports about what this moderator may read (a curator elsewhere must not read
    # another institution's notes, or the comments on them, through the queue).
    reports = (
        selectors.reports_moderatable_by(request.user)
        .filter(status=status)
        .select_related("reporter", "note__author", "comment__author", "resolved_by")[:200]
    )
    return render(
        request,
        "annotations/moderation.html",
        {"reports": reports, "status": status, "statuses": Report.Status.choices},
    )


@login_required
@require_POST
def set_hidden(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    if (refusal := _refuse_non_moderator(request)) is not None:
        return refusal
    hidden = request.POST.get("action") == "hide"
    # The service answers 404 (NotVisible is an Http404) for what this moderator may not read.
    if kind == "note":
        note = get_object_or_404(Note, pk=pk)
        moderation.moderation_set_hidden(moderator=request.user, hidden=hidden, note=note)
    elif kind == "comment":
        comment = get_object_or_404(Comment, pk=pk)
        moderation.moderation_set_hidden(moderator=request.user, hidden=hidden, comment=comment)
    else:
        raise Http404(f"nothing to moderate of kind {kind!r}")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("annotations:moderation")


@login_required
@require_POST
def report_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    if (refusal := _refuse_non_moderator(request)) is not None:
        return refusal
    # A report about what this moderator may not read is 404, like the thing itself.
    moderation.report_dismiss(moderator=request.user, report=get_object_or_404(Report, pk=pk))
    return redirect("annotations:moderation")
