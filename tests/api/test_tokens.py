import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotations.models import ApiToken

pytestmark = pytest.mark.django_db


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_a_token_is_shown_once_and_stored_hashed(api: Any) -> None:
    response = api["alice"].post("/api/v1/tokens/", {"name": "notebook", "scope": "write"})
    assert response.status_code == 201, response.content
    secret = response.json()["secret"]
    token = ApiToken.objects.get()
    assert token.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(list(ApiToken.objects.values()))
    assert secret.startswith(f"msc_{token.prefix}_")
    listed = api["alice"].get("/api/v1/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["notebook"] and "secret" not in listed[0]
    assert "secret" not in api["alice"].get(f"/api/v1/tokens/{token.pk}/").json()


def test_a_token_authenticates_and_records_its_last_use(api: Any) -> None:
    secret = api["alice"].post("/api/v1/tokens/", {"name": "t"}).json()["secret"]
    client = _bearer(secret)
    assert ApiToken.objects.get().last_used is None
    mine = client.get("/api/v1/tokens/").json()["results"]
    assert [t["name"] for t in mine] == ["t"]
    assert ApiToken.objects.get().last_used is not None


def test_a_read_scope_token_cannot_write(api: Any, token_client: Any, unit: Any) -> None:
    client = token_client("alice", scope="read")
    assert client.get("/api/v1/notes/").status_code == 200
    response = client.post("/api/v1/comments/", {"unit": unit.pk, "body": "hello"})
    assert response.status_code == 403
    assert "read scope" in response.json()["error"]["detail"]
    writer = token_client("alice", scope="write")
    assert writer.post("/api/v1/comments/", {"unit": unit.pk, "body": "hello"}).status_code == 201


def test_expired_revoked_and_unknown_tokens_get_401(
    api: Any, token_client: Any, people: Any
) -> None:
    from annotations.tokens import token_create

    token, secret = token_create(
        user=people["alice"], name="soon", expires=timezone.now() + timedelta(seconds=30)
    )
    assert _bearer(secret).get("/api/v1/tokens/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires=timezone.now() - timedelta(seconds=1))
    expired = _bearer(secret).get("/api/v1/notes/")
    assert expired.status_code == 401 and expired["WWW-Authenticate"] == "Token"
    assert expired.json()["error"]["code"] == "authentication_failed"

    _, secret = token_create(user=people["alice"], name="revoke me")
    revoked = ApiToken.objects.get(name="revoke me")
    assert api["alice"].delete(f"/api/v1/tokens/{revoked.pk}/").status_code == 204
    assert _bearer(secret).get("/api/v1/notes/").status_code == 401
    assert _bearer(secret[:-1] + "x").get("/api/v1/notes/").status_code == 401
    assert _bearer("msc_nonsense").get("/api/v1/notes/").status_code == 401


def test_tokens_are_private_to_their_owner(api: Any, people: Any) -> None:
    from annotations.tokens import token_create

    token, _ = token_create(user=people["alice"], name="hers")
    assert api["bea"].get("/api/v1/tokens/").json()["results"] == []
    assert api["bea"].get(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert api["bea"].delete(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert api["anon"].get("/api/v1/tokens/").status_code == 401
    token.refresh_from_db()
    assert token.revoked is None


def test_a_token_cannot_make_tokens(token_client: Any) -> None:
    response = token_client("alice").post("/api/v1/tokens/", {"name": "child"})
    assert response.status_code == 403
    assert ApiToken.objects.filter(name="child").count() == 0


def test_an_expiry_in_the_past_is_refused(api: Any) -> None:
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = api["alice"].post("/api/v1/tokens/", {"name": "old", "expires": past})
    assert response.status_code == 400 and "past" in response.json()["error"]["detail"]
