"""CVAT's data chunks: image-set ZIPs and MP4 video chunks, and single compressed frames.

Matches ``ZipChunkWriter``, ``ZipCompressedChunkWriter``, ``Mpeg4ChunkWriter`` and
``Mpeg4CompressedChunkWriter`` in CVAT's ``cvat/apps/engine/media_extractors.py``.
"""

import io
import shutil
import zipfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Literal

import av
import numpy as np
from av.video.stream import VideoStream
from numpy.typing import NDArray
from PIL import Image, ImageOps

from tessera.ingest.media._typing import StrPath
from tessera.ingest.media.errors import MediaError
from tessera.ingest.media.images import (
    decode_oriented,
    exif_orientation,
    load_image,
    open_image,
    to_8bit,
)

VideoChunkCodec = Literal["libx264", "mpeg4"]

# 8-bit planar YUV formats x264 encodes losslessly as they are.
_LOSSLESS_YUV = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"})

# CVAT's video chunks play at a fixed 25 frames per second, whatever the source's rate.
VIDEO_CHUNK_FPS = 25

# A fixed entry time keeps chunks byte-for-byte reproducible.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# How an EXIF-rotated original is re-encoded, by Pillow format: losslessly where the format
# allows, and as CVAT does for JPEG (quality 100, no chroma subsampling) and TIFF (LZW).
_ORIGINAL_SAVE_OPTIONS: dict[str, tuple[str, dict[str, object]]] = {
    "JPEG": ("JPEG", {"quality": 100, "subsampling": 0}),
    "MPO": ("JPEG", {"quality": 100, "subsampling": 0}),
    "PNG": ("PNG", {}),
    "BMP": ("BMP", {}),
    "TIFF": ("TIFF", {"compression": "tiff_lzw"}),
    "WEBP": ("WEBP", {"lossless": True}),
}


def compress_frame(image: Image.Image | StrPath, quality: int) -> bytes:
    """One frame as a JPEG at ``quality`` (1..100), oriented as displayed.

    Grey-scale sources stay grey-scale (mode ``L``) and everything else is RGB, converted as
    `to_8bit` does; CVAT's current ``_compress_image`` keeps ``L`` the same way. A path is
    decoded with `load_image` (`MediaError` on a bad file); an image whose EXIF orientation is
    set is turned first, as CVAT does. Raises `ValueError` for a bad quality.
    """
    _check_quality(quality)
    if isinstance(image, Image.Image):
        if exif_orientation(image) != 1:
            image = ImageOps.exif_transpose(image)
        image = to_8bit(image)
    else:
        image = load_image(image)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def write_image_chunk(
    images: Iterable[Image.Image | StrPath], out: BinaryIO, *, quality: int | None
) -> None:
    """Write CVAT's "imageset" chunk of ``images`` to ``out``: a ZIP with stored entries.

    With a ``quality``, entry ``i`` is ``f"{i:06d}.jpeg"``, made by `compress_frame`. With
    ``quality=None`` (original chunks) the items must be paths, and entry ``i`` is named
    ``f"{i:06d}"`` plus the file's own extension, as CVAT's ``ZipChunkWriter`` names them. It
    holds the file's bytes unchanged, unless the file has an EXIF orientation other than 1:
    then, as in CVAT, it holds the image turned as displayed and re-encoded in its own format
    (losslessly except JPEG, at quality 100), so that every client sees the frame at the size
    the task reports. Raises `MediaError` for a bad image, `ValueError` for a bad quality or a
    decoded image given for an original chunk.
    """
    if quality is not None:
        _check_quality(quality)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, item in enumerate(images):
            if quality is not None:
                archive.writestr(_entry(f"{i:06d}.jpeg"), compress_frame(item, quality))
            elif isinstance(item, Image.Image):
                raise ValueError("an original-quality chunk is built from image files, not images")
            else:
                _write_original(archive, i, Path(item))


def write_video_chunk(
    frames: Iterable[Image.Image | NDArray[np.uint8] | av.VideoFrame],
    out: BinaryIO,
    *,
    quality: int,
    fps: int = VIDEO_CHUNK_FPS,
    original: bool = False,
    codec: VideoChunkCodec | None = None,
) -> None:
    """Encode ``frames`` (PIL images, RGB ``uint8`` arrays of shape (h, w, 3), or decoded
    video frames) as an MP4.

    The codec is H.264 (libx264) when PyAV's FFmpeg has it, else MPEG-4 Part 2; ``codec``
    forces one of ``"libx264"`` and ``"mpeg4"``. ``quality`` 1..100 maps to x264's CRF as in
    CVAT, ``round(51 * (100 - quality) / 99)`` (100 gives 0, lossless, or 1 in the baseline
    profile of compressed chunks, which has no lossless mode), and to an MPEG-4
    quantiser from 2 to 31 likewise. A compressed chunk (the default) uses CVAT's compressed
    settings (baseline profile, no loop filter; preset veryfast) and halves the size until
    the height is below 1080; ``original=True`` keeps the size and encodes with preset
    ultrafast, as CVAT's original video chunks (task creation makes its original chunks with
    `write_lossless_video_chunk` instead). Odd sizes are padded to even ones for YUV 4:2:0.
    All frames must have the size of the first. Raises `ValueError` for no frames, a bad
    quality or codec, or frames of different sizes.
    """
    _check_quality(quality)
    if codec is None:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    elif codec not in ("libx264", "mpeg4"):
        raise ValueError(f"unsupported video chunk codec {codec!r}")
    with av.open(out, mode="w", format="mp4") as container:
        stream: VideoStream | None = None
        source_size = (0, 0)
        for i, item in enumerate(frames):
            frame = _video_frame(item, i, fps)
            if stream is None:
                source_size = (frame.width, frame.height)
                stream = container.add_stream(codec, rate=fps)
                stream.width, stream.height = _encoded_size(*source_size, downscale=not original)
                stream.pix_fmt = "yuv420p"
                stream.options = _encoder_options(codec, quality, original=original)
            elif (frame.width, frame.height) != source_size:
                raise ValueError(
                    f"frame {i} is {frame.width}x{frame.height}, "
                    f"unlike the {source_size[0]}x{source_size[1]} of frame 0"
                )
            # PyAV scales each frame to the stream's size and pixel format as it encodes.
            container.mux(stream.encode(frame))
        if stream is None:
            raise ValueError("a video chunk needs at least one frame")
        container.mux(stream.encode(None))


def write_lossless_video_chunk(
    frames: Iterable[NDArray[np.uint8] | av.VideoFrame],
    out: BinaryIO,
    *,
    fps: int = VIDEO_CHUNK_FPS,
) -> None:
    """Encode ``frames`` as an MP4 that decodes to exactly these frames (original chunks).

    Decoded video frames in 8-bit planar YUV keep their own pixel format and are encoded
    with H.264 at QP 0 (lossless), so the chunk decodes to the very samples the source
    decodes to; RGB ``uint8`` arrays and frames in other formats are encoded losslessly as
    RGB (x264's RGB variant). Both use preset ultrafast, as CVAT's original video chunks.
    Raises `ValueError` for no frames or frames of different sizes.
    """
    with av.open(out, mode="w", format="mp4") as container:
        stream: VideoStream | None = None
        pixel_format = ""
        source_size = (0, 0)
        for i, item in enumerate(frames):
            frame = _video_frame(item, i, fps)
            if stream is None:
                source_size = (frame.width, frame.height)
                even = frame.width % 2 == 0 and frame.height % 2 == 0
                pixel_format = (
                    frame.format.name if frame.format.name in _LOSSLESS_YUV and even else "rgb24"
                )
                codec = "libx264rgb" if pixel_format == "rgb24" else "libx264"
                added = container.add_stream(codec, rate=fps)
                assert isinstance(added, VideoStream)
                stream = added
                stream.width, stream.height = source_size
                stream.pix_fmt = pixel_format
                stream.options = {"qp": "0", "preset": "ultrafast"}
            elif (frame.width, frame.height) != source_size:
                raise ValueError(
                    f"frame {i} is {frame.width}x{frame.height}, "
                    f"unlike the {source_size[0]}x{source_size[1]} of frame 0"
                )
            if frame.format.name != pixel_format:
                frame = frame.reformat(format=pixel_format)
                frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        if stream is None:
            raise ValueError("a video chunk needs at least one frame")
        container.mux(stream.encode(None))


def _video_frame(
    item: Image.Image | NDArray[np.uint8] | av.VideoFrame, i: int, fps: int
) -> av.VideoFrame:
    """An encoder's input frame numbered ``i`` at ``fps`` (decoded frames keep their pixels)."""
    if isinstance(item, av.VideoFrame):
        frame = item
    elif isinstance(item, Image.Image):
        frame = av.VideoFrame.from_ndarray(np.asarray(item.convert("RGB")), format="rgb24")
    else:
        frame = av.VideoFrame.from_ndarray(item, format="rgb24")
    frame.pts, frame.time_base = i, Fraction(1, fps)
    return frame


def _write_original(archive: zipfile.ZipFile, index: int, path: Path) -> None:
    entry = _entry(f"{index:06d}{path.suffix}")
    with open_image(path) as image:
        if exif_orientation(image) != 1:
            image_format, options = _ORIGINAL_SAVE_OPTIONS[image.format or ""]
            oriented = decode_oriented(image, path.name)
            buffer = io.BytesIO()
            oriented.save(buffer, format=image_format, **options)
            archive.writestr(entry, buffer.getvalue())
            return
    try:
        with path.open("rb") as source, archive.open(entry, "w") as target:
            shutil.copyfileobj(source, target)
    except OSError as exc:
        raise MediaError(path.name, f"cannot read the file ({exc.strerror})") from None


def _entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    entry.external_attr = 0o644 << 16
    return entry


def _encoded_size(width: int, height: int, *, downscale: bool) -> tuple[int, int]:
    factor = 1
    while downscale and height / factor >= 1080:
        factor *= 2
    width, height = width // factor, height // factor
    return width + width % 2, height + height % 2


def _encoder_options(codec: str, quality: int, *, original: bool) -> dict[str, object]:
    if codec == "mpeg4":
        quantiser = str(2 + round(29 * (100 - quality) / 99))
        return {"qmin": quantiser, "qmax": quantiser}
    crf = round(51 * (100 - quality) / 99)
    if original:
        return {"crf": str(crf), "preset": "ultrafast"}
    # CRF 0 is lossless, which x264 refuses in the baseline profile. Preset veryfast
    # instead of CVAT's default (medium): a third of the encoding time for chunks about
    # 13% larger (measured on 1080p footage), as creation is bound by encoding.
    return {
        "preset": "veryfast",
        "profile": "baseline",
        "coder": "0",
        "crf": str(max(crf, 1)),
        "wpredp": "0",
        "flags": "-loop",
    }


def _check_quality(quality: int) -> None:
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be within 1..100, not {quality}")
