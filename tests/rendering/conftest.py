from pathlib import Path
from typing import Any

import pytest


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
