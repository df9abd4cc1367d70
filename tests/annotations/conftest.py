from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def institutions(db: None) -> dict[str, Any]:
    from annotations.models import Institution

    return {
        "mit": Institution.objects.create(name="MIT", slug="mit", email_domains="mit.edu"),
        "eth": Institution.objects.create(name="ETH Zürich", slug="eth", email_domains="ethz.ch"),
    }


@pytest.fixture
def people(institutions: dict[str, Any]) -> dict[str, Any]:
    """alice and amir at MIT, bea at ETH (and bruno, an ETH curator), sam with no institution."""
    from annotations.models import Membership
    from annotations.services import user_signup

    users = {
        "alice": user_signup(
            username="alice", email="alice@mit.edu", password="pw-12345!", display_name="Alice A."
        ),
        "amir": user_signup(username="amir", email="amir@mit.edu", password="pw-12345!"),
        "bea": user_signup(
            username="bea", email="bea@ethz.ch", password="pw-12345!", display_name="Bea B."
        ),
        "bruno": user_signup(username="bruno", email="bruno@ethz.ch", password="pw-12345!"),
        "sam": user_signup(username="sam", email="sam@example.org", password="pw-12345!"),
    }
    Membership.objects.filter(user=users["bruno"]).update(role=Membership.Role.CURATOR)
    return users


@pytest.fixture
def clients(people: dict[str, Any]) -> dict[str, Client]:
    """A logged-in client per person, and "anon"."""
    out = {"anon": Client()}
    for name, user in people.items():
        client = Client()
        client.force_login(user)
        out[name] = client
    return out


@pytest.fixture
def unit(inceptionv1: Any) -> Any:
    return inceptionv1.layers.get(name="mixed4c").units.get(index=447)


@pytest.fixture
def make_note(people: dict[str, Any], inceptionv1: Any) -> Any:
    from annotations.services import note_create

    def make(
        author: str = "alice", visibility: str = "public", publish: bool = True, **fields: Any
    ) -> Any:
        values = {
            "title": "Curve detectors",
            "body": "Curve detectors in **4c**.",
            "units": "inceptionv1 4c:447, input\ninceptionv1/mixed4c/448",
            "edges": "1 -> 2",
        }
        values.update(fields)
        return note_create(author=people[author], visibility=visibility, publish=publish, **values)

    return make
