import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rendering.engine.datasets import (
    BadImage,
    ImageFiles,
    LocalFiles,
    batches,
    file_sha256,
    list_images,
    load_image,
)

SIZE = 16


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width: int = 40, height: int = 30) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None, None]
    pixels = np.concatenate(np.broadcast_arrays(x, y, np.full_like(x, 90)), axis=2)
    return Image.fromarray(np.ascontiguousarray(pixels))


def grey16(value: int) -> bytes:
    image = Image.fromarray(np.full((20, 20), value, dtype=np.uint16))
    assert image.mode == "I;16"
    return encode(image, "PNG")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    files = {
        # 160 x 120: big enough for the JPEG decoder to downscale (draft) before resizing.
        "a/good.jpg": encode(gradient(160, 120), "JPEG", quality=95),
        "b/c/good.png": encode(gradient(160, 120), "PNG"),
        "upper.JPG": encode(gradient(24, 24), "JPEG"),
        "truncated.jpg": encode(gradient(), "JPEG")[:400],
        "fake.jpg": b"this is a text file, not a picture\n" * 10,
        "cmyk.jpg": encode(Image.new("CMYK", (20, 20), (255, 0, 0, 0)), "JPEG", quality=100),
        "l.png": encode(Image.new("L", (20, 20), 100), "PNG"),
        "la.png": encode(Image.new("LA", (20, 20), (100, 0)), "PNG"),
        "rgba.png": encode(Image.new("RGBA", (20, 20), (255, 0, 0, 128)), "PNG"),
        "sixteen.png": grey16(65535),
        "bomb.png": encode(Image.new("RGB", (150, 150)), "PNG"),
        "notes.txt": b"not listed",
    }
    palette = Image.new("P", (20, 20), 1)
    palette.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    files["p.gif"] = encode(palette, "GIF", transparency=1)
    for name, data in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return tmp_path


def test_images_are_listed_sorted_by_relative_path_whatever_their_depth(folder: Path) -> None:
    assert list_images(folder) == [
        "a/good.jpg",
        "b/c/good.png",
        "bomb.png",
        "cmyk.jpg",
        "fake.jpg",
        "l.png",
        "la.png",
        "p.gif",
        "rgba.png",
        "sixteen.png",
        "truncated.jpg",
        "upper.JPG",
    ]


def test_a_pass_skips_bad_files_with_reasons_and_decodes_every_mode(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20000)  # bomb.png: 22500, others <= 19200
    names = list_images(folder) + ["missing.png"]
    seen: dict[int, torch.Tensor] = {}
    skipped: list[tuple[int, str]] = []
    for batch in batches(ImageFiles(names, folder, SIZE), batch_size=4):
        assert batch.images.dtype == torch.uint8
        assert batch.images.shape[1:] == (3, SIZE, SIZE) or len(batch.indices) == 0
        seen.update(zip(batch.indices.tolist(), batch.images, strict=True))
        skipped += batch.skipped
    reasons = {names[index]: reason for index, reason in skipped}
    assert reasons.keys() == {"bomb.png", "fake.jpg", "truncated.jpg", "missing.png"}
    assert reasons["bomb.png"] == "decompression bomb (22500 pixels)"
    assert reasons["fake.jpg"] == "not an image"
    assert reasons["truncated.jpg"] == "truncated"
    assert reasons["missing.png"].startswith("cannot read file")
    assert sorted(seen) == [i for i, name in enumerate(names) if name not in reasons]

    def pixels(name: str) -> np.ndarray:
        return seen[names.index(name)].permute(1, 2, 0).numpy().astype(int)

    assert (pixels("sixteen.png") == 255).all()  # 16-bit white scaled, not clipped
    assert (pixels("l.png") == 100).all()
    assert (pixels("la.png") == 255).all()  # fully transparent: the white background
    assert (abs(pixels("rgba.png") - (255, 127, 127)) <= 1).all()  # half red over white
    assert (pixels("p.gif") == 255).all()  # the transparent palette index
    cyan = pixels("cmyk.jpg")
    assert (cyan[..., 0] < 20).all() and (cyan[..., 1:] > 235).all()
    jpeg, png = pixels("a/good.jpg"), pixels("b/c/good.png")
    assert abs(jpeg - png).mean() < 4  # same picture whatever the format (and JPEG draft)


def test_a_bomb_beyond_twice_the_limit_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(BadImage, match=r"decompression bomb \(1600 pixels\)"):
        load_image(encode(Image.new("RGB", (40, 40)), "PNG"), SIZE)


def test_sixteen_bit_grey_is_scaled_to_eight_bits() -> None:
    assert (load_image(grey16(32768), SIZE) == 128).all()
    assert (load_image(grey16(257 * 40), SIZE) == 40).all()


def test_the_shorter_side_is_resized_and_the_centre_kept() -> None:
    stripes = np.zeros((20, 40, 3), dtype=np.uint8)
    stripes[:, :10] = (255, 0, 0)
    stripes[:, 10:30] = (0, 255, 0)
    stripes[:, 30:] = (0, 0, 255)
    out = load_image(encode(Image.fromarray(stripes), "PNG"), SIZE)
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    assert (out[:, 2:-2] == (0, 255, 0)).all()  # the side stripes are cropped away


def test_exif_orientation_is_applied() -> None:
    picture = gradient(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    rotated = load_image(encode(picture, "PNG", exif=exif), SIZE)
    upright = load_image(encode(picture.transpose(Image.Transpose.ROTATE_270), "PNG"), SIZE)
    np.testing.assert_array_equal(rotated, upright)
    assert not np.array_equal(rotated, load_image(encode(picture, "PNG"), SIZE))


def test_worker_processes_return_the_same_batches_in_dataset_order(folder: Path) -> None:
    dataset = ImageFiles.from_folder(folder, SIZE)
    assert isinstance(dataset.read, LocalFiles)
    one = list(batches(dataset, batch_size=3, workers=0))
    two = list(batches(dataset, batch_size=3, workers=2))
    assert [b.indices.tolist() for b in one] == [b.indices.tolist() for b in two]
    assert [b.skipped for b in one] == [b.skipped for b in two]
    assert all(torch.equal(a.images, b.images) for a, b in zip(one, two, strict=True))
    indices = [i for b in one for i in b.indices.tolist()]
    assert indices == sorted(indices) and len(indices) == len(dataset) - 2  # fake, truncated


def test_file_sha256_is_the_hex_digest_of_the_bytes() -> None:
    assert file_sha256(b"abc") == hashlib.sha256(b"abc").hexdigest()
