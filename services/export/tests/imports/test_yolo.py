"""YOLO 1.1 import: our writer's archives read back, a Darknet dataset laid out by hand, and
hostile or wrong uploads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tessera.export.formats.yolo import write_yolo
from tessera.export.imports.files import ImportFailed, files_of
from tessera.export.imports.formats.yolo import read_yolo
from tessera.export.imports.model import ParsedAnnotations
from tessera.export.model import (
    FrameAnnotations,
    FrameInfo,
    InMemoryDataset,
    Label,
    Shape,
    Tag,
    TaskInfo,
)

from ..formats.support import export_files
from .support import upload, zipped

W, H = 100, 50
CAR = Label(1, "car", "rectangle", "#ff0000")
ROAD = Label(2, "road", "polygon", "#00ff00")
DOG = Label(3, "dog", "rectangle", "#0000ff")
WEATHER = Label(4, "weather", "tag", "#abcdef")
TASK = TaskInfo(
    id=1, name="yard", mode="annotation", dimension="2d", size=4, labels=(DOG, CAR, ROAD, WEATHER)
)
DATASET = InMemoryDataset(
    TASK,
    (
        FrameAnnotations(
            FrameInfo(0, "img0.jpg", W, H),
            shapes=(
                Shape("rectangle", CAR.id, (10, 20, 30, 40)),
                Shape("rectangle", DOG.id, (50.004, 10, 70.006, 30), rotation=360),
                Shape("rectangle", CAR.id, (20, 10, 40, 20), rotation=90),  # not written
                Shape("polygon", ROAD.id, (0, 0, 10, 0, 5, 8)),  # not written
            ),
            tags=(Tag(WEATHER.id),),
        ),
        FrameAnnotations(FrameInfo(1, "img1.png", W, H)),
        FrameAnnotations(
            FrameInfo(2, "seq/img2", W, H, "Test"),
            shapes=(
                Shape("rectangle", CAR.id, (-5, 10, 20.5, 60), track_id=4),
                Shape("rectangle", DOG.id, (0, 0, 5, 5), track_id=1, outside=True),
            ),
        ),
        FrameAnnotations(
            FrameInfo(3, "other/img3.jpg", 200, 80, "Test"),
            shapes=(Shape("rectangle", DOG.id, (0, 0, 200, 80)),),
        ),
    ),
)
SIZES = {"img0": (W, H), "img1": (W, H), "seq/img2": (W, H), "other/img3": (200, 80)}


def boxes(parsed: ParsedAnnotations) -> list[tuple[object, str, list[float]]]:
    """(frame, label, points rounded to 3 decimals) of every shape, sorted."""
    return sorted(
        (shape.frame, shape.label, [round(v, 3) for v in shape.points]) for shape in parsed.shapes
    )


def test_round_trip(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_yolo, DATASET))
    asked: list[str] = []

    def sizes(ref: str) -> tuple[int, int] | None:
        asked.append(ref)
        return SIZES.get(ref)

    parsed = read_yolo(files_of(zipped(files), "yolo.zip", tmp_path), frame_sizes=sizes)
    assert parsed.labels == ["car", "road", "dog", "weather"]  # by label id
    # the rotated car and the polygon are not in YOLO; the outside track frame is left out;
    # corners come back as datumaro rounded them (70.006 -> 70.01)
    assert boxes(parsed) == [
        ("img0", "car", [10, 20, 30, 40]),
        ("img0", "dog", [50, 10, 70.01, 30]),
        ("other/img3", "dog", [0, 0, 200, 80]),
        ("seq/img2", "car", [-5, 10, 20.5, 60]),
    ]
    assert all(shape.type == "rectangle" and not shape.elements for shape in parsed.shapes)
    assert not parsed.tags
    assert not parsed.tracks
    # asked once per label file with lines; img1's file is empty
    assert sorted(asked) == ["img0", "other/img3", "seq/img2"]


def test_frames_without_a_size_give_no_shapes(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_yolo, DATASET))
    asked: list[str] = []

    def sizes(ref: str) -> tuple[int, int] | None:
        asked.append(ref)
        return None if ref == "seq/img2" else SIZES[ref]

    parsed = read_yolo(files_of(zipped(files), "yolo.zip", tmp_path), frame_sizes=sizes)
    assert "seq/img2" in asked
    assert {shape.frame for shape in parsed.shapes} == {"img0", "other/img3"}


DARKNET: dict[str, bytes | str] = {
    "dataset/obj.data": "classes= 2\r\ntrain  = data/train.txt\r\nvalid = data/valid.txt\r\n"
    "names = data/obj.names\r\nbackup = backup/\r\n",
    "dataset/obj.names": "person\r\nbicycle\r\n\r\n",
    "dataset/train.txt": "data/obj/1.jpg\r\ndata/obj/sub/2.jpg\r\n\r\n",
    "dataset/valid.txt": "data/obj/3.jpg\n",
    "dataset/obj/1.txt": "0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.05 0.05\n\n",
    "dataset/obj/sub/2.txt": "1 0.500000 0.500000 1.000000 1.000000\n",
    "dataset/obj/1.jpg": b"\xff\xd8",
    # obj/3.txt is missing: an image without objects
}


def test_darknet_dataset_by_hand(tmp_path: Path) -> None:
    parsed = read_yolo(upload(DARKNET, tmp_path), frame_sizes=lambda ref: (640, 480))
    assert parsed.labels == ["person", "bicycle"]
    assert boxes(parsed) == [
        ("1", "bicycle", [48, 36, 80, 60]),
        ("1", "person", [256, 144, 384, 336]),
        ("sub/2", "bicycle", [0, 0, 640, 480]),
    ]


def test_single_label_file_is_not_yolo(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match=r"not a YOLO 1\.1 upload: no obj\.data found"):
        read_yolo(files_of(b"0 0.5 0.5 1 1\n", "img.txt", tmp_path), frame_sizes=lambda r: None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset/obj.names": None}, r"not a YOLO 1\.1 upload: no dataset/obj\.names found"),
        ({"dataset/valid.txt": None}, r"names the 'valid' image list 'data/valid\.txt'"),
        (
            {"dataset/train.txt": "/home/me/obj/1.jpg\n"},
            r"dataset/train\.txt line 1: the image path '/home/me/obj/1\.jpg' is absolute",
        ),
        (
            {"dataset/train.txt": "data/../../../1.jpg\n"},
            r"dataset/train\.txt line 1: .* leads out of the upload",
        ),
        ({"dataset/obj/1.txt": "0 0.5 abc 1 1\n"}, r"obj/1\.txt line 1: the y coordinate 'abc'"),
        ({"dataset/obj/1.txt": "\n0 nan 0.5 1 1\n"}, r"obj/1\.txt line 2: .* not a finite"),
        ({"dataset/obj/1.txt": "0 0.5 0.5 inf 1\n"}, r"'inf' is not a finite number"),
        ({"dataset/obj/1.txt": "0 1e300 0.5 1 1\n"}, r"x coordinate '1e300' is out of range"),
        ({"dataset/obj/1.txt": "2 0.5 0.5 1 1\n"}, r"line 1: class 2 is not one of the classes"),
        ({"dataset/obj/1.txt": "-1 0.5 0.5 1 1\n"}, r"class -1 is not one of"),
        ({"dataset/obj/1.txt": "x 0.5 0.5 1 1\n"}, r"the class 'x' is not a number"),
        ({"dataset/obj/1.txt": "0.5 0.5 0.5 1 1\n"}, r"the class '0\.5' is not a whole number"),
        ({"dataset/obj/1.txt": "0 0.5 0.5 1\n"}, r"line 1: 4 fields, where a box has 5"),
        ({"dataset/obj/1.txt": b"0 0.5 0.5 1 1\xff\n"}, r"obj/1\.txt is not UTF-8 text"),
    ],
)
def test_wrong_uploads_fail_with_the_file_and_line(
    tmp_path: Path, change: dict[str, bytes | str | None], message: str
) -> None:
    members = {**DARKNET, **change}
    kept = {name: content for name, content in members.items() if content is not None}
    with pytest.raises(ImportFailed, match=message):
        read_yolo(upload(kept, tmp_path), frame_sizes=lambda ref: (640, 480))


def test_a_malformed_file_of_a_frame_the_task_lacks_still_fails(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {**DARKNET, "dataset/obj/1.txt": "0 0.5 0.5 1 one\n"}
    with pytest.raises(ImportFailed, match="'one' is not a number"):
        read_yolo(upload(members, tmp_path), frame_sizes=lambda ref: None)


def test_class_written_as_integral_float(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {**DARKNET, "dataset/obj/1.txt": "1.0 0.5 0.5 1 1\n"}
    parsed = read_yolo(upload(members, tmp_path), frame_sizes=lambda ref: (10, 10))
    assert (parsed.shapes[0].frame, parsed.shapes[0].label) == ("1", "bicycle")


def test_two_datasets_in_one_upload_fail(tmp_path: Path) -> None:
    copy = {f"b/{name.split('/', 1)[1]}": content for name, content in DARKNET.items()}
    members: dict[str, bytes | str] = {**DARKNET, **copy}
    with pytest.raises(ImportFailed, match=r"more than one obj\.data"):
        read_yolo(upload(members, tmp_path), frame_sizes=lambda ref: (10, 10))
