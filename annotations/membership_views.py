"""Confirming one's address and accepting an invitation: the pages the mailed links open.
Following a link shows a button; the POST does it (mail scanners
that open links change nothing)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotations import membership
from annotations.errors import AnnotationRefused

LINK_REFUSED = "registration/link_refused.html"


def site_of(request: HttpRequest) -> str:
    """`scheme://host` of this request, for links in mail."""
    return request.build_absolute_uri("/").rstrip("/")


def _link_refused(request: HttpRequest, error: AnnotationRefused) -> HttpResponse:
    return render(request, LINK_REFUSED, {"error": str(error)}, status=error.status)


@login_required
def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    template = "registration/email_confirm.html"
    try:
        if request.method == "POST":
            joined = membership.email_confirm(user=request.user, token=token)
            return render(request, template, {"confirmed": True, "joined": joined})
        email = membership.email_confirmation_check(user=request.user, token=token)
    except AnnotationRefused as error:
        return _link_refused(request, error)
    return render(request, template, {"email": email})


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    try:
        found = membership.invitation_check(token=token)
        if request.method == "POST":
            if not request.user.is_authenticated:
                return redirect(request.path)
            joined = membership.invitation_accept(user=request.user, token=token)
            messages.success(request, f"You are a member of {joined.institution}.")
            return redirect(joined.institution)
    except AnnotationRefused as error:
        return _link_refused(request, error)
    context = {
        "invitation": found,
        "addressed_to_you": request.user.is_authenticated
        and request.user.email.lower() == found.email,  # type: ignore[union-attr]
    }
    return render(request, "annotations/invitation.html", context)
