"""Accounts and people: sign up, profile, a person's and an institution's public work, inbox."""

from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from annotations import selectors, services
from annotations.forms import ProfileForm, SignupForm
from annotations.models import Comment, Institution, Mention
from annotations.responses import invalid, refused


def signup(request: HttpRequest) -> HttpResponse:
    template = "registration/signup.html"
    if request.method != "POST":
        return render(request, template, {"form": SignupForm()})
    form = SignupForm(request.POST)
    if not form.is_valid():
        return invalid(request, template, {"form": form})
    user = services.user_signup(
        username=form.cleaned_data["username"],
        email=form.cleaned_data["email"],
        password=form.cleaned_data["password1"],
        display_name=form.cleaned_data["display_name"],
    )
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("annotations:profile")


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    template = "annotations/profile.html"
    current = services.profile_for(request.user)
    memberships = request.user.memberships.select_related("institution")  # type: ignore[union-attr]
    context = {"profile": current, "memberships": memberships}
    if request.method != "POST":
        initial = {"display_name": current.display_name, "institution": current.institution}
        return render(
            request, template, {**context, "form": ProfileForm(initial=initial, user=request.user)}
        )
    form = ProfileForm(request.POST, user=request.user)
    if not form.is_valid():
        return invalid(request, template, {**context, "form": form})
    try:
        services.profile_update(user=request.user, **form.cleaned_data)
    except services.AnnotationRefused as error:
        return refused(request, error, template, context, form)
    return redirect("annotations:profile")


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
    institution = get_object_or_404(Institution, slug=slug)
    notes = selectors.with_people(
        selectors.public_notes().filter(institution=institution)
    ).order_by("-published")
    context = {
        "institution": institution,
        "notes": notes,
        "members": selectors.institution_members(institution),
    }
    return render(request, "annotations/institution_detail.html", context)


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
