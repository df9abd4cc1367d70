from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def clients(people: dict[str, Any]) -> dict[str, Client]:
    """A logged-in client per person, and "anon"."""
    out = {"anon": Client()}
    for name, user in people.items():
        client = Client()
        client.force_login(user)
        out[name] = client
    return out
