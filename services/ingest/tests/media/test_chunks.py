import io
import zipfile
from pathlib import Path
from typing import Literal

import av
import numpy as np
import pytest
from PIL import Image

from tessera.ingest.media import (
    MediaError,
    compress_frame,
    index_video,
    read_frames,
    read_image_info,
    write_image_chunk,
    write_lossless_video_chunk,
    write_video_chunk,
)
from tessera.ingest.media.testing import (
    frame_index,
    make_test_image,
    make_test_video,
    marked_frame,
)
from tessera.ingest.media.video import decode_frames


def is_white(image: Image.Image, xy: tuple[int, int]) -> bool:
    pixel = image.convert("RGB").getpixel(xy)
    assert isinstance(pixel, tuple)
    return min(pixel) > 230


def open_chunk(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


@pytest.mark.parametrize(("mode", "expected"), [("L", "L"), ("RGB", "RGB"), ("RGBA", "RGB")])
def test_compress_frame_is_a_jpeg_whose_size_follows_quality(mode: str, expected: str) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (48, 64, 4), dtype=np.uint8)
    image = Image.fromarray(noise).convert(mode)

    low = compress_frame(image, 10)
    high = compress_frame(image, 95)

    decoded = Image.open(io.BytesIO(high))
    assert (decoded.format, decoded.mode, decoded.size) == ("JPEG", expected, (64, 48))
    assert len(low) < len(high)


def test_compress_frame_orients_paths_and_images(tmp_path: Path) -> None:
    path = make_test_image(tmp_path / "turned.jpg", (40, 30), orientation=6)

    from_path = Image.open(io.BytesIO(compress_frame(path, 90)))
    with Image.open(path) as raw:
        from_image = Image.open(io.BytesIO(compress_frame(raw, 90)))

    assert from_path.size == from_image.size == (30, 40)
    # White moved from top-left to top-right.
    for decoded in (from_path, from_image):
        assert is_white(decoded, (25, 3))


@pytest.mark.parametrize("quality", [0, 101])
def test_quality_must_be_1_to_100(quality: int) -> None:
    with pytest.raises(ValueError, match=r"quality must be within 1\.\.100"):
        compress_frame(Image.new("RGB", (4, 4)), quality)
    with pytest.raises(ValueError, match=r"quality must be within 1\.\.100"):
        write_video_chunk([np.zeros((4, 4, 3), np.uint8)], io.BytesIO(), quality=quality)


def test_compressed_image_chunk(tmp_path: Path) -> None:
    first = make_test_image(tmp_path / "a.png", (40, 30), color=(0, 0, 200))
    second = Image.new("L", (20, 10), 128)
    out = io.BytesIO()

    write_image_chunk([first, second], out, quality=80)

    with open_chunk(out.getvalue()) as chunk:
        assert chunk.namelist() == ["000000.jpeg", "000001.jpeg"]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in chunk.infolist())
        images = [Image.open(io.BytesIO(chunk.read(name))) for name in chunk.namelist()]
    assert [(im.format, im.mode, im.size) for im in images] == [
        ("JPEG", "RGB", (40, 30)),
        ("JPEG", "L", (20, 10)),
    ]


def test_original_chunk_copies_files_byte_for_byte(tmp_path: Path) -> None:
    jpeg = make_test_image(tmp_path / "Photo.JPG", (40, 30))
    png = make_test_image(tmp_path / "b.png", (16, 16))
    out = io.BytesIO()

    write_image_chunk([jpeg, str(png)], out, quality=None)

    with open_chunk(out.getvalue()) as chunk:
        assert chunk.namelist() == ["000000.JPG", "000001.png"]
        assert chunk.read("000000.JPG") == jpeg.read_bytes()
        assert chunk.read("000001.png") == png.read_bytes()


@pytest.mark.parametrize("extension", ["jpg", "png", "tif", "webp"])
def test_original_chunk_turns_exif_rotated_images_as_cvat_does(
    tmp_path: Path, extension: str
) -> None:
    path = make_test_image(tmp_path / f"turned.{extension}", (40, 30), orientation=6)
    out = io.BytesIO()

    write_image_chunk([path], out, quality=None)

    with open_chunk(out.getvalue()) as chunk:
        entry = chunk.read(f"000000.{extension}")
    stored = tmp_path / f"stored.{extension}"
    stored.write_bytes(entry)
    assert read_image_info(stored) == read_image_info(path)
    with Image.open(stored) as image:
        assert image.size == (30, 40)
        assert image.getexif().get(274, 1) == 1
        assert is_white(image, (25, 3))


def test_chunks_are_reproducible(tmp_path: Path) -> None:
    path = make_test_image(tmp_path / "a.jpg")
    first, second = io.BytesIO(), io.BytesIO()

    write_image_chunk([path], first, quality=None)
    write_image_chunk([path], second, quality=None)

    assert first.getvalue() == second.getvalue()


def test_original_chunk_needs_files() -> None:
    with pytest.raises(ValueError, match="built from image files"):
        write_image_chunk([Image.new("RGB", (4, 4))], io.BytesIO(), quality=None)


def test_bad_image_in_a_chunk(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")

    with pytest.raises(MediaError, match=r"^broken\.jpg: not a readable image"):
        write_image_chunk([broken], io.BytesIO(), quality=70)
    with pytest.raises(MediaError, match=r"^broken\.jpg: not a readable image"):
        write_image_chunk([broken], io.BytesIO(), quality=None)


def decode(data: bytes) -> tuple[str, int, int, list[np.ndarray]]:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return stream.codec_context.name, stream.width, stream.height, frames


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_video_chunk_round_trip(codec: Literal["libx264", "mpeg4"]) -> None:
    frames = [marked_frame(i, 64, 48) for i in range(12)]
    out = io.BytesIO()

    write_video_chunk(frames, out, quality=70, codec=codec)

    name, width, height, decoded = decode(out.getvalue())
    assert (name, width, height) == ("h264" if codec == "libx264" else "mpeg4", 64, 48)
    assert [frame_index(pixels) for pixels in decoded] == list(range(12))


def test_video_chunk_defaults_to_h264_and_takes_pil_images() -> None:
    frames = [Image.fromarray(marked_frame(i, 32, 24)) for i in range(4)]
    out = io.BytesIO()

    write_video_chunk(frames, out, quality=50)

    name, _, _, decoded = decode(out.getvalue())
    assert name == "h264"
    assert [frame_index(pixels) for pixels in decoded] == [0, 1, 2, 3]


def test_video_chunk_quality_maps_to_crf() -> None:
    # Grey noise: chroma subsampling leaves it alone, so the error measures the CRF alone.
    grey = np.random.default_rng(0).integers(0, 255, (6, 48, 64), dtype=np.uint8)
    noise = np.repeat(grey[..., None], 3, axis=3)
    sizes, errors = {}, {}
    for quality in (10, 50, 100):
        out = io.BytesIO()
        write_video_chunk(list(noise), out, quality=quality)
        sizes[quality] = len(out.getvalue())
        first = decode(out.getvalue())[3][0]
        errors[quality] = np.abs(first.astype(int) - noise[0].astype(int)).mean()

    assert sizes[10] < sizes[50] < sizes[100]
    assert errors[10] > errors[50] > errors[100]
    assert errors[100] < 2


def test_odd_sizes_are_padded_and_big_frames_halved() -> None:
    odd = io.BytesIO()
    write_video_chunk([np.zeros((25, 33, 3), np.uint8)], odd, quality=70)
    tall = io.BytesIO()
    write_video_chunk([np.zeros((1080, 200, 3), np.uint8)], tall, quality=70)
    kept = io.BytesIO()
    write_video_chunk([np.zeros((1080, 200, 3), np.uint8)], kept, quality=100, original=True)

    assert decode(odd.getvalue())[1:3] == (34, 26)
    assert decode(tall.getvalue())[1:3] == (100, 540)
    assert decode(kept.getvalue())[1:3] == (200, 1080)


def test_video_chunk_of_decoded_video_frames(tmp_path: Path) -> None:
    source = make_test_video(tmp_path / "clip.mp4", 20, gop=5)
    index = index_video(source)
    out = io.BytesIO()

    write_video_chunk(
        (pixels for _, pixels in read_frames(source, index, range(5, 15))), out, quality=80
    )

    assert [frame_index(pixels) for pixels in decode(out.getvalue())[3]] == list(range(5, 15))


def test_video_chunk_validation() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        write_video_chunk([], io.BytesIO(), quality=70)
    with pytest.raises(ValueError, match="frame 1 is 8x8, unlike the 4x4 of frame 0"):
        write_video_chunk(
            [np.zeros((4, 4, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)],
            io.BytesIO(),
            quality=70,
        )
    with pytest.raises(ValueError, match="unsupported video chunk codec 'vp9'"):
        write_video_chunk([np.zeros((4, 4, 3), np.uint8)], io.BytesIO(), quality=70, codec="vp9")  # type: ignore[arg-type]


def _planes(frame: av.VideoFrame) -> list[bytes]:
    return [bytes(plane) for plane in frame.planes]


def test_lossless_chunks_of_decoded_frames_decode_to_the_same_samples(tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "v.mp4", 12, (66, 40), b_frames=2)
    index = index_video(video)
    source = [frame for _, frame in decode_frames(video, index, range(3, 11))]
    expected = [_planes(frame) for frame in source]
    out = io.BytesIO()
    write_lossless_video_chunk(source, out)
    with av.open(io.BytesIO(out.getvalue()), mode="r", format="mp4") as container:
        decoded = list(container.decode(video=0))
    assert [frame.format.name for frame in decoded] == ["yuv420p"] * 8
    assert [_planes(frame) for frame in decoded] == expected


@pytest.mark.parametrize("size", [(64, 48), (33, 25)])
def test_lossless_chunks_of_rgb_pixels_decode_to_the_same_pixels(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    pixels = [rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) for _ in range(3)]
    out = io.BytesIO()
    write_lossless_video_chunk(pixels, out)
    with av.open(io.BytesIO(out.getvalue()), mode="r", format="mp4") as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert all(np.array_equal(a, b) for a, b in zip(decoded, pixels, strict=True))


def test_lossless_chunks_refuse_no_frames_and_mixed_sizes() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        write_lossless_video_chunk([], io.BytesIO())
    mixed = [np.zeros((4, 4, 3), np.uint8), np.zeros((6, 4, 3), np.uint8)]
    with pytest.raises(ValueError, match="unlike"):
        write_lossless_video_chunk(mixed, io.BytesIO())
