from pathlib import Path
from typing import Any

import pytest

from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from tests.rendering.passes import photo


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """12 good images in nested folders, plus a truncated JPEG and a text file named .jpg."""
    root = tmp_path / "images"
    for i in range(12):
        folder = root / ("cats" if i % 2 else "dogs") / ("deep" if i % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        photo(i).save(folder / f"img{i:02d}.png")
    photo(99).save(root / "broken.jpg", format="JPEG")
    data = (root / "broken.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(data[: len(data) // 3])
    (root / "notes.jpg").write_text("not an image")
    (root / "readme.txt").write_text("ignored: not an image suffix")
    return root


@pytest.fixture
def tiny_model(tinynet: Any, small_renders: Any, settings: Any) -> Any:
    settings.EXAMPLES_LOADER_WORKERS = 0
    settings.EXAMPLES_BATCH_SIZE = 5
    return model_import(registry_key="tinynet", weights=WeightsSpec("random", seed=1))
