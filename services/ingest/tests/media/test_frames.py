import pytest

from tessera.ingest.media import (
    VIDEO_CHUNK_SIZE,
    SegmentLayout,
    auto_chunk_size,
    frame_numbers,
    frame_step,
    segments,
)


@pytest.mark.parametrize(
    ("frame_filter", "step"),
    [("", 1), ("  ", 1), ("step=1", 1), ("step=3", 3), ("step = 12", 12), (" step=5 ", 5)],
)
def test_frame_step(frame_filter: str, step: int) -> None:
    assert frame_step(frame_filter) == step


@pytest.mark.parametrize("frame_filter", ["step=0", "step=-2", "step=x", "every=2", "step=2;x"])
def test_invalid_frame_filter(frame_filter: str) -> None:
    with pytest.raises(ValueError, match="the only supported form is 'step=N'"):
        frame_step(frame_filter)


def test_frame_numbers_defaults_to_every_frame() -> None:
    assert frame_numbers(5) == range(0, 5)


def test_frame_numbers_start_stop_step() -> None:
    assert list(frame_numbers(20, 3, 11, "step=4")) == [3, 7, 11]
    assert list(frame_numbers(20, 3, 10, "step=4")) == [3, 7]
    assert list(frame_numbers(20, 5, None, "step=5")) == [5, 10, 15]


def test_stop_frame_is_clamped_and_zero_means_last_as_in_cvat() -> None:
    assert frame_numbers(10, 2, 100) == range(2, 10)
    assert frame_numbers(10, 2, 0) == range(2, 10)
    assert frame_numbers(10, 0, 0) == range(0, 10)


@pytest.mark.parametrize(
    ("size", "start", "stop", "message"),
    [
        (0, 0, None, "no frames"),
        (10, -1, None, "start_frame -1 is outside"),
        (10, 10, None, "start_frame 10 is outside"),
        (10, 5, 3, "stop_frame 3 is before start_frame 5"),
        (10, 0, -1, "stop_frame -1 is negative"),
    ],
)
def test_frame_numbers_validation(size: int, start: int, stop: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        frame_numbers(size, start, stop)


def test_segments_without_overlap_leave_a_short_last_segment() -> None:
    assert segments(10, 4, 0) == SegmentLayout(4, 0, [(0, 3), (4, 7), (8, 9)])


def test_segments_with_overlap() -> None:
    assert segments(10, 4, 1) == SegmentLayout(4, 1, [(0, 3), (3, 6), (6, 9)])
    # No segment would lie wholly inside the previous one: start 8 is not taken.
    assert segments(10, 4, 2).segments == [(0, 3), (2, 5), (4, 7), (6, 9)]


def test_one_segment_when_size_is_unset_or_too_large() -> None:
    assert segments(7, None, 0) == SegmentLayout(7, 0, [(0, 6)])
    assert segments(7, 0, 0) == SegmentLayout(7, 0, [(0, 6)])
    assert segments(7, 100, 0) == SegmentLayout(7, 0, [(0, 6)])
    # CVAT's video default overlap of 5 is clamped to half the segment and still gives one.
    assert segments(7, 0, 5) == SegmentLayout(7, 3, [(0, 6)])


def test_overlap_is_clamped_to_half_a_segment_as_cvat_does() -> None:
    layout = segments(20, 6, 5)

    assert layout.overlap == 3
    assert layout.segments == [(0, 5), (3, 8), (6, 11), (9, 14), (12, 17), (15, 19)]


def test_segments_of_single_frame_and_segment_size_one() -> None:
    assert segments(1, 1, 0).segments == [(0, 0)]
    assert segments(3, 1, 4) == SegmentLayout(1, 0, [(0, 0), (1, 1), (2, 2)])


@pytest.mark.parametrize(
    ("count", "size", "overlap", "message"),
    [
        (0, 10, 0, "at least one frame"),
        (10, -1, 0, "segment_size -1 is negative"),
        (10, 5, -1, "overlap -1 is negative"),
    ],
)
def test_segments_validation(count: int, size: int, overlap: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segments(count, size, overlap)


@pytest.mark.parametrize(
    ("width", "height", "chunk"),
    [
        (1920, 1080, 36),
        (2560, 1440, 20),
        (3840, 2160, 9),
        (7680, 4320, 2),
        (1280, 720, 72),
        (100, 100, 72),
    ],
)
def test_auto_chunk_size(width: int, height: int, chunk: int) -> None:
    assert auto_chunk_size(width, height) == chunk


def test_auto_chunk_size_validation_and_video_constant() -> None:
    assert VIDEO_CHUNK_SIZE == 36
    with pytest.raises(ValueError, match="invalid frame size 0x10"):
        auto_chunk_size(0, 10)
