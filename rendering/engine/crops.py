"""Crops of dataset images at the receptive field of a unit's position in its layer's map."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = ["crop", "receptive_field_box"]


def receptive_field_box(
    y: int,
    x: int,
    *,
    map_size: tuple[int, int],
    input_size: int,
    receptive_field: int,
    offset: float = 0.0,
) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), bottom/right exclusive: the input pixels unit (y, x) sees.

    A `receptive_field`-sided square centred on the unit's cell of the input moved by the
    layer's measured `offset` (LayerInfo.receptive_field_offset: padding that is not
    symmetric moves every field by up to half a stride), clipped to the image.
    """
    height, width = map_size

    def span(index: int, cells: int) -> tuple[int, int]:
        centre = (index + 0.5) * input_size / cells + offset
        start = math.floor(centre - receptive_field / 2 + 0.5)
        return max(0, start), min(input_size, start + receptive_field)

    top, bottom = span(y, height)
    left, right = span(x, width)
    return top, left, bottom, right


def crop(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    out_size: int,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """The `box` of an (H, W, 3) uint8 image as an (out_size, out_size, 3) uint8 image.

    A box that was clipped at the image border is scaled, not stretched, and centred on a
    `background` square, so the crop keeps the image's proportions.
    """
    top, left, bottom, right = box
    if bottom <= top or right <= left:
        raise ValueError(f"empty box {box}")
    region = Image.fromarray(np.ascontiguousarray(image[top:bottom, left:right]))
    scale = out_size / max(region.width, region.height)
    size = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
    region = region.resize(size, Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (out_size, out_size), background)
    canvas.paste(region, ((out_size - size[0]) // 2, (out_size - size[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8).copy()
