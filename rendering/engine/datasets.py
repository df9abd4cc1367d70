"""Reading any folder of images safely, in a deterministic order, for dataset examples.

A dataset is a sorted list of names plus a `read(name) -> bytes` function, so the same code
reads a local folder (`LocalFiles`) or, on the Django side, a storage backend. Every image is
decoded defensively (`load_image`): Pillow's decompression-bomb limit is enforced (its warning
counts as an error too), truncated files fail at decode time, EXIF orientation is applied and
every mode becomes RGB without clipping (16-bit is scaled, transparency is composited on
white). An image that cannot be read never stops a pass: `ImageFiles` returns it as `None`
with a short reason, and `batches` reports it in `Batch.skipped`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "BadImage",
    "Batch",
    "ImageFiles",
    "LocalFiles",
    "batches",
    "file_sha256",
    "list_images",
    "load_image",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

# Modes whose alpha channel must be composited rather than dropped.
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class BadImage(Exception):
    """An image that cannot be used; `reason` is short and fit to show to a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def list_images(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under `root` (any depth), sorted.

    Files are recognised by extension (case-insensitive); the sort makes an image's index in
    the list, which the examples store, the same on every machine.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    inside = root.resolve()
    names = []
    for folder, _dirs, files in os.walk(root):  # does not descend into linked folders
        for file in files:
            path = Path(folder) / file
            # A link to a file outside the folder (an unpacked archive can hold one) is not
            # part of the dataset: its pixels would be shown as examples.
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.resolve().is_relative_to(inside):
                names.append(path.relative_to(root).as_posix())
    return sorted(names)


def file_sha256(data: bytes) -> str:
    """Hex sha256 of a file's bytes: identifies an image whatever its name."""
    return hashlib.sha256(data).hexdigest()


def _bomb_reason(error: Exception) -> str:
    match = _BOMB_PIXELS.search(str(error))
    return f"decompression bomb ({match.group(1)} pixels)" if match else "decompression bomb"


def _open(data: bytes, size: int) -> Image.Image:
    """Open and fully decode, turning every way Pillow fails into `BadImage`."""
    if not data:
        raise BadImage("empty file")
    # The warnings filter is process-global: fine in DataLoader workers (processes) and in a
    # Celery worker's single thread; threads decoding at once could see each other's filter.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if image.format == "JPEG":
                # Decode at the smallest 1/2, 1/4 or 1/8 scale that keeps both sides >= size.
                image.draft(None, (size, size))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise BadImage(_bomb_reason(error)) from None
        except UnidentifiedImageError:
            raise BadImage("not an image") from None
        except OSError as error:
            truncated = "truncated" in str(error).lower() or "broken data" in str(error).lower()
            raise BadImage("truncated" if truncated else f"unreadable ({error})") from None
        # Pillow's format plugins raise many types on malformed input (SyntaxError, ValueError,
        # struct.error, EOFError, ...): any of them means this file cannot be used.
        except Exception as error:
            raise BadImage(f"unreadable ({type(error).__name__}: {error})") from None
    if image.width < 1 or image.height < 1:
        raise BadImage("empty image")
    return image


def _orient(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block does not make the pixels unusable
        return image


def _high_depth_to_uint8(image: Image.Image) -> np.ndarray:
    """Grey levels of an I;16 / I / F image scaled (not clipped) to 0..255."""
    values = np.asarray(image)
    if image.mode.startswith("I;16"):
        wide = values.astype(np.uint32)
        return ((wide * 255 + 32767) // 65535).astype(np.uint8)
    floats = values.astype(np.float64)
    finite = floats[np.isfinite(floats)]
    top = float(finite.max()) if finite.size else 0.0
    low = float(finite.min()) if finite.size else 0.0
    if image.mode == "F" and low >= 0.0 and top <= 1.0:
        scaled = floats * 255.0  # float images in [0, 1]
    elif low >= 0.0 and top <= 255.0:
        scaled = floats  # already 8-bit values in a wide container
    elif low >= 0.0 and top <= 65535.0:
        scaled = floats / 257.0  # 16-bit values (Pillow opens some 16-bit files as "I")
    else:
        scaled = (floats - low) * (255.0 / max(top - low, 1e-12))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        return Image.fromarray(_high_depth_to_uint8(image)).convert("RGB")
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB", "1") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "RGB":
        return image
    return image.convert("RGB")  # CMYK, L, P, 1, YCbCr, LAB, HSV


def _resize_and_centre_crop(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    if new_size != image.size:
        # Pillow's bilinear filter widens its support when shrinking: antialiased.
        image = image.resize(new_size, Image.Resampling.BILINEAR)
    left = (new_size[0] - size) // 2
    top = (new_size[1] - size) // 2
    return image.crop((left, top, left + size, top + size))


def load_image(data: bytes, size: int) -> np.ndarray:
    """Decode `data` to RGB uint8 of shape (size, size, 3): shorter side resized, centre crop.

    Raises `BadImage` for anything that cannot be used (not an image, truncated, a
    decompression bomb by `PIL.Image.MAX_IMAGE_PIXELS`, an unsupported encoding). Truncated
    files fail only while `PIL.ImageFile.LOAD_TRUNCATED_IMAGES` keeps its default, False.
    """
    image = _open(data, size)
    try:
        rgb = _to_rgb(_orient(image))
        return np.asarray(_resize_and_centre_crop(rgb, size), dtype=np.uint8).copy()
    except BadImage:
        raise
    except Exception as error:  # conversion of an exotic mode failed
        raise BadImage(f"unsupported image ({image.mode}: {error})") from None
    finally:
        image.close()


@dataclass(frozen=True)
class LocalFiles:
    """`read` for files under a local folder; picklable, so DataLoader workers can use it."""

    root: Path

    def __call__(self, name: str) -> bytes:
        return (Path(self.root) / name).read_bytes()


Item = tuple[int, Tensor | None, str]


class ImageFiles(Dataset[Item]):
    """The images `names` read with `read`, as `(index, uint8 CHW tensor or None, reason)`.

    `read` maps a name to its bytes; a `Path` reads names under that folder. With DataLoader
    workers `read` is pickled, so pass a module-level function, a `functools.partial` of one,
    or an instance of a module-level class (like `LocalFiles`), never a lambda or closure.
    A file that cannot be read or decoded comes back as `None` with the reason; it never
    raises, so one bad file cannot stop a pass.
    """

    def __init__(
        self, names: Sequence[str], read: Callable[[str], bytes] | Path, size: int
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, not {size}")
        self.names = list(names)
        self.read: Callable[[str], bytes] = LocalFiles(read) if isinstance(read, Path) else read
        self.size = size

    @classmethod
    def from_folder(cls, root: Path, size: int) -> ImageFiles:
        """Every image under `root`, in `list_images` order."""
        return cls(list_images(root), LocalFiles(Path(root)), size)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> Item:
        name = self.names[index]
        try:
            data = self.read(name)
        except OSError as error:
            return index, None, f"cannot read file ({error.strerror or error})"
        try:
            pixels = load_image(data, self.size)
        except BadImage as bad:
            return index, None, bad.reason
        return index, torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), ""


@dataclass
class Batch:
    """Good images of one batch, in dataset order, and the items skipped with their reasons."""

    indices: Tensor  # (B,) int64: positions in the dataset
    images: Tensor  # (B, 3, H, W) uint8
    skipped: list[tuple[int, str]]


def _collate(items: list[Item]) -> Batch:
    """Drops bad items, reporting them; module-level so worker processes can unpickle it."""
    good = [(index, image) for index, image, _ in items if image is not None]
    skipped = [(index, reason) for index, image, reason in items if image is None]
    if not good:
        empty = torch.zeros(0, 3, 0, 0, dtype=torch.uint8)
        return Batch(torch.zeros(0, dtype=torch.int64), empty, skipped)
    indices = torch.tensor([index for index, _ in good], dtype=torch.int64)
    return Batch(indices, torch.stack([image for _, image in good]), skipped)


def batches(
    dataset: Dataset[Item], batch_size: int, workers: int = 0, *, pin_memory: bool = False
) -> Iterator[Batch]:
    """`dataset` (`ImageFiles` or a view of its items) in order, `batch_size` items at a time.

    Items are decoded by `workers` processes; the order is the dataset's whatever their number
    (no shuffling; DataLoader returns batches in order). A batch may hold fewer images than
    `batch_size`, or none (images of shape (0, 3, 0, 0)), when items were skipped.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
    )
    yield from loader
