"""Synthetic media for tests: images and videos whose pixels say what they are.

Marked frame ``i`` is filled with `marker_color` ``(i)`` and has a white block in its top-left
quarter, so a test can tell which frame a decoder returned (`frame_index`) and which way up it
is, in spite of lossy compression. Test images carry the same white block.
"""

from collections import Counter
from pathlib import Path
from typing import Literal

import av
import numpy as np
from numpy.typing import NDArray
from PIL import ExifTags, Image

from tessera.ingest.media._typing import StrPath

# Six levels a channel, 51 apart: colours stay far apart through YUV 4:2:0 and lossy coding.
_LEVELS = np.arange(0, 256, 51, dtype=np.int32)
MAX_MARKED_FRAMES = len(_LEVELS) ** 3


def marker_color(index: int) -> tuple[int, int, int]:
    """The RGB colour that marks frame ``index`` (0 <= index < `MAX_MARKED_FRAMES`)."""
    if not 0 <= index < MAX_MARKED_FRAMES:
        raise ValueError(f"frame index {index} cannot be marked")
    base = len(_LEVELS)
    return (
        int(_LEVELS[index // (base * base)]),
        int(_LEVELS[index // base % base]),
        int(_LEVELS[index % base]),
    )


def marked_frame(index: int, width: int, height: int) -> NDArray[np.uint8]:
    """The RGB pixels of marked frame ``index``: its colour, white in the top-left quarter."""
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = marker_color(index)
    pixels[: height // 2, : width // 2] = 255
    return pixels


def frame_index(pixels: NDArray[np.uint8]) -> int:
    """Which marked frame ``pixels`` (RGB, in any orientation) shows.

    Each quarter's middle pixel is matched to the nearest marker colour; three quarters carry
    the marker and one the white block, so the majority wins.
    """
    height, width = pixels.shape[:2]
    votes = Counter(
        _nearest_marker(pixels[height * row // 4, width * column // 4])
        for row in (1, 3)
        for column in (1, 3)
    )
    return votes.most_common(1)[0][0]


def _nearest_marker(colour: NDArray[np.uint8]) -> int:
    nearest = np.abs(_LEVELS[:, None] - colour.astype(np.int32)[None, :]).argmin(axis=0)
    base = len(_LEVELS)
    return int(nearest[0] * base * base + nearest[1] * base + nearest[2])


def make_test_video(
    path: StrPath,
    frames: int,
    size: tuple[int, int] = (64, 48),
    *,
    codec: Literal["libx264", "mpeg4"] = "libx264",
    gop: int = 10,
    fps: int = 25,
    b_frames: int = 0,
    rotation: int = 0,
) -> Path:
    """Write a video of ``frames`` marked frames of ``size`` (width, height) to ``path``.

    The container follows the extension (``.mp4``, ``.mkv``, ``.avi``, ...). ``gop`` is the
    key frame interval; ``b_frames`` the B-frames between references (libx264 only);
    ``rotation`` the display rotation recorded for the stream, degrees counterclockwise.
    """
    if frames > MAX_MARKED_FRAMES:
        raise ValueError(f"at most {MAX_MARKED_FRAMES} frames can be marked")
    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.gop_size = gop
        if codec == "libx264":
            stream.options = {
                "preset": "ultrafast",
                "keyint_min": str(gop),
                "sc_threshold": "0",
                "bf": str(b_frames),
            }
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(marked_frame(index, width, height), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return Path(path)


def make_test_image(
    path: StrPath,
    size: tuple[int, int] = (32, 24),
    *,
    color: tuple[int, int, int] = (200, 30, 30),
    orientation: int = 1,
    mode: str = "RGB",
) -> Path:
    """Write an image of ``size`` (width, height) as stored, before any EXIF orientation.

    It is ``color`` with white in the top-left quarter, converted to ``mode``; the format
    follows the extension. An ``orientation`` other than 1 is recorded as the EXIF tag.
    """
    width, height = size
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = color
    pixels[: height // 2, : width // 2] = 255
    image = Image.fromarray(pixels).convert(mode)
    exif = Image.Exif()
    if orientation != 1:
        exif[ExifTags.Base.Orientation] = orientation
    image.save(path, exif=exif)
    return Path(path)
