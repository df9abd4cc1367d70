"""Membership needs proof: an address at a verified domain counts only once its owner follows
the signed, expiring link mailed to it; a changed address ends what the old one gave; curators
invite people by address."""

import re
import time
from typing import Any

import pytest
from django.core import mail, signing
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

SIGNUP = {
    "username": "carla",
    "email": "Carla@ETHZ.ch",
    "display_name": "Carla C.",
    "password1": "long-enough-pw-1",
    "password2": "long-enough-pw-1",
}


def _link(message: Any, path: str) -> str:
    found = re.search(rf"https?://[^\s]+{path}[^\s]+/", message.body)
    assert found is not None, message.body
    return found.group(0).split("testserver", 1)[1]


@pytest.fixture
def carla(
    institutions: dict[str, Any], fast_passwords: None, django_capture_on_commit_callbacks: Any
) -> Client:
    """carla signed up (and signed in) with an address at ETH's domain; not yet confirmed."""
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("annotations:signup"), SIGNUP).status_code == 302
    return client


def test_signing_up_at_a_verified_domain_joins_only_after_confirming(
    carla: Client, make_note: Any
) -> None:
    from annotations.models import Membership

    eth_note = make_note(author="bea", title="ETH-only note", visibility="institution")
    assert not Membership.objects.filter(user__username="carla").exists()
    assert carla.get(eth_note.get_absolute_url()).status_code == 404
    profile = carla.get(reverse("annotations:profile")).content.decode()
    assert "Confirm your address to join" in profile and "ETH Zürich" in profile
    assert "Send a new link" in profile
    (message,) = mail.outbox
    assert message.to == ["carla@ethz.ch"] and "member of ETH Zürich" in message.body
    link = _link(message, "/accounts/confirm/")

    page = carla.get(link)  # opening it changes nothing (mail scanners open links)
    assert page.status_code == 200 and "carla@ethz.ch" in page.content.decode()
    assert not Membership.objects.filter(user__username="carla").exists()
    done = carla.post(link)
    assert done.status_code == 200
    assert "You are now a member of" in done.content.decode()
    membership = Membership.objects.get(user__username="carla")
    assert (membership.institution.slug, membership.role, membership.source) == (
        "eth",
        "member",
        "domain",
    )
    assert membership.user.profile.institution == membership.institution
    assert membership.user.profile.email_confirmed == "carla@ethz.ch"
    assert carla.get(eth_note.get_absolute_url()).status_code == 200
    assert "Confirm your address" not in carla.get(reverse("annotations:profile")).content.decode()


def test_a_confirmation_link_works_only_for_its_account_while_valid(
    carla: Client, clients: dict[str, Client], django_user_model: Any
) -> None:
    from annotations.membership import CONFIRM_SALT
    from annotations.models import Membership

    link = _link(mail.outbox[0], "/accounts/confirm/")
    token = link.rstrip("/").rsplit("/", 1)[1]
    # Someone else signed in (a forwarded link): refused, nobody joins.
    other = clients["sam"].post(link)
    assert other.status_code == 403 and "for another account" in other.content.decode()
    assert not Membership.objects.filter(user__username__in=["carla", "sam"]).exists()
    # Signed out: log in first.
    anon = clients["anon"].get(link)
    assert anon.status_code == 302 and anon["Location"].startswith(reverse("login"))
    # Altered: a clear page, 400.
    altered = link.replace(token, token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"))
    page = carla.post(altered)
    assert page.status_code == 400
    assert "altered or cut short" in page.content.decode()
    # Expired: signed four days ago, links last three.
    user = django_user_model.objects.get(username="carla")

    class FourDaysAgo(signing.TimestampSigner):
        def timestamp(self) -> str:
            return signing.b62_encode(int(time.time()) - 4 * 86400)

    old = FourDaysAgo(salt=CONFIRM_SALT).sign_object({"user": user.pk, "email": user.email})
    page = carla.post(reverse("annotations:email-confirm", kwargs={"token": old}))
    assert page.status_code == 400
    assert "has expired (links last 3 days)" in page.content.decode()
    assert not Membership.objects.filter(user=user).exists()
    assert carla.post(link).status_code == 200  # the real one still works
    assert Membership.objects.filter(user=user).count() == 1


def test_a_new_link_is_rate_limited(carla: Client, django_capture_on_commit_callbacks: Any) -> None:
    profile = reverse("annotations:profile")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):  # sign-up's mail was the first of three an hour
            assert carla.post(profile, {"action": "confirm-resend"}).status_code == 302
        refused = carla.post(profile, {"action": "confirm-resend"})
    assert refused.status_code == 429 and refused["Retry-After"] == "3600"
    assert "too many confirmation mails this hour; try again in 3600 s" in refused.content.decode()
    assert len(mail.outbox) == 3
    assert {m.to[0] for m in mail.outbox} == {"carla@ethz.ch"}


def test_changing_the_address_ends_the_old_domain_memberships_until_confirmed(
    clients: dict[str, Client],
    people: dict[str, Any],
    make_note: Any,
    institutions: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    from annotations.models import Membership

    mit_note = make_note(title="MIT-only note", visibility="institution")
    eth_note = make_note(author="bea", title="ETH-only note", visibility="institution")
    alice = clients["alice"]
    assert alice.get(mit_note.get_absolute_url()).status_code == 200
    # An invitation's membership is not the domain's: it stays.
    Membership.objects.create(
        user=people["alice"], institution=institutions["eth"], source="invitation"
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = alice.post(
            reverse("annotations:profile"), {"action": "email-change", "email": "alice@ETHZ.ch"}
        )
    assert answer.status_code == 302
    people["alice"].refresh_from_db()
    assert people["alice"].email == "alice@ethz.ch"
    assert [m.institution.slug for m in Membership.objects.filter(user=people["alice"])] == ["eth"]
    assert people["alice"].profile.institution is None  # MIT was her affiliation
    assert people["alice"].profile.email_confirmed == ""
    assert alice.get(mit_note.get_absolute_url()).status_code == 200  # her own note
    amir_note = make_note(author="amir", title="Amir MIT-only", visibility="institution")
    assert alice.get(amir_note.get_absolute_url()).status_code == 404
    (message,) = mail.outbox
    assert message.to == ["alice@ethz.ch"]
    assert alice.post(_link(message, "/accounts/confirm/")).status_code == 200
    assert alice.get(eth_note.get_absolute_url()).status_code == 200
    # A link for the old address dies with it.
    people["alice"].email = "alice@mit.edu"
    people["alice"].save()  # any channel (admin, shell): the same rule
    assert not Membership.objects.filter(user=people["alice"], source="domain").exists()
    assert alice.post(_link(message, "/accounts/confirm/")).status_code == 400


def test_an_address_in_use_or_malformed_is_refused(clients: dict[str, Client]) -> None:
    profile = reverse("annotations:profile")
    taken = clients["alice"].post(profile, {"action": "email-change", "email": "bea@ethz.ch"})
    assert taken.status_code == 400 and "another account has this address" in taken.content.decode()
    bad = clients["alice"].post(profile, {"action": "email-change", "email": "not-an-address"})
    assert bad.status_code == 400 and "Enter a valid email address" in bad.content.decode()


def test_curators_invite_by_address_and_the_owner_of_it_accepts(
    clients: dict[str, Client],
    people: dict[str, Any],
    make_note: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from annotations.models import Invitation, Membership

    eth = reverse("annotations:institution", kwargs={"slug": "eth"})
    assert "Send invitation" in clients["bruno"].get(eth).content.decode()
    assert "Send invitation" not in clients["bea"].get(eth).content.decode()
    refused = clients["bea"].post(eth, {"email": "sam@example.org"})  # a member, not a curator
    assert refused.status_code == 403 and "only curators of ETH Zürich" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        sent = clients["bruno"].post(eth, {"email": "Sam@Example.org"}, follow=True)
    assert "Invitation sent to sam@example.org" in sent.content.decode()
    (message,) = mail.outbox
    assert message.to == ["sam@example.org"] and "join ETH Zürich" in message.body
    link = _link(message, "/invitations/")

    anon = clients["anon"].get(link).content.decode()
    assert "Log in" in anon and "sign up" in anon and "sam@example.org" in anon
    wrong = clients["amir"].get(link).content.decode()
    assert "this invitation is for sam@example.org" in wrong and "Accept" not in wrong
    assert clients["amir"].post(link).status_code == 403
    page = clients["sam"].get(link).content.decode()
    assert "Accept" in page
    accepted = clients["sam"].post(link)
    assert accepted.status_code == 302 and accepted["Location"] == eth
    membership = Membership.objects.get(user=people["sam"])
    assert (membership.institution.slug, membership.source) == ("eth", "invitation")
    assert Invitation.objects.get().accepted_by == people["sam"]
    eth_note = make_note(author="bea", title="ETH-only note", visibility="institution")
    assert clients["sam"].get(eth_note.get_absolute_url()).status_code == 200
    again = clients["sam"].post(link)
    assert again.status_code == 400 and "already accepted" in again.content.decode()
    assert Membership.objects.filter(user=people["amir"], institution__slug="eth").count() == 0
