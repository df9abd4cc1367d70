"""Membership by proof: an address at an institution's verified domain, once its owner follows
a signed, expiring link mailed to it, or a curator's invitation mailed the same way.

Links are `django.core.signing` tokens (HMAC of SECRET_KEY, with a timestamp): tampering
breaks the signature, age past the limit expires them, and the payload names the account and
the address, so a link dies when either changes. Following one needs the account's owner
signed in: a link forwarded to (or clicked by) someone else joins nobody. Changing the address
ends the memberships the old domain gave, until the new one is confirmed.
"""

from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from annotations.bidi import strip_bidi
from annotations.errors import AnnotationRefused, NotAllowed, PostingTooFast
from annotations.models import Institution, Invitation, Membership
from annotations.people import address_confirmed, institutions_at, profile_for, work_touch
from annotations.write_rules import rate_limit
from microscope_site.ratelimit import hits_in_window

CONFIRM_SALT = "annotations.membership.confirm"
INVITE_SALT = "annotations.membership.invite"
CONFIRM_MAILS_PER_HOUR = 3


class LinkRefused(AnnotationRefused):
    """An expired, altered or spent link: nothing changed."""


def _days(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def confirm_link_days() -> int:
    return _days("ANNOTATIONS_CONFIRM_LINK_DAYS", 3)


def invite_link_days() -> int:
    return _days("ANNOTATIONS_INVITE_LINK_DAYS", 14)


def _address(email: str) -> str:
    email = strip_bidi(email).strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise AnnotationRefused(f"{email!r} is not an email address", field="email") from None
    return email


def _load(token: str, *, salt: str, days: int, what: str) -> dict[str, Any]:
    try:
        data = signing.loads(token, salt=salt, max_age=days * 86400)
    except signing.SignatureExpired:
        raise LinkRefused(
            f"this {what} link has expired (links last {days} days); ask for a new one"
        ) from None
    except signing.BadSignature:
        raise LinkRefused(
            f"this {what} link is not valid: it was altered or cut short. Open the whole link "
            "from the email, or ask for a new one"
        ) from None
    if not isinstance(data, dict):
        raise LinkRefused(f"this {what} link is not valid")
    return data


def _mail(address: str, subject: str, template: str, context: dict[str, Any]) -> None:
    """Send once the surrounding transaction commits (never for a write that rolled back)."""
    message = render_to_string(template, context)
    transaction.on_commit(partial(send_mail, subject, message, None, [address]))


# --- confirming one's address ------------------------------------------------------------


def pending_institutions(user: Any) -> list[Institution]:
    """The institutions `user` joins once they confirm their present address."""
    if not user.is_authenticated or not user.email:
        return []
    if profile_for(user).email_confirmed == user.email.lower():
        return []
    joined = set(Membership.objects.filter(user=user).values_list("institution_id", flat=True))
    return [i for i in institutions_at(user.email) if i.pk not in joined]


def email_confirmation_send(*, user: Any, site: str) -> None:
    """Mail `user` a link that confirms their present address (`site`: scheme and host).
    At most CONFIRM_MAILS_PER_HOUR an hour, sign-up's included."""
    if not user.is_authenticated:
        raise NotAllowed("log in to confirm your address")
    if not user.email:
        raise AnnotationRefused("your account has no address to confirm", field="email")
    if hits_in_window(f"annotations:confirm-mail:{user.pk}", 3600) > CONFIRM_MAILS_PER_HOUR:
        raise PostingTooFast(retry_after=3600, message="too many confirmation mails this hour")
    email = user.email.lower()
    token = signing.dumps({"user": user.pk, "email": email}, salt=CONFIRM_SALT)
    context = {
        "user": user,
        "email": email,
        "url": site + reverse("annotations:email-confirm", kwargs={"token": token}),
        "days": confirm_link_days(),
        "institutions": institutions_at(email),
    }
    _mail(
        email, "Confirm your address on Microscope", "registration/email_confirm_email.txt", context
    )


def email_confirmation_check(*, user: Any, token: str) -> str:
    """The address the link confirms for `user`, or LinkRefused/NotAllowed saying why not."""
    data = _load(token, salt=CONFIRM_SALT, days=confirm_link_days(), what="confirmation")
    if not user.is_authenticated or data.get("user") != user.pk:
        raise NotAllowed(
            "this confirmation link is for another account: log in as the account that asked for it"
        )
    if data.get("email") != user.email.lower():
        raise LinkRefused(
            f"this link confirms {data.get('email')}, no longer your address ({user.email}); "
            "send a new link from your profile"
        )
    return str(data["email"])


def email_confirm(*, user: Any, token: str) -> list[Institution]:
    """Follow a confirmation link: the address is confirmed and its domain's institutions
    joined. Returns the institutions joined now."""
    email_confirmation_check(user=user, token=token)
    with transaction.atomic():
        return address_confirmed(user=user)


def email_change(*, user: Any, email: str, site: str) -> None:
    """A new address for `user`: memberships by the old domain end at once (`user_email_watch`)
    and a confirmation link goes to the new one."""
    email = _address(email)
    if email == user.email.lower():
        raise AnnotationRefused("this is your address already", field="email")
    if get_user_model().objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
        raise AnnotationRefused("another account has this address", field="email")
    with transaction.atomic():
        user.email = email
        user.save(update_fields=["email"])
        email_confirmation_send(user=user, site=site)


def user_email_watch(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """`pre_save` of the user model, whatever saves it (profile, admin, API, shell): a changed
    address ends the memberships its old domain gave, until the new one is confirmed."""
    if instance.pk is None or (update_fields is not None and "email" not in update_fields):
        return
    before = type(instance).objects.filter(pk=instance.pk).values_list("email", flat=True).first()
    if before is None or before.lower() == (instance.email or "").lower():
        return
    profile = profile_for(instance)
    dropped = Membership.objects.filter(user_id=instance.pk, source=Membership.Source.DOMAIN)
    dropped_ids = set(dropped.values_list("institution_id", flat=True))
    dropped.delete()
    profile.email_confirmed = ""
    if profile.institution_id in dropped_ids:
        profile.institution = None
    profile.save()
    if dropped_ids:
        work_touch(instance)


# --- invitations ---------------------------------------------------------------------------


def may_invite(user: Any, institution: Institution) -> bool:
    """Curators of `institution`, and staff."""
    if not user.is_authenticated:
        return False
    return (
        bool(getattr(user, "is_staff", False))
        or Membership.objects.filter(
            user_id=user.pk, institution=institution, role=Membership.Role.CURATOR
        ).exists()
    )


def invitation_create(
    *, institution: Institution, email: str, invited_by: Any, site: str
) -> Invitation:
    """A curator invites a person by address: a signed link goes to it."""
    if not may_invite(invited_by, institution):
        raise NotAllowed(f"only curators of {institution} invite people to it")
    email = _address(email)
    rate_limit(invited_by)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            institution=institution, email=email, invited_by=invited_by
        )
        token = signing.dumps({"invitation": invitation.pk, "email": email}, salt=INVITE_SALT)
        context = {
            "invitation": invitation,
            "url": site + reverse("annotations:invitation", kwargs={"token": token}),
            "days": invite_link_days(),
        }
        _mail(
            email, f"Join {institution} on Microscope", "annotations/invitation_email.txt", context
        )
    return invitation


def invitation_check(*, token: str) -> Invitation:
    """The invitation a link names, or LinkRefused (expired, altered, already accepted)."""
    data = _load(token, salt=INVITE_SALT, days=invite_link_days(), what="invitation")
    pk, email = data.get("invitation"), data.get("email")
    invitation = (
        Invitation.objects.select_related("institution", "invited_by")
        .filter(pk=pk, email=email)
        .first()
        if isinstance(pk, int) and isinstance(email, str)
        else None
    )
    if invitation is None:
        raise LinkRefused("this invitation no longer exists")
    if invitation.accepted is not None:
        raise LinkRefused(f"this invitation to {invitation.institution} was already accepted")
    return invitation


def invitation_accept(*, user: Any, token: str) -> Membership:
    """Accept, signed in with the invited address: a member (the link, mailed to that address,
    confirms it too)."""
    invitation = invitation_check(token=token)
    if not user.is_authenticated:
        raise NotAllowed("log in to accept an invitation")
    if user.email.lower() != invitation.email:
        raise NotAllowed(
            f"this invitation is for {invitation.email}; you are signed in with "
            f"{user.email or 'no address'}. Sign in with that address to accept it"
        )
    with transaction.atomic():
        membership, _ = Membership.objects.get_or_create(
            user=user,
            institution=invitation.institution,
            defaults={"source": Membership.Source.INVITATION},
        )
        invitation.accepted = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted", "accepted_by"])
        address_confirmed(user=user)
        profile = profile_for(user)
        if profile.institution_id is None:
            profile.institution = invitation.institution
            profile.save(update_fields=["institution"])
            work_touch(user)
    return membership
