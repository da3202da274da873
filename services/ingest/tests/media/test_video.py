from fractions import Fraction
from pathlib import Path
from typing import Literal

import pytest

from tessera.ingest.media import MediaError, index_video, is_video_name, read_frames
from tessera.ingest.media.testing import frame_index, make_test_video


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # B-frames make decode order differ from display order, which seeking must survive.
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    return make_test_video(path, 50, (64, 48), gop=8, b_frames=2)


def test_is_video_name() -> None:
    assert is_video_name("a/clip.MP4")
    assert is_video_name("clip.mkv")
    assert not is_video_name("clip.jpg")


def test_index_counts_frames_and_finds_seekable_key_frames(h264: Path) -> None:
    index = index_video(h264)

    assert index.frame_count == 50
    assert (index.width, index.height, index.rotation) == (64, 48, 0)
    assert index.fps == Fraction(25)
    assert [key.number for key in index.keyframes] == [0, 8, 16, 24, 32, 40, 48]
    assert index.keyframes[0].pts == 0
    assert all(len(key.checksum) == 32 for key in index.keyframes)
    assert len({key.checksum for key in index.keyframes}) == len(index.keyframes)


def test_keyframe_before(h264: Path) -> None:
    index = index_video(h264)

    assert index.keyframe_before(0).number == 0
    assert index.keyframe_before(7).number == 0
    assert index.keyframe_before(8).number == 8
    assert index.keyframe_before(49).number == 48


def test_read_frames_returns_the_requested_frames(h264: Path) -> None:
    index = index_video(h264)
    wanted = [0, 1, 2, 7, 9, 23, 24, 25, 41, 49]

    frames = list(read_frames(h264, index, wanted))

    assert [number for number, _ in frames] == wanted
    assert [frame_index(pixels) for _, pixels in frames] == wanted
    assert all(pixels.shape == (48, 64, 3) for _, pixels in frames)


def test_read_every_frame_in_one_pass(h264: Path) -> None:
    index = index_video(h264)

    numbers = [frame_index(pixels) for _, pixels in read_frames(h264, index, range(50))]

    assert numbers == list(range(50))


def test_read_frames_validates_numbers(h264: Path) -> None:
    index = index_video(h264)

    with pytest.raises(ValueError, match="must increase: 3 follows 5"):
        list(read_frames(h264, index, [5, 3]))
    with pytest.raises(ValueError, match=r"within 0\.\.49"):
        list(read_frames(h264, index, [10, 50]))
    assert list(read_frames(h264, index, [])) == []


@pytest.mark.parametrize(("extension", "codec"), [("mkv", "libx264"), ("avi", "mpeg4")])
def test_other_containers_and_codecs(
    tmp_path: Path, extension: str, codec: Literal["libx264", "mpeg4"]
) -> None:
    path = make_test_video(tmp_path / f"clip.{extension}", 30, (48, 32), codec=codec, gop=10)

    index = index_video(path)

    assert index.frame_count == 30
    assert (index.width, index.height) == (48, 32)
    assert [key.number for key in index.keyframes] == [0, 10, 20]
    frames = list(read_frames(path, index, [3, 15, 29]))
    assert [frame_index(pixels) for _, pixels in frames] == [3, 15, 29]


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_display_rotation_is_applied(tmp_path: Path, rotation: int) -> None:
    path = make_test_video(tmp_path / "phone.mp4", 12, (64, 48), gop=6, rotation=rotation)

    index = index_video(path)

    assert index.rotation == rotation % 360
    expected_size = (64, 48) if rotation == 180 else (48, 64)
    assert (index.width, index.height) == expected_size
    [(_, pixels)] = list(read_frames(path, index, [7]))
    assert pixels.shape == (expected_size[1], expected_size[0], 3)
    assert frame_index(pixels) == 7
    # The white block, top-left as stored, moves counterclockwise with the rotation.
    height, width = pixels.shape[:2]
    corner = {90: (height - 3, 2), 270: (2, width - 3), 180: (height - 3, width - 3)}
    row, column = corner[rotation % 360]
    assert pixels[row, column].min() > 230


def test_truncated_mp4_is_refused(tmp_path: Path) -> None:
    path = make_test_video(tmp_path / "cut.mp4", 40, (64, 48), gop=8)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(MediaError) as caught:
        index_video(path)

    assert caught.value.file == "cut.mp4"
    assert caught.value.reason.startswith("not a readable video (")
    assert str(tmp_path) not in str(caught.value)


def test_truncated_avi_decodes_fewer_frames_than_declared(tmp_path: Path) -> None:
    path = make_test_video(tmp_path / "cut.avi", 40, (64, 48), codec="mpeg4", gop=8)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 4])

    with pytest.raises(MediaError, match=r"^cut\.avi: truncated: the container declares 40 frames"):
        index_video(path)


def test_read_frames_reports_a_file_shorter_than_its_index(tmp_path: Path) -> None:
    long = make_test_video(tmp_path / "long.mkv", 30, (48, 32), gop=10)
    index = index_video(long)
    short = make_test_video(tmp_path / "short.mkv", 25, (48, 32), gop=10)

    frames = read_frames(short, index, [23, 24, 27])

    assert [number for number, _ in [next(frames), next(frames)]] == [23, 24]
    with pytest.raises(MediaError, match=r"^short\.mkv: frame 25 is missing"):
        next(frames)


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video at all")

    with pytest.raises(MediaError, match=r"^notes\.mp4: not a readable video \("):
        index_video(path)
    with pytest.raises(MediaError, match=r"^gone\.mp4: not a readable video"):
        index_video(tmp_path / "gone.mp4")
