# Django imports live inside the fixtures so tests/engine also runs without Django (-p no:django).
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """Import InceptionV1 (random init, seed 0) once for the whole session's test database."""
    from neurons.services import model_import
    from rendering.engine.zoo import WeightsSpec

    with django_db_blocker.unblock():
        model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))


@pytest.fixture
def inceptionv1(db: None) -> Any:
    from neurons.models import NetworkModel

    return NetworkModel.objects.get(slug="inceptionv1", weights_detail="0")


@pytest.fixture
def staff_client(db: None, django_user_model: Any) -> Any:
    from django.test import Client

    user = django_user_model.objects.filter(username="staff").first()  # made by `people`
    if user is None:
        user = django_user_model.objects.create_superuser("staff", "staff@example.org", "pw-12345!")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def tinynet(monkeypatch: pytest.MonkeyPatch) -> Any:
    from rendering.engine.zoo import ENTRIES
    from tests.tinynet import TINYNET

    monkeypatch.setitem(ENTRIES, TINYNET.key, TINYNET)
    return TINYNET


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Rate limits, cached pages and page fragments live in the caches: every test starts with
    empty ones."""
    from django.conf import settings

    if settings.configured:  # tests/engine also runs without Django (-p no:django)
        from django.core.cache import caches

        for alias in settings.CACHES:
            caches[alias].clear()


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def small_renders(settings: Any, media: Path) -> dict[str, Any]:
    """Tiny renders: one image per optimization, so a job stores unit by unit."""
    settings.RENDER_BATCH_SIZE = 1
    settings.RENDER_DEVICE = "cpu"
    return {"size": 32, "steps": 2}


# People, institutions and notes, shared by the annotation and API tests.


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def institutions(db: None) -> dict[str, Any]:
    from annotations.models import Institution

    return {
        "mit": Institution.objects.create(name="MIT", slug="mit", email_domains="mit.edu"),
        "eth": Institution.objects.create(name="ETH Zürich", slug="eth", email_domains="ethz.ch"),
    }


@pytest.fixture
def people(
    institutions: dict[str, Any], django_user_model: Any, fast_passwords: None
) -> dict[str, Any]:
    """alice and amir at MIT, bea at ETH (and bruno, an ETH curator), sam with no institution,
    and staff. Their addresses count as confirmed (`email_verified`): members at once."""
    from annotations.models import Membership
    from annotations.people import user_signup

    users = {
        "alice": user_signup(
            username="alice",
            email="alice@mit.edu",
            password="pw-12345!",
            display_name="Alice A.",
            email_verified=True,
        ),
        "amir": user_signup(
            username="amir", email="amir@mit.edu", password="pw-12345!", email_verified=True
        ),
        "bea": user_signup(
            username="bea",
            email="bea@ethz.ch",
            password="pw-12345!",
            display_name="Bea B.",
            email_verified=True,
        ),
        "bruno": user_signup(
            username="bruno", email="bruno@ethz.ch", password="pw-12345!", email_verified=True
        ),
        "sam": user_signup(username="sam", email="sam@example.org", password="pw-12345!"),
    }
    Membership.objects.filter(user=users["bruno"]).update(role=Membership.Role.CURATOR)
    users["staff"] = django_user_model.objects.filter(
        username="staff"
    ).first() or django_user_model.objects.create_superuser(
        "staff", "staff@example.org", "pw-12345!"
    )
    return users


@pytest.fixture
def unit(inceptionv1: Any) -> Any:
    return inceptionv1.layers.get(name="mixed4c").units.get(index=447)


@pytest.fixture
def make_note(people: dict[str, Any], inceptionv1: Any) -> Any:
    from annotations.notes import note_create

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
