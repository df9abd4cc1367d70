from typing import Any

import pytest

from annotations.errors import NotAllowed
from annotations.models import Membership, Note, Profile
from annotations.people import (
    address_confirmed,
    institutions_at,
    profile_for,
    profile_update,
    user_signup,
    work_touch,
)

pytestmark = pytest.mark.django_db


def test_a_profile_is_made_once(people: dict[str, Any], django_user_model: Any) -> None:
    plain = django_user_model.objects.create_user("plain", "plain@example.org", "pw-12345!")
    assert not Profile.objects.filter(user=plain).exists()
    profile = profile_for(plain)
    assert profile_for(plain).pk == profile.pk and Profile.objects.filter(user=plain).count() == 1
    assert profile_for(people["alice"]).display_name == "Alice A."


def test_signup_joins_an_institution_only_once_the_address_is_confirmed(
    institutions: dict[str, Any], fast_passwords: None
) -> None:
    user = user_signup(
        username="carla", email=" Carla@MIT.edu ", password="pw-12345!", display_name=" C\u202e. "
    )
    assert user.email == "carla@mit.edu" and user.check_password("pw-12345!")
    profile = Profile.objects.get(user=user)
    assert profile.display_name == "C." and profile.institution is None
    assert not Membership.objects.filter(user=user).exists()  # typing an address proves nothing
    verified = user_signup(
        username="dan", email="dan@ethz.ch", password="pw-12345!", email_verified=True
    )
    assert list(
        Membership.objects.filter(user=verified).values_list("institution__slug", flat=True)
    ) == ["eth"]
    assert Profile.objects.get(user=verified).institution == institutions["eth"]


def test_institutions_are_found_by_the_addresses_domain(institutions: dict[str, Any]) -> None:
    assert institutions_at("someone@MIT.EDU") == [institutions["mit"]]
    assert institutions_at("someone@ethz.ch") == [institutions["eth"]]
    assert institutions_at("someone@example.org") == []
    assert institutions_at("not an address") == []


def test_a_confirmed_address_joins_its_institutions_once(
    institutions: dict[str, Any], fast_passwords: None
) -> None:
    user = user_signup(username="carla", email="carla@mit.edu", password="pw-12345!")
    assert address_confirmed(user=user) == [institutions["mit"]]
    profile = Profile.objects.get(user=user)
    assert profile.email_confirmed == "carla@mit.edu" and profile.institution == institutions["mit"]
    membership = Membership.objects.get(user=user)
    assert (membership.institution, membership.source) == (institutions["mit"], "domain")
    assert address_confirmed(user=user) == []  # already a member
    assert Membership.objects.filter(user=user).count() == 1


def test_the_affiliation_shown_must_be_a_membership(
    people: dict[str, Any], institutions: dict[str, Any]
) -> None:
    profile = profile_update(user=people["alice"], display_name=" Alice\u200e ", institution=None)
    assert (profile.display_name, profile.institution) == ("Alice", None)
    with pytest.raises(NotAllowed, match="not a member of ETH") as refused:
        profile_update(user=people["alice"], display_name="Alice", institution=institutions["eth"])
    assert refused.value.field == "institution"
    assert Profile.objects.get(user=people["alice"]).institution is None
    profile_update(user=people["alice"], display_name="Alice", institution=institutions["mit"])
    assert Profile.objects.get(user=people["alice"]).institution == institutions["mit"]


def test_work_touch_refreshes_the_pages_that_print_a_name(
    people: dict[str, Any], make_note: Any, inceptionv1: Any
) -> None:
    note = make_note()
    Note.objects.filter(pk=note.pk).update(updated=note.created)
    inceptionv1.refresh_from_db()
    version = inceptionv1.content_version
    work_touch(people["alice"])
    inceptionv1.refresh_from_db()
    assert inceptionv1.content_version == version + 1  # her public note is on its unit pages
    assert Note.objects.get(pk=note.pk).updated > note.created
    work_touch(people["sam"])  # no public work: nothing to refresh
    inceptionv1.refresh_from_db()
    assert inceptionv1.content_version == version + 1
