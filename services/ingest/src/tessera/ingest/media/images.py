"""Still images: validation, size after EXIF orientation, decoding for chunks."""

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from tessera.ingest.media._typing import StrPath
from tessera.ingest.media.errors import MediaError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

# Pillow plugins tried on open: the supported formats only, so that no other decoder ever
# sees untrusted bytes. JPEG also covers MPO, the multi-picture JPEG that phones write.
_PIL_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP")

# EXIF orientations that turn the image by a quarter, so that width and height swap.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class ImageInfo:
    """Size of an image as displayed, after its EXIF orientation is applied."""

    width: int
    height: int


def is_image_name(name: str) -> bool:
    """Whether ``name`` has one of the supported image extensions (case-insensitive)."""
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def read_image_info(path: StrPath) -> ImageInfo:
    """Validate the image at ``path`` by decoding it, and return its displayed size.

    Every byte of image data is decoded (JPEG at a reduced scale, which reads the same data).

    Orientations 5 to 8 swap width and height, as Pillow's ``ImageOps.exif_transpose`` does.
    Raises `MediaError` for an unsupported extension, content that is not one of the supported
    formats, a truncated or corrupt file, or an image over Pillow's ``MAX_IMAGE_PIXELS``.
    """
    name = Path(path).name
    with open_image(path) as image:
        if image.format in ("JPEG", "MPO"):
            # Decoding at an eighth of the size still reads every entropy-coded byte, so
            # truncation is found, in half the time of a full decode.
            width, height = image.size
            image.draft(image.mode, (max(width // 8, 1), max(height // 8, 1)))
            _load(image, name)
        else:
            _load(image, name)
            width, height = image.size
        # TIFF is the exception: Pillow turns it while loading and drops the tag, so the
        # orientation read after loading is 1 and the size is already the displayed one.
        if _orientation(image, name) in _SWAPPING_ORIENTATIONS:
            width, height = height, width
        return ImageInfo(width, height)


def load_image(path: StrPath) -> Image.Image:
    """Decode the image at ``path``, oriented as displayed, in mode ``RGB`` or ``L``.

    Modes are converted as `to_8bit` does. Raises `MediaError` as `read_image_info` does.
    """
    name = Path(path).name
    image = open_image(path)
    try:
        _load(image, name)
        if getattr(image, "fp", None) is None and _orientation(image, name) == 1:
            # Upright, and Pillow closed the file after reading it (single-frame images):
            # the decoded image itself, without decode_oriented's copy.
            return to_8bit(image)
        with image:
            return to_8bit(decode_oriented(image, name))
    except BaseException:
        image.close()
        raise


def pixel_checksum(path: StrPath) -> str:
    """MD5 of the decoded pixels of the image at ``path``, as CVAT's manifests record it.

    CVAT hashes ``Image.open(path).tobytes()``: the pixels in the file's own mode, before EXIF
    orientation. Raises `MediaError` as `read_image_info` does.
    """
    name = Path(path).name
    with open_image(path) as image:
        _load(image, name)
        return hashlib.md5(image.tobytes(), usedforsecurity=False).hexdigest()


def open_image(path: StrPath) -> Image.Image:
    """Open the image at ``path``, parsing its header only; the caller closes it.

    Raises `MediaError` for an unsupported extension, content that is not one of the supported
    formats, a corrupt header, or an image over Pillow's ``MAX_IMAGE_PIXELS``.
    """
    name = Path(path).name
    if not is_image_name(name):
        raise MediaError(name, f"unsupported image extension {PurePosixPath(name).suffix!r}")
    try:
        image = Image.open(path, formats=_PIL_FORMATS)
    except FileNotFoundError:
        raise MediaError(name, "file not found") from None
    except Image.DecompressionBombError:
        raise MediaError(name, _too_large_reason()) from None
    except UnidentifiedImageError:
        raise MediaError(name, "not a readable image (unrecognised content)") from None
    except Exception as exc:
        # Pillow's parsers raise whatever the malformed header provokes (OSError, SyntaxError,
        # ValueError, struct.error, ...): all of them mean the same thing to the caller.
        raise MediaError(name, f"not a readable image ({_describe(exc)})") from None
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > limit:
        image.close()
        raise MediaError(name, _too_large_reason())
    return image


def decode_oriented(image: Image.Image, name: str) -> Image.Image:
    """Fully decode an image from `open_image` and return a copy oriented as displayed.

    The copy keeps the source's mode. ``name`` is the file name for errors: `MediaError` when
    the pixel data is truncated or corrupt.
    """
    _load(image, name)
    try:
        return ImageOps.exif_transpose(image)
    except Exception as exc:
        raise MediaError(name, f"unreadable EXIF data ({_describe(exc)})") from None


def exif_orientation(image: Image.Image) -> int:
    """EXIF orientation of an opened image (1 when absent or out of range 1..8)."""
    value = image.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def to_8bit(image: Image.Image) -> Image.Image:
    """``image`` in mode ``L`` or ``RGB``; ``L`` and ``RGB`` images come back as they are.

    Grey-scale sources (1-bit, 8-bit with or without alpha, 16-bit, 32-bit) give ``L``, with
    16- and 32-bit samples stretched linearly from their minimum and maximum onto 0..255 (CVAT
    rescales such images too). Every other mode gives ``RGB``, dropping any alpha.
    """
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("1", "LA", "La"):
        return image.convert("L")
    if image.mode.startswith("I") or image.mode == "F":
        samples = np.asarray(image, dtype=np.float64)
        low, high = float(samples.min()), float(samples.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        return Image.fromarray(((samples - low) * scale).round().astype(np.uint8))
    return image.convert("RGB")


def _load(image: Image.Image, name: str) -> None:
    try:
        image.load()
    except Exception as exc:
        raise MediaError(name, f"not a readable image ({_describe(exc)})") from None


def _orientation(image: Image.Image, name: str) -> int:
    try:
        return exif_orientation(image)
    except Exception as exc:
        raise MediaError(name, f"unreadable EXIF data ({_describe(exc)})") from None


def _describe(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, EOFError) or "truncated" in text or "broken data stream" in text:
        return "truncated"
    return text or type(exc).__name__


def _too_large_reason() -> str:
    return f"image is too large (over {Image.MAX_IMAGE_PIXELS} pixels)"
