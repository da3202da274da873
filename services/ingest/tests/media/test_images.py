import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tessera.ingest.media import (
    ImageInfo,
    MediaError,
    is_image_name,
    load_image,
    pixel_checksum,
    read_image_info,
)
from tessera.ingest.media.testing import make_test_image

WHITE = (255, 255, 255)
RED = (200, 30, 30)


def close_to(actual: object, expected: tuple[int, ...], tolerance: int = 6) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def test_media_error_names_the_file_and_pickles() -> None:
    error = MediaError("frame_0001.jpg", "not a readable image (truncated)")

    assert str(error) == "frame_0001.jpg: not a readable image (truncated)"
    assert (error.file, error.reason) == ("frame_0001.jpg", "not a readable image (truncated)")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.file, copy.reason, str(copy)) == (error.file, error.reason, str(error))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jpg", True),
        ("dir/B.JPEG", True),
        ("x.Png", True),
        ("x.bmp", True),
        ("x.tif", True),
        ("x.TIFF", True),
        ("x.webp", True),
        ("x.gif", False),
        ("x.svg", False),
        ("jpg", False),
        ("x.jpg.txt", False),
    ],
)
def test_is_image_name(name: str, expected: bool) -> None:
    assert is_image_name(name) is expected


@pytest.mark.parametrize("extension", ["jpg", "png", "bmp", "tif", "webp"])
def test_read_image_info_of_each_format(tmp_path: Path, extension: str) -> None:
    path = make_test_image(tmp_path / f"img.{extension}", (40, 30))

    assert read_image_info(path) == ImageInfo(40, 30)


@pytest.mark.parametrize(
    ("orientation", "size"),
    [(1, (40, 30)), (2, (40, 30)), (3, (40, 30)), (4, (40, 30))]
    + [(o, (30, 40)) for o in (5, 6, 7, 8)],
)
@pytest.mark.parametrize("extension", ["jpg", "png", "tif", "webp"])
def test_exif_orientation_5_to_8_swaps_width_and_height(
    tmp_path: Path, extension: str, orientation: int, size: tuple[int, int]
) -> None:
    path = make_test_image(tmp_path / f"img.{extension}", (40, 30), orientation=orientation)

    assert read_image_info(path) == ImageInfo(*size)
    assert load_image(path).size == size


@pytest.mark.parametrize(
    ("orientation", "white_corner"),
    # Stored with white top-left; where it shows once turned as EXIF says.
    [(1, "top-left"), (3, "bottom-right"), (6, "top-right"), (8, "bottom-left")],
)
@pytest.mark.parametrize("extension", ["jpg", "tif"])
def test_load_image_turns_the_pixels(
    tmp_path: Path, extension: str, orientation: int, white_corner: str
) -> None:
    path = make_test_image(tmp_path / f"img.{extension}", (40, 30), orientation=orientation)

    image = load_image(path)

    width, height = image.size
    corners = {
        "top-left": (2, 2),
        "top-right": (width - 3, 2),
        "bottom-left": (2, height - 3),
        "bottom-right": (width - 3, height - 3),
    }
    for corner, xy in corners.items():
        expected = WHITE if corner == white_corner else RED
        assert close_to(image.getpixel(xy), expected), (corner, image.getpixel(xy))


def test_extension_and_content_are_both_checked(tmp_path: Path) -> None:
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (4, 4)).save(gif)
    disguised = tmp_path / "anim.png"
    disguised.write_bytes(gif.read_bytes())
    text = tmp_path / "notes.jpg"
    text.write_text("hello")

    with pytest.raises(MediaError, match=r"^anim\.gif: unsupported image extension '\.gif'$"):
        read_image_info(gif)
    with pytest.raises(MediaError, match=r"^anim\.png: not a readable image \(unrecognised"):
        read_image_info(disguised)
    with pytest.raises(MediaError, match=r"^notes\.jpg: not a readable image"):
        read_image_info(text)


def test_content_in_another_supported_format_than_the_extension_is_accepted(
    tmp_path: Path,
) -> None:
    png = make_test_image(tmp_path / "real.png", (12, 10))
    misnamed = tmp_path / "photo.jpg"
    misnamed.write_bytes(png.read_bytes())

    assert read_image_info(misnamed) == ImageInfo(12, 10)


@pytest.mark.parametrize("extension", ["jpg", "png", "webp", "tif"])
def test_truncated_image_is_refused(tmp_path: Path, extension: str) -> None:
    # Noise does not compress, so the cut lands in the middle of the pixel data.
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    whole = tmp_path / f"whole.{extension}"
    Image.fromarray(noise).save(whole)
    data = whole.read_bytes()
    cut = tmp_path / f"frame_0001.{extension}"
    cut.write_bytes(data[: len(data) * 2 // 3])

    with pytest.raises(MediaError) as caught:
        read_image_info(cut)

    assert caught.value.file == f"frame_0001.{extension}"
    assert caught.value.reason.startswith("not a readable image (")
    with pytest.raises(MediaError):
        load_image(cut)


def test_truncated_jpeg_names_truncation(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    whole = tmp_path / "whole.jpg"
    Image.fromarray(noise).save(whole, quality=95)
    cut = tmp_path / "frame_0001.jpg"
    cut.write_bytes(whole.read_bytes()[:2000])

    with pytest.raises(MediaError) as caught:
        read_image_info(cut)

    assert str(caught.value) == "frame_0001.jpg: not a readable image (truncated)"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_test_image(tmp_path / "big.png", (100, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)

    with pytest.raises(MediaError, match=r"^big\.png: image is too large \(over 5000 pixels\)$"):
        read_image_info(path)
    # Pillow itself refuses outright at twice the limit.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(MediaError, match="image is too large"):
        load_image(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"^gone\.jpg: file not found$"):
        read_image_info(tmp_path / "gone.jpg")


@pytest.mark.parametrize(
    ("mode", "expected_mode"),
    [
        ("RGB", "RGB"),
        ("RGBA", "RGB"),
        ("P", "RGB"),
        ("CMYK", "RGB"),
        ("L", "L"),
        ("LA", "L"),
        ("1", "L"),
        ("I;16", "L"),
    ],
)
def test_load_image_gives_rgb_or_l(tmp_path: Path, mode: str, expected_mode: str) -> None:
    extension = "jpg" if mode == "CMYK" else "tif" if mode == "I;16" else "png"
    path = tmp_path / f"img.{extension}"
    if mode == "I;16":
        ramp = np.linspace(1000, 3000, 16 * 8, dtype=np.uint16).reshape(8, 16)
        Image.fromarray(ramp).save(path)
    else:
        make_test_image(path, (16, 8), mode=mode)

    image = load_image(path)

    assert image.mode == expected_mode
    assert image.size == (16, 8)
    if mode == "I;16":
        # 16-bit samples are stretched onto the full 8-bit range.
        assert image.getpixel((0, 0)) == 0
        assert image.getpixel((15, 7)) == 255


def test_pixel_checksum_hashes_decoded_pixels_before_orientation(tmp_path: Path) -> None:
    upright = make_test_image(tmp_path / "a.png", (20, 10))
    tagged = make_test_image(tmp_path / "b.png", (20, 10), orientation=6)
    other = make_test_image(tmp_path / "c.png", (20, 10), color=(0, 0, 0))

    assert pixel_checksum(upright) == pixel_checksum(tagged)
    assert pixel_checksum(upright) != pixel_checksum(other)
    assert len(pixel_checksum(upright)) == 32
