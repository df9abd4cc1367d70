from datetime import datetime
from typing import Any

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api(people: dict[str, Any]) -> dict[str, APIClient]:
    """A session-authenticated client per person, and "anon"."""
    out = {"anon": APIClient()}
    for name, user in people.items():
        client = APIClient()
        client.force_login(user)
        out[name] = client
    return out


@pytest.fixture
def token_client(people: dict[str, Any]) -> Any:
    """A client that sends `Authorization: Token <secret>` for a new token of `name`."""
    from annotations.tokens import token_create

    def make(name: str, scope: str = "write", expires: datetime | None = None) -> APIClient:
        _, secret = token_create(user=people[name], name="script", scope=scope, expires=expires)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
        return client

    return make
