"""People: accounts, profiles and the institutions an address makes its owner a member of.

Names and affiliations are printed beside public work on cached pages, so a change to them
refreshes those pages (`work_touch`).
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotations import selectors
from annotations.bidi import strip_bidi
from annotations.errors import NotAllowed
from annotations.models import Comment, Institution, Membership, Note, NoteUnit, Profile
from neurons.services import model_touch


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
