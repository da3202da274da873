import io
import json
from pathlib import Path

import pytest

from tessera.ingest.media import (
    ImageInfo,
    ImageManifest,
    ImageManifestItem,
    ManifestKeyFrame,
    MediaError,
    VideoManifest,
    check_manifest_against_files,
    check_video_manifest,
    index_video,
    pixel_checksum,
    read_image_info,
    read_manifest,
    write_image_manifest,
    write_video_manifest,
)
from tessera.ingest.media.testing import make_test_image, make_test_video

# The examples of CVAT's utils/dataset_manifest/README.md.
CVAT_IMAGES = """{"version":"1.0"}
{"type":"images"}
{"name":"image1","extension":".jpg","width":720,"height":405,"checksum":"548918ec4b56132a5cff1d4acabe9947"}
{"name":"image2","extension":".jpg","width":183,"height":275,"checksum":"4b4eefd03cc6a45c1c068b98477fb639"}
"""
CVAT_VIDEO = """{"version":"1.0"}
{"type":"video"}
{"properties":{"name":"video.mp4","resolution":[1280,720],"length":778}}
{"number":0,"pts":0,"checksum":"17bb40d76887b56fe8213c6fded3d540"}
{"number":135,"pts":486000,"checksum":"9da9b4d42c1206d71bf17a7070a05847"}
"""


def test_reads_cvat_image_manifest() -> None:
    manifest = read_manifest(CVAT_IMAGES.splitlines())

    assert manifest == ImageManifest(
        "1.0",
        (
            ImageManifestItem("image1", ".jpg", 720, 405, None, "548918ec4b56132a5cff1d4acabe9947"),
            ImageManifestItem("image2", ".jpg", 183, 275, None, "4b4eefd03cc6a45c1c068b98477fb639"),
        ),
    )


def test_reads_cvat_video_manifest_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_text(CVAT_VIDEO + "\n\n")

    assert read_manifest(path) == VideoManifest(
        "1.0",
        "video.mp4",
        1280,
        720,
        778,
        (
            ManifestKeyFrame(0, 0, "17bb40d76887b56fe8213c6fded3d540"),
            ManifestKeyFrame(135, 486000, "9da9b4d42c1206d71bf17a7070a05847"),
        ),
    )


def test_image_manifest_round_trip_matches_cvat_layout(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = make_test_image(tmp_path / "sub/img1.jpg", (40, 30), orientation=6)
    items = [
        ImageManifestItem.for_file(
            "sub/img1.jpg",
            read_image_info(path),
            meta={"related_images": ["related_images/sub_img1_jpg/ctx.png"]},
            checksum=pixel_checksum(path),
        ),
        ImageManifestItem.for_file("img2.png"),
    ]
    out = io.StringIO()

    write_image_manifest(out, items)

    lines = out.getvalue().splitlines()
    assert lines[:2] == ['{"version":"1.1"}', '{"type":"images"}']
    assert lines[2] == (
        '{"name":"sub/img1","extension":".jpg","width":30,"height":40,'
        '"meta":{"related_images":["related_images/sub_img1_jpg/ctx.png"]},'
        f'"checksum":"{pixel_checksum(path)}"}}'
    )
    assert lines[3] == '{"name":"img2","extension":".png"}'
    assert read_manifest(lines) == ImageManifest("1.1", tuple(items))


def test_video_manifest_round_trip(tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "clip.mp4", 30, (64, 48), gop=10)
    index = index_video(video)
    out = io.StringIO()

    write_video_manifest(out, index, "clip.mp4")

    lines = out.getvalue().splitlines()
    assert lines[:3] == [
        '{"version":"1.1"}',
        '{"type":"video"}',
        '{"properties":{"name":"clip.mp4","resolution":[64,48],"length":30}}',
    ]
    assert [json.loads(line)["number"] for line in lines[3:]] == [0, 10, 20]
    manifest = read_manifest(lines)
    assert isinstance(manifest, VideoManifest)
    assert [(k.number, k.pts, k.checksum) for k in manifest.keyframes] == [
        (k.number, k.pts, k.checksum) for k in index.keyframes
    ]
    check_video_manifest(manifest, index)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty manifest: ends before its 'version' line"),
        ('{"version":"2.0"}\n{"type":"images"}', "line 1: unsupported version '2.0'"),
        (
            '{"version":"1.1"}\n{"type":"audio"}',
            "line 2: unknown type 'audio'; expected 'images' or 'video'",
        ),
        ('{"version":"1.1"}\nnot json', "line 2: not JSON (Expecting value)"),
        ('{"version":"1.1"}\n[1]', "line 2: not a JSON object"),
        ('{"version":"1.1"}\n{"type":"images"}\n{"name":"a"}', "line 3: 'extension' is required"),
        (
            '{"version":"1.1"}\n{"type":"images"}\n{"name":"a","extension":".jpg","width":"9"}',
            "line 3: 'width' must be an integer",
        ),
        (
            '{"version":"1.1"}\n{"type":"images"}\n{"name":"a","extension":".jpg","width":9}',
            "line 3: 'width' and 'height' go together",
        ),
        (
            '{"version":"1.1"}\n{"type":"images"}\n'
            '{"name":"a","extension":".jpg"}\n\n{"name":"a","extension":".jpg"}',
            "line 5: 'a.jpg' is listed twice",
        ),
        (
            '{"version":"1.1"}\n{"type":"images"}\n{"name":"a","extension":".jpg","width":true,'
            '"height":2}',
            "line 3: 'width' must be an integer",
        ),
        ('{"version":"1.1"}\n{"type":"video"}', "line 2: ends before its 'properties' line"),
        (
            '{"version":"1.1"}\n{"type":"video"}\n'
            '{"properties":{"name":"v.mp4","resolution":[10],"length":5}}',
            "line 3: invalid resolution [10]",
        ),
        (
            '{"version":"1.1"}\n{"type":"video"}\n'
            '{"properties":{"name":"v.mp4","resolution":[10,10],"length":0}}',
            "line 3: invalid length 0",
        ),
        (
            '{"version":"1.1"}\n{"type":"video"}\n'
            '{"properties":{"name":"v.mp4","resolution":[10,10],"length":5}}',
            "line 3: no key frames",
        ),
        (
            '{"version":"1.1"}\n{"type":"video"}\n'
            '{"properties":{"name":"v.mp4","resolution":[10,10],"length":50}}\n'
            '{"number":10,"pts":5}\n{"number":10,"pts":9}',
            "line 5: key frame 10 does not follow 10",
        ),
        (
            '{"version":"1.1"}\n{"type":"video"}\n'
            '{"properties":{"name":"v.mp4","resolution":[10,10],"length":5}}\n'
            '{"number":5,"pts":5}',
            "line 4: key frame 5 is outside frames 0..4",
        ),
    ],
)
def test_invalid_manifests(text: str, reason: str) -> None:
    with pytest.raises(MediaError) as caught:
        read_manifest(text.splitlines())

    assert caught.value.file == "manifest.jsonl"
    assert caught.value.reason == reason


def test_unreadable_manifest_files(tmp_path: Path) -> None:
    binary = tmp_path / "m.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")

    with pytest.raises(MediaError, match=r"^m\.jsonl: not UTF-8 text$"):
        read_manifest(binary)
    with pytest.raises(MediaError, match=r"^gone\.jsonl: file not found$"):
        read_manifest(tmp_path / "gone.jsonl")


IMAGE_MANIFEST = ImageManifest(
    "1.1",
    (
        ImageManifestItem("a", ".jpg", 40, 30),
        ImageManifestItem("sub/b", ".png", 10, 20),
        ImageManifestItem("c", ".jpg"),
    ),
)


def test_files_matching_the_manifest_pass() -> None:
    check_manifest_against_files(IMAGE_MANIFEST, ["c.jpg", "sub/b.png", "a.jpg"])
    check_manifest_against_files(
        IMAGE_MANIFEST,
        {"a.jpg": ImageInfo(40, 30), "sub/b.png": ImageInfo(10, 20), "c.jpg": ImageInfo(1, 1)},
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["a.jpg", "c.jpg"], "sub/b.png: listed in the manifest but not uploaded"),
        (
            ["a.jpg", "sub/b.png", "c.jpg", "d.jpg", "e.jpg"],
            "d.jpg: uploaded but not listed in the manifest",
        ),
        (
            {"a.jpg": ImageInfo(30, 40), "sub/b.png": ImageInfo(10, 20), "c.jpg": ImageInfo(5, 5)},
            "a.jpg: is 30x40 but the manifest says 40x30",
        ),
    ],
)
def test_first_disagreement_is_reported(
    files: list[str] | dict[str, ImageInfo], message: str
) -> None:
    with pytest.raises(MediaError) as caught:
        check_manifest_against_files(IMAGE_MANIFEST, files)

    assert str(caught.value) == message


def test_video_manifest_against_files() -> None:
    manifest = VideoManifest("1.1", "clip.mp4", 64, 48, 30, (ManifestKeyFrame(0, 0),))

    check_manifest_against_files(manifest, ["videos/clip.mp4"])
    check_manifest_against_files(manifest, {"clip.mp4": ImageInfo(64, 48)})
    with pytest.raises(MediaError, match=r"^other\.mp4: uploaded but the manifest describes"):
        check_manifest_against_files(manifest, ["other.mp4"])
    with pytest.raises(MediaError, match=r"^clip\.mp4: listed in the manifest but not uploaded"):
        check_manifest_against_files(manifest, [])
    with pytest.raises(MediaError, match=r"^clip\.mp4: is 48x64 but the manifest says 64x48"):
        check_manifest_against_files(manifest, {"clip.mp4": ImageInfo(48, 64)})


def test_video_manifest_against_its_video(tmp_path: Path) -> None:
    index = index_video(make_test_video(tmp_path / "clip.mp4", 30, (64, 48), gop=10))
    pts_of_10 = index.keyframes[1].pts

    def manifest(width: int, length: int, *keys: tuple[int, int]) -> VideoManifest:
        frames = tuple(ManifestKeyFrame(n, p) for n, p in keys)
        return VideoManifest("1.1", "clip.mp4", width, 48, length, frames)

    check_video_manifest(manifest(64, 30, (0, 0), (10, pts_of_10)), index)
    with pytest.raises(MediaError, match="the manifest says 32x48 but the video is 64x48"):
        check_video_manifest(manifest(32, 30, (0, 0)), index)
    with pytest.raises(MediaError, match="the manifest says 31 frames but the video has 30"):
        check_video_manifest(manifest(64, 31, (0, 0)), index)
    with pytest.raises(MediaError, match=r"key frame 10 \(pts 1\) is not a seekable key frame"):
        check_video_manifest(manifest(64, 30, (0, 0), (10, 1)), index)
    with pytest.raises(MediaError, match="key frame 5"):
        check_video_manifest(manifest(64, 30, (5, 0)), index)
