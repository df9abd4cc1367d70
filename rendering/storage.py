"""Content-addressed image files in Django's default storage (a local folder or a bucket)."""

import hashlib
import io

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

THUMBNAIL_PX = 96


def png_bytes(image: np.ndarray, size: int | None = None) -> bytes:
    picture = Image.fromarray(image, mode="RGB")
    if size is not None and picture.size != (size, size):
        picture = picture.resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def store_content(data: bytes, *, folder: str, suffix: str = ".png") -> tuple[str, str]:
    """Save `data` under a name made of its sha256; returns (name, sha256).

    The name is the content, so a file that exists with the right bytes is reused, and one left
    half-written by a killed worker (wrong bytes under that name) is replaced.
    """
    sha = hashlib.sha256(data).hexdigest()
    name = f"{folder}/{sha[:2]}/{sha}{suffix}"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as existing:
            if hashlib.sha256(existing.read()).hexdigest() == sha:
                return name, sha
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # the storage renamed it: never expected with content names
        default_storage.delete(saved)
        raise OSError(f"storage refused the content-addressed name {name} (gave {saved})")
    return name, sha


def store_render(image: np.ndarray) -> tuple[str, str, str]:
    """(image name, image sha256, thumbnail name) for one uint8 RGB image."""
    name, sha = store_content(png_bytes(image), folder="renders")
    thumb, _ = store_content(png_bytes(image, THUMBNAIL_PX), folder="thumbs")
    return name, sha, thumb


def load_image(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))
