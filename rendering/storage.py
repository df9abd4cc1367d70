"""Render images as content-addressed PNG files (and their thumbnails) in the default storage."""

import io

import numpy as np
from django.core.files.storage import default_storage
from PIL import Image

from microscope_site.storage import store_content

THUMBNAIL_PX = 96


def png_bytes(image: np.ndarray, size: int | None = None) -> bytes:
    picture = Image.fromarray(image, mode="RGB")
    if size is not None and picture.size != (size, size):
        picture = picture.resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def store_render(image: np.ndarray) -> tuple[str, str, str]:
    """(image name, image sha256, thumbnail name) for one uint8 RGB image."""
    name, sha = store_content(png_bytes(image), folder="renders")
    thumb, _ = store_content(png_bytes(image, THUMBNAIL_PX), folder="thumbs")
    return name, sha, thumb


def load_image(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))
