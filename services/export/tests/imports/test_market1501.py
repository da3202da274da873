"""Market-1501 1.0 import: our writer's lists (and the images CVAT puts beside them) read
back, the Market-1501 dataset's own layout, and hostile or wrong uploads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tessera.export.formats.market1501 import image_paths, write_market1501
from tessera.export.imports.files import ImportFailed, files_of
from tessera.export.imports.formats.market1501 import read_market1501
from tessera.export.imports.model import ParsedAnnotations
from tessera.export.model import (
    AttributeSpec,
    FrameAnnotations,
    FrameInfo,
    InMemoryDataset,
    Label,
    Tag,
    TaskInfo,
)

from ..formats.support import export_files
from .support import upload, zipped

MARKET = Label(
    1,
    "market-1501",
    "tag",
    "#000000",
    (
        AttributeSpec(1, "query", "checkbox", False, ("false",), "false"),
        AttributeSpec(2, "camera_id", "number", False, ("0", "5", "1"), "0"),
        AttributeSpec(3, "person_id", "text", False, (), ""),
        AttributeSpec(4, "track_id", "number", False, ("1", "9", "1"), "1"),
        AttributeSpec(5, "frame_id", "number", False, ("0", "999999", "1"), "0"),
        AttributeSpec(6, "bbox_id", "number", False, ("0", "9", "1"), "0"),
    ),
)
TASK = TaskInfo(id=1, name="reid", mode="annotation", dimension="2d", size=4, labels=(MARKET,))


def _market(**values: str) -> Tag:
    return Tag(MARKET.id, attributes=values)


FRAMES = (
    FrameAnnotations(
        FrameInfo(0, "0001_c2s3_000151_01.jpg", 64, 128),
        tags=(_market(query="true", person_id="0001", camera_id="1"),),
    ),
    FrameAnnotations(FrameInfo(1, "0002_c1s1_000020_00.jpg", 64, 128, "test")),
    # renamed by the writer: the name no longer matches the frame's
    FrameAnnotations(
        FrameInfo(2, "cam/img.jpg", 64, 128),
        tags=(_market(person_id="0007", camera_id="2", track_id="4"),),
    ),
    FrameAnnotations(FrameInfo(3, "plain.png", 64, 128)),
)
DATASET = InMemoryDataset(TASK, FRAMES)


def tags(parsed: ParsedAnnotations) -> dict[object, dict[str, str]]:
    assert all(tag.label == "market-1501" for tag in parsed.tags)
    return {tag.frame: tag.attributes for tag in parsed.tags}


def _attributes(
    person: str, camera: int, track: int, frame: int, box: int, *, query: bool
) -> dict[str, str]:
    return {
        "person_id": person,
        "camera_id": str(camera),
        "track_id": str(track),
        "frame_id": str(frame),
        "bbox_id": str(box),
        "query": "true" if query else "false",
    }


EXPECTED = {
    "0001_c2s3_000151_01.jpg": _attributes("0001", 1, 3, 151, 1, query=True),
    "0002_c1s1_000020_00.jpg": _attributes("0002", 0, 1, 20, 0, query=False),
    "cam/0007_c3s4_000000_00.jpg": _attributes("0007", 2, 4, 0, 0, query=False),
}


def test_round_trip(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_market1501, DATASET))
    parsed = read_market1501(files_of(zipped(files), "market.zip", tmp_path))
    assert parsed.labels == ["market-1501"]
    # query comes back from the list's query/ folder; plain.png has no Market-1501 name
    assert tags(parsed) == EXPECTED
    assert not parsed.shapes


def test_round_trip_with_the_images(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_market1501, DATASET))
    images = {path: b"\xff\xd8" for item in FRAMES for path in image_paths(item, TASK)}
    parsed = read_market1501(files_of(zipped({**files, **images}), "market.zip", tmp_path))
    assert tags(parsed) == EXPECTED  # each image once
    # the images alone say as much
    parsed = read_market1501(files_of(zipped(images), "images.zip", tmp_path))
    assert tags(parsed) == EXPECTED


def test_the_market1501_layout(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "bounding_box_test/0001_c1s1_001051_00.jpg": b"",
        "bounding_box_test/-1_c3s2_000004_02.jpg": b"",  # a distractor
        "bounding_box_train/0002_c1s3_000151_00.jpg": b"",
        "bounding_box_train/Thumbs.db": b"",
        "query/0001_c2s3_000111_00.jpg": b"",
        "gt_bbox/0001_c1s1_001051_00.jpg": b"",  # not read
        "readme.txt": "Market-1501",
    }
    parsed = read_market1501(upload(members, tmp_path))
    assert tags(parsed) == {
        "0001_c1s1_001051_00.jpg": _attributes("0001", 0, 1, 1051, 0, query=False),
        "-1_c3s2_000004_02.jpg": _attributes("-1", 2, 2, 4, 2, query=False),
        "0002_c1s3_000151_00.jpg": _attributes("0002", 0, 3, 151, 0, query=False),
        "0001_c2s3_000111_00.jpg": _attributes("0001", 1, 3, 111, 0, query=True),
    }


def test_list_lines_by_hand(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "images_train.txt": "bounding_box_train\\0003_c1s1_000001_00.jpg\r\n\r\n"
        "0004_c1s1_000002_00x.png\n"  # no folder; a custom name after the numbers
        "bounding_box_train/img.jpg\n",
    }
    parsed = read_market1501(upload(members, tmp_path))
    assert tags(parsed) == {
        "0003_c1s1_000001_00.jpg": _attributes("0003", 0, 1, 1, 0, query=False),
        "x.png": _attributes("0004", 0, 1, 2, 0, query=False),
    }


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            {"images/0001_c1s1_000001_00.jpg": b""},
            r"not a Market-1501 1\.0 upload: no images_<subset>\.txt, bounding_box_<subset>/",
        ),
        ({"images_x.txt": "/abs/0001_c1s1_1_00.jpg\n"}, r"images_x\.txt line 1: .* is absolute"),
        ({"images_x.txt": "\n../../0001_c1s1_1_00.jpg\n"}, r"images_x\.txt line 2: .* leads out"),
        (
            {"images_x.txt": f"q/1_c1s1_{'9' * 5000}_00.jpg\n"},
            r"line 1: the numbers of .* too long",
        ),
        ({"images_x.txt": b"q/\xff.jpg\n"}, r"images_x\.txt is not UTF-8 text"),
    ],
)
def test_wrong_uploads(tmp_path: Path, members: dict[str, bytes | str], message: str) -> None:
    with pytest.raises(ImportFailed, match=message):
        read_market1501(upload(members, tmp_path))
