"""Accounts and people: sign up, profile, a person's and an institution's public work, inbox."""

from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from annotations import membership, selectors
from annotations.errors import AnnotationRefused
from annotations.forms import EmailForm, ProfileForm, SignupForm
from annotations.membership_views import site_of
from annotations.models import ApiToken, Comment, Institution, Mention
from annotations.people import profile_for, profile_update, user_signup
from annotations.responses import invalid, refused
from annotations.tokens import TokenRefused, token_create, token_revoke, tokens_of
from microscope_site.errors import RateLimited

MAX_EXPIRY_DAYS = 3650


def signup(request: HttpRequest) -> HttpResponse:
    """A new account, signed in at once as an ordinary user; a link to confirm the address
    goes to it (confirming joins the institutions at its domain)."""
    template = "registration/signup.html"
    back = request.POST.get("next", request.GET.get("next", ""))
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    if request.method != "POST":
        return render(request, template, {"form": SignupForm(), "next": back})
    form = SignupForm(request.POST)
    if not form.is_valid():
        return invalid(request, template, {"form": form, "next": back})
    with transaction.atomic():
        user = user_signup(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            display_name=form.cleaned_data["display_name"],
        )
        membership.email_confirmation_send(user=user, site=site_of(request))
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect(back or "annotations:profile")


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """The profile form, and the user's API tokens: listed, made (the secret is shown on this
    answer only) and revoked."""
    template = "annotations/profile.html"
    current = profile_for(request.user)
    memberships = request.user.memberships.select_related("institution")  # type: ignore[union-attr]
    context: dict[str, Any] = {
        "profile": current,
        "memberships": memberships,
        "tokens": tokens_of(request.user).order_by("-created", "-pk"),
        "scopes": ApiToken.Scope.choices,
        "pending": membership.pending_institutions(request.user),
        "email_form": EmailForm(),
    }
    initial = {"display_name": current.display_name, "institution": current.institution}
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action in {"confirm-resend", "email-change"}:
        context["form"] = ProfileForm(initial=initial, user=request.user)
        return _address_action(request, action, template, context)
    if action in {"token-create", "token-revoke"}:
        context["form"] = ProfileForm(initial=initial, user=request.user)
        if action == "token-revoke":
            pk = request.POST.get("token", "")
            if not pk.isdigit():
                raise Http404("no such token")
            token = get_object_or_404(tokens_of(request.user), pk=int(pk))
            token_revoke(token=token, user=request.user)
            return redirect("annotations:profile")
        try:
            token, secret = token_create(
                user=request.user,
                name=request.POST.get("name", ""),
                scope=request.POST.get("scope", ApiToken.Scope.READ),
                expires=_expiry(request.POST.get("expires_days", "")),
            )
        except TokenRefused as error:
            context["token_error"] = str(error)
            return render(request, template, context, status=400)
        context["new_token"], context["new_secret"] = token, secret
        response = render(request, template, context)
        response["Cache-Control"] = "no-store"  # the secret must not be kept anywhere
        return response
    if request.method != "POST":
        return render(
            request, template, {**context, "form": ProfileForm(initial=initial, user=request.user)}
        )
    form = ProfileForm(request.POST, user=request.user)
    if not form.is_valid():
        return invalid(request, template, {**context, "form": form})
    try:
        profile_update(user=request.user, **form.cleaned_data)
    except AnnotationRefused as error:
        return refused(request, error, template, context, form)
    return redirect("annotations:profile")


def _address_action(
    request: HttpRequest, action: str, template: str, context: dict[str, Any]
) -> HttpResponse:
    """Send a new confirmation link, or change the address (which sends one to it)."""
    user: Any = request.user
    try:
        if action == "confirm-resend":
            membership.email_confirmation_send(user=user, site=site_of(request))
        else:
            form = EmailForm(request.POST)
            if not form.is_valid():
                return invalid(request, template, {**context, "email_form": form})
            membership.email_change(
                user=user, email=form.cleaned_data["email"], site=site_of(request)
            )
    except AnnotationRefused as error:
        response = render(
            request, template, {**context, "address_error": str(error)}, status=error.status
        )
        if isinstance(error, RateLimited):
            response["Retry-After"] = str(error.retry_after)
        return response
    messages.success(request, f"A confirmation link is on its way to {user.email}.")
    return redirect("annotations:profile")


def _expiry(days: str) -> datetime | None:
    """The expiry `days` from now (blank: never), or TokenRefused."""
    days = days.strip()
    if not days:
        return None
    if not days.isdigit() or not 1 <= int(days) <= MAX_EXPIRY_DAYS:
        raise TokenRefused(f"the expiry is a number of days from 1 to {MAX_EXPIRY_DAYS}")
    return timezone.now() + timedelta(days=int(days))


def person(request: HttpRequest, username: str) -> HttpResponse:
    user = get_object_or_404(
        get_user_model().objects.select_related("profile__institution"), username=username
    )
    notes = selectors.with_people(selectors.public_notes().filter(author=user)).order_by(
        "-published"
    )
    context = {
        "person": user,
        "name": selectors.author_name(user),
        "notes": notes,
        "comments": selectors.public_comments_by(user)[:50],
    }
    return render(request, "annotations/person.html", context)


def institution_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "annotations/institution_list.html", {"institutions": Institution.objects.all()}
    )


def institution_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """An institution's public work and members; its curators (and staff) invite people here."""
    institution = get_object_or_404(Institution, slug=slug)
    notes = selectors.with_people(
        selectors.public_notes().filter(institution=institution)
    ).order_by("-published")
    context: dict[str, Any] = {
        "institution": institution,
        "notes": notes,
        "members": selectors.institution_members(institution),
        "may_invite": membership.may_invite(request.user, institution),
    }
    template = "annotations/institution_detail.html"
    if request.method != "POST":
        return render(request, template, context)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    email = request.POST.get("email", "")
    try:
        membership.invitation_create(
            institution=institution, email=email, invited_by=request.user, site=site_of(request)
        )
    except AnnotationRefused as error:
        context.update(invite_error=str(error), invite_email=email)
        return render(request, template, context, status=error.status)
    messages.success(request, f"Invitation sent to {email.strip().lower()}.")
    return redirect(institution)


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """Where I was mentioned, and the replies to my comments and on my notes."""
    user = int(request.user.pk or 0)
    mentions = Mention.objects.filter(user_id=user).select_related(
        "note", "comment__author__profile", "comment__unit__layer__model"
    )[:100]
    replies = (
        Comment.objects.filter(
            Q(parent__author_id=user) | Q(note__author_id=user, parent__isnull=True)
        )
        .exclude(author_id=user)
        .filter(deleted__isnull=True, hidden=False)
        .select_related("author__profile", "note", "unit__layer__model")
        .order_by("-created")[:100]
    )
    return render(request, "annotations/inbox.html", {"mentions": mentions, "replies": replies})
