"""Video files through PyAV: a key-frame index built in one pass, and frame reads that seek."""

import bisect
import hashlib
import itertools
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath

import av
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from numpy.typing import NDArray

from tessera.ingest.media._typing import StrPath
from tessera.ingest.media.errors import MediaError

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
)


@dataclass(frozen=True)
class KeyFrame:
    """A key frame that seeking by its ``pts`` lands on exactly.

    ``checksum`` is the MD5 of its RGB24 pixels before rotation, as CVAT's manifest records it.
    """

    number: int
    pts: int
    checksum: str


@dataclass(frozen=True)
class VideoIndex:
    """What one decoding pass over a video learnt about its first video stream.

    ``frame_count`` counts decoded frames, not the container's claim. ``width`` and ``height``
    are as displayed, after ``rotation`` (degrees counterclockwise: 0, 90, 180 or 270, from the
    stream's display matrix). ``fps`` is the average frame rate, None when unknown.
    ``keyframes`` is ordered by number and always starts with frame 0.
    """

    frame_count: int
    width: int
    height: int
    rotation: int
    fps: Fraction | None
    keyframes: tuple[KeyFrame, ...]

    def keyframe_before(self, number: int) -> KeyFrame:
        """The last indexed key frame at or before frame ``number``."""
        position = bisect.bisect_right(self.keyframes, number, key=lambda key: key.number)
        return self.keyframes[position - 1]


def is_video_name(name: str) -> bool:
    """Whether ``name`` has one of `VIDEO_EXTENSIONS` (case-insensitive)."""
    return PurePosixPath(name).suffix.lower() in VIDEO_EXTENSIONS


def index_video(path: StrPath) -> VideoIndex:
    """Decode every frame of the video at ``path`` once and index it.

    A key frame is indexed only when seeking to its ``pts`` lands on it, which CVAT's manifest
    builder checks the same way. Raises `MediaError` when the file is not a readable video,
    has no video stream, does not start with a key frame, has frames without increasing
    timestamps, fails to decode, or decodes to fewer frames than its container declares
    (a truncated file).
    """
    name = Path(path).name
    try:
        with (
            closing(av.open(str(path))) as container,
            closing(av.open(str(path))) as checker,
        ):
            stream = _video_stream(container, name)
            check_stream = checker.streams.video[0]
            count = 0
            previous_pts: int | None = None
            keyframes: list[KeyFrame] = []
            first: VideoFrame | None = None
            for frame in container.decode(stream):
                if first is None:
                    first = frame
                    if not frame.key_frame:
                        raise MediaError(name, "the first frame is not a key frame")
                if frame.pts is None:
                    raise MediaError(name, f"frame {count} has no timestamp")
                if previous_pts is not None and frame.pts <= previous_pts:
                    raise MediaError(name, f"timestamps do not increase at frame {count}")
                if frame.key_frame and _seek_lands_on(checker, check_stream, frame.pts):
                    checksum = hashlib.md5(
                        frame.to_ndarray(format="rgb24").tobytes(), usedforsecurity=False
                    ).hexdigest()
                    keyframes.append(KeyFrame(count, frame.pts, checksum))
                previous_pts = frame.pts
                count += 1
            declared = stream.frames
            rate = stream.average_rate or stream.guessed_rate
    except av.FFmpegError as exc:
        raise MediaError(name, f"not a readable video ({_describe(exc)})") from None
    if first is None:
        raise MediaError(name, "the video has no decodable frames")
    if count < declared:
        raise MediaError(
            name, f"truncated: the container declares {declared} frames but {count} decode"
        )
    rotation = _rotation(first)
    width, height = first.width, first.height
    if rotation in (90, 270):
        width, height = height, width
    return VideoIndex(
        frame_count=count,
        width=width,
        height=height,
        rotation=rotation,
        fps=Fraction(rate) if rate else None,
        keyframes=tuple(keyframes),
    )


def read_frames(
    path: StrPath, index: VideoIndex, numbers: Sequence[int]
) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """Yield ``(number, pixels)`` for each frame in ``numbers``, in order.

    ``pixels`` is an RGB ``uint8`` array of shape (height, width, 3), rotated for display;
    otherwise as `decode_frames`.
    """
    for number, frame in decode_frames(path, index, numbers):
        yield number, to_rgb(frame, index.rotation)


def decode_frames(
    path: StrPath, index: VideoIndex, numbers: Sequence[int]
) -> Iterator[tuple[int, VideoFrame]]:
    """Yield ``(number, frame)`` for each frame in ``numbers``, in order, as decoded.

    ``numbers`` must be strictly increasing frame numbers below ``index.frame_count``, else
    `ValueError`. Frames are in the stream's own pixel format and not rotated. The reader
    seeks to the key frame before a wanted frame only when that is closer than decoding on
    from where it is, so runs of consecutive frames cost one seek. Raises `MediaError` when
    the file turns out to disagree with ``index`` or fails to decode.
    """
    wanted = list(numbers)
    _check_numbers(wanted, index.frame_count)
    if not wanted:
        return
    name = Path(path).name
    try:
        with closing(av.open(str(path))) as container:
            stream = _video_stream(container, name)
            frames: Iterator[VideoFrame] | None = None
            position = 0  # the number of the frame that `frames` yields next
            for number in wanted:
                key = index.keyframe_before(number)
                if frames is None or key.number > position:
                    container.seek(key.pts, stream=stream)
                    frames = container.decode(stream)
                    position = key.number
                    landed = next(frames, None)
                    if landed is None or landed.pts != key.pts:
                        raise MediaError(
                            name, f"seeking to key frame {key.number} did not land on it"
                        )
                    frame = landed
                else:
                    frame = _next_frame(frames, name, position)
                while position < number:
                    position += 1
                    frame = _next_frame(frames, name, position)
                position += 1
                yield number, frame
    except av.FFmpegError as exc:
        raise MediaError(name, f"not a readable video ({_describe(exc)})") from None


def _video_stream(container: InputContainer, name: str) -> VideoStream:
    if not container.streams.video:
        raise MediaError(name, "the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _seek_lands_on(container: InputContainer, stream: VideoStream, pts: int) -> bool:
    container.seek(pts, stream=stream)
    landed = next(container.decode(stream), None)
    return landed is not None and landed.pts == pts


def _next_frame(frames: Iterator[VideoFrame], name: str, number: int) -> VideoFrame:
    frame = next(frames, None)
    if frame is None:
        raise MediaError(name, f"frame {number} is missing: the video ends before it")
    return frame


def _check_numbers(numbers: list[int], frame_count: int) -> None:
    for previous, current in itertools.pairwise(numbers):
        if current <= previous:
            raise ValueError(f"frame numbers must increase: {current} follows {previous}")
    if numbers and (numbers[0] < 0 or numbers[-1] >= frame_count):
        raise ValueError(f"frame numbers must be within 0..{frame_count - 1}")


def _rotation(frame: VideoFrame) -> int:
    # PyAV gives the display matrix's counterclockwise angle in -180..180; only quarter turns
    # are meaningful for frames.
    return round(frame.rotation / 90) % 4 * 90


def to_rgb(frame: VideoFrame, rotation: int) -> NDArray[np.uint8]:
    """A decoded frame as RGB ``uint8`` pixels, turned by ``rotation`` degrees."""
    pixels = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
    if rotation:
        pixels = np.ascontiguousarray(np.rot90(pixels, rotation // 90))
    return pixels


def _describe(exc: av.FFmpegError) -> str:
    # FFmpeg's messages end with the path or the failing call; the client needs neither.
    return exc.strerror or type(exc).__name__
