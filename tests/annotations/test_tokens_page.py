"""API tokens on the profile page: made (secret shown once), listed, revoked by their owner."""

from typing import Any

from django.test import Client
from django.utils import timezone

from annotations.models import ApiToken
from annotations.tokens import secret_hash, token_check, token_create

PROFILE = "/accounts/profile/"


def _client(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _post(client: Client, data: dict[str, str]) -> Any:
    client.get(PROFILE)
    return client.post(PROFILE, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def test_create_shows_the_secret_once_and_stores_its_hash(people: dict[str, Any]) -> None:
    client = _client(people["alice"])
    answer = _post(
        client,
        {"action": "token-create", "name": "notebook", "scope": "write", "expires_days": "30"},
    )
    assert answer.status_code == 200
    assert answer["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=people["alice"], name="notebook")
    secret = answer.context["new_secret"]
    assert secret.startswith(f"msc_{token.prefix}_") and secret in answer.content.decode()
    assert token.secret_sha256 == secret_hash(secret) and secret not in token.secret_sha256
    assert token.scope == "write"
    assert token.expires is not None
    assert 29 <= (token.expires - timezone.now()).days <= 30
    assert token_check(secret) == token
    # listed afterwards, never with its secret
    page = client.get(PROFILE).content.decode()
    assert "notebook" in page and token.prefix in page and secret not in page


def test_create_needs_csrf(people: dict[str, Any]) -> None:
    client = _client(people["alice"])
    answer = client.post(PROFILE, {"action": "token-create", "name": "x", "scope": "read"})
    assert answer.status_code == 403 and not ApiToken.objects.exists()


def test_bad_input_is_refused(people: dict[str, Any]) -> None:
    client = _client(people["alice"])
    for data in (
        {"name": "", "scope": "read"},
        {"name": "x", "scope": "admin"},
        {"name": "x", "scope": "read", "expires_days": "0"},
        {"name": "x", "scope": "read", "expires_days": "soon"},
    ):
        answer = _post(client, {"action": "token-create", **data})
        assert answer.status_code == 400 and "new_secret" not in answer.context
    assert not ApiToken.objects.exists()


def test_revoke(people: dict[str, Any]) -> None:
    token, secret = token_create(user=people["alice"], name="old")
    client = _client(people["alice"])
    assert "Revoke" in client.get(PROFILE).content.decode()
    answer = _post(client, {"action": "token-revoke", "token": str(token.pk)})
    assert answer.status_code == 302
    token.refresh_from_db()
    assert token.revoked is not None and token_check(secret) is None


def test_another_user_cannot_revoke_yours(people: dict[str, Any]) -> None:
    token, secret = token_create(user=people["alice"], name="mine")
    client = _client(people["sam"])
    assert _post(client, {"action": "token-revoke", "token": str(token.pk)}).status_code == 404
    assert _post(client, {"action": "token-revoke", "token": "nope"}).status_code == 404
    token.refresh_from_db()
    assert token.revoked is None and token_check(secret) == token
    assert "mine" not in client.get(PROFILE).content.decode()


def test_profile_form_still_saves(people: dict[str, Any]) -> None:
    client = _client(people["sam"])
    answer = _post(client, {"display_name": "Sam S."})
    assert answer.status_code == 302
    assert people["sam"].profile.__class__.objects.get(user=people["sam"]).display_name == "Sam S."
