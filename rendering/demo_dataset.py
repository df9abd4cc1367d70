"""The demo's dataset, built on first run from images we may ship: scikit-image's sample
photographs (public domain or CC0, as their docstrings say, shipped inside the installed
package) with a few crops of each, plus synthetic stimuli drawn by the engine (curves,
gratings, colour patches at several sizes and places). No download, nothing we cannot give away.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
from PIL import Image

from rendering.engine.stimuli import colour_patches, curves, gratings

# (file in skimage/data, licence as the function's docstring states it)
PHOTOS = {
    "astronaut.png": "public domain (NASA)",
    "chelsea.png": "CC0 (Stefan van der Walt)",
    "coffee.png": "CC0 (Rachel Michetti)",
    "rocket.jpg": "public domain (SpaceX)",
    "hubble_deep_field.jpg": "public domain (NASA)",
    "brick.png": "CC0",
    "grass.png": "CC0",
    "gravel.png": "CC0",
    "camera.png": "CC0 (Lav Varshney)",
    "retina.jpg": "CC0",
    "horse.png": "CC0 (Andreas Preuss)",
    "text.png": "public domain",
    "cell.png": "CC0",
    "microaneurysms.png": "CC0 (Andreas Maier)",
    "clock_motion.png": "public domain",
}
LICENCE = "scikit-image sample photographs (public domain / CC0) and generated stimuli"
SIZE = 224


def _photos() -> dict[str, Image.Image]:
    folder = importlib.resources.files("skimage") / "data"
    found: dict[str, Image.Image] = {}
    for name in PHOTOS:
        resource = folder / name
        if resource.is_file():
            with resource.open("rb") as handle:
                picture = Image.open(handle)
                picture.load()
            found[name] = picture
    return found


def _crops(picture: Image.Image) -> list[Image.Image]:
    """The photo, and its left, right and centre parts: more places for units to find things."""
    width, height = picture.size
    side = min(width, height)
    half = side // 2
    return [
        picture,
        picture.crop((0, 0, side, side)),
        picture.crop((width - side, height - side, width, height)),
        picture.crop(
            (
                width // 2 - half // 2,
                height // 2 - half // 2,
                width // 2 + half // 2,
                height // 2 + half // 2,
            )
        ),
    ]


def _save_stimuli(images: np.ndarray, folder: Path, stem: str, every: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for position in range(0, len(images), every):
        pixels = (np.clip(images[position], 0, 1).transpose(1, 2, 0) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{stem}-{position:03d}.png")
        count += 1
    return count


def demo_dataset_build(folder: Path) -> int:
    """Write the demo images under `folder` (skipping it if it holds them); returns the count."""
    marker = folder / "SOURCES.txt"
    if marker.exists():
        return sum(1 for path in folder.rglob("*.png"))
    photos = folder / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    count = 0
    lines = [f"{LICENCE}\n", "photos/ (from the installed scikit-image package):"]
    for name, picture in _photos().items():
        stem = Path(name).stem
        for position, part in enumerate(_crops(picture)):
            part.save(photos / f"{stem}-{position}.png")
            count += 1
        lines.append(f"  {name}: {PHOTOS[name]}")
    synthetic = folder / "synthetic"
    for extent, centre in ((64, None), (128, (80.0, 140.0)), (200, None)):
        tag = f"{extent}px"
        count += _save_stimuli(
            curves(size=SIZE, extent=extent, centre=centre).images, synthetic, f"curves-{tag}", 10
        )
        count += _save_stimuli(
            gratings(size=SIZE, extent=extent, centre=centre).images,
            synthetic,
            f"gratings-{tag}",
            16,
        )
        count += _save_stimuli(
            colour_patches(size=SIZE, extent=extent, centre=centre).images,
            synthetic,
            f"colour-{tag}",
            4,
        )
    lines.append(
        "synthetic/: curves, gratings and colour patches drawn by rendering.engine.stimuli"
    )
    marker.write_text("\n".join(lines) + "\n")
    return count


ORGANISM_LICENCE = "generated stimuli (this project's own; no third-party content)"


def organism_held_out_build(folder: Path, *, per_class: int = 20, seed: int = 0) -> int:
    """The model organism's held-out stimuli as PNGs, one folder per class (ImageFolder style):
    the images its training never saw (training.held_out), to register as a dataset."""
    from rendering.engine.zoo.organism import CLASSES
    from rendering.engine.zoo.training import DEFAULT_CONFIG, held_out

    images, labels = held_out(seed, DEFAULT_CONFIG, per_class)
    pixels = np.round(images.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    counts: dict[int, int] = {}
    for image, label in zip(pixels, labels, strict=True):
        name = CLASSES[DEFAULT_CONFIG.class_indices[label]].name
        slug = "".join(c if c.isalnum() else "-" for c in name.replace("°", "deg")).strip("-")
        target = folder / f"{label:02d}-{slug}" / f"{counts.get(label, 0):03d}.png"
        counts[label] = counts.get(label, 0) + 1
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target)
    return len(pixels)
