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
    """Rate limits and cached pages live in the cache: every test starts with an empty one."""
    from django.conf import settings

    if settings.configured:  # tests/engine also runs without Django (-p no:django)
        from django.core.cache import cache

        cache.clear()


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
