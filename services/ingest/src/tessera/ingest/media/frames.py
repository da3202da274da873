"""Which source frames a task keeps, how they split into segments, and the chunk size.

These follow CVAT's task creation (``cvat/apps/engine/task.py``, ``media_extractors.py`` and
``Data.get_frame_step`` in ``models.py``).
"""

import re
from typing import NamedTuple

# CVAT's compressed chunks of video tasks hold a fixed number of frames.
VIDEO_CHUNK_SIZE = 36

_STEP = re.compile(r"\s*step\s*=\s*([1-9]\d*)\s*")


def frame_step(frame_filter: str) -> int:
    """The step of a CVAT ``frame_filter``: ``""`` gives 1, ``"step=N"`` gives N (N >= 1).

    Spaces are allowed around the parts, as CVAT's pattern allows; anything else raises
    `ValueError`.
    """
    if not frame_filter.strip():
        return 1
    match = _STEP.fullmatch(frame_filter)
    if match is None:
        raise ValueError(
            f"invalid frame_filter {frame_filter!r}: the only supported form is 'step=N' "
            "with N a positive integer"
        )
    return int(match.group(1))


def frame_numbers(
    size: int, start_frame: int = 0, stop_frame: int | None = None, frame_filter: str = ""
) -> range:
    """Source frame numbers a task keeps out of ``size`` source frames (images or video frames).

    ``stop_frame`` is inclusive and is clamped to the last frame. As in CVAT (``if not stop``
    in its readers), ``None`` and ``0`` both mean the last frame. Raises `ValueError` for a
    negative or out-of-range ``start_frame``, a ``stop_frame`` before ``start_frame``, or an
    invalid ``frame_filter``.
    """
    if size <= 0:
        raise ValueError(f"the media has no frames (size {size})")
    step = frame_step(frame_filter)
    if start_frame < 0 or start_frame >= size:
        raise ValueError(f"start_frame {start_frame} is outside frames 0..{size - 1}")
    if stop_frame is not None and stop_frame < 0:
        raise ValueError(f"stop_frame {stop_frame} is negative")
    stop = size - 1 if not stop_frame else min(stop_frame, size - 1)
    if stop_frame and stop_frame < start_frame:
        raise ValueError(f"stop_frame {stop_frame} is before start_frame {start_frame}")
    return range(start_frame, stop + 1, step)


class SegmentLayout(NamedTuple):
    """Segments of a task, with the segment size and overlap actually used."""

    segment_size: int
    overlap: int
    segments: list[tuple[int, int]]


def segments(frames_count: int, segment_size: int | None, overlap: int) -> SegmentLayout:
    """Split ``frames_count`` task frames into segments as CVAT's ``_generate_segment_params``.

    ``segment_size`` 0, ``None`` or over ``frames_count`` gives one segment. The overlap used is
    ``min(overlap, segment_size // 2)``, as CVAT clamps it (CVAT's default when a task gives
    none, 5 for video and 0 otherwise, is the caller's to pass). Segments start at
    ``0, step, 2 * step, ...`` below ``frames_count - overlap`` with ``step = segment_size -
    overlap`` and each stops ``segment_size - 1`` frames later or at the last frame, so the
    last one may be shorter and no segment lies wholly inside the one before. Bounds are
    inclusive task frame numbers. Raises `ValueError` for a count below 1 or a negative size
    or overlap.
    """
    if frames_count <= 0:
        raise ValueError(f"a task needs at least one frame (frames_count {frames_count})")
    if segment_size is not None and segment_size < 0:
        raise ValueError(f"segment_size {segment_size} is negative")
    if overlap < 0:
        raise ValueError(f"overlap {overlap} is negative")
    size = frames_count if not segment_size or segment_size > frames_count else segment_size
    used_overlap = min(overlap, size // 2)
    bounds = [
        (start, min(start + size - 1, frames_count - 1))
        for start in range(0, frames_count - used_overlap, size - used_overlap)
    ]
    return SegmentLayout(size, used_overlap, bounds)


def auto_chunk_size(width: int, height: int) -> int:
    """Frames per image-set chunk when a task sets none: CVAT's rule for image chunks.

    ``max(2, min(72, 36 * 1920 * 1080 // (width * height)))``: 36 at 1080p, 20 at 2560x1440,
    9 at 4K, 2 from about 6K up, 72 for small images. Video chunks use `VIDEO_CHUNK_SIZE`.
    Raises `ValueError` for a non-positive size.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    return max(2, min(72, 36 * 1920 * 1080 // (width * height)))
