"""Ultralytics YOLO import (Detection, Segmentation, Pose, Oriented Bounding Boxes,
Classification): our writers' archives read back, datasets laid out as Ultralytics and
Roboflow lay them out, and hostile or wrong uploads (YAML bombs among them)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tessera.export.formats.ultralytics import (
    segmentation_rings,
    write_ultralytics_classification,
    write_ultralytics_detection,
    write_ultralytics_obb,
    write_ultralytics_pose,
    write_ultralytics_segmentation,
)
from tessera.export.imports.files import ImportFailed, ImportFiles, files_of
from tessera.export.imports.formats.ultralytics import (
    read_ultralytics_classification,
    read_ultralytics_detection,
    read_ultralytics_obb,
    read_ultralytics_pose,
    read_ultralytics_segmentation,
)
from tessera.export.imports.model import ParsedAnnotations, ParsedShape
from tessera.export.model import (
    FrameAnnotations,
    FrameInfo,
    InMemoryDataset,
    Label,
    Shape,
    Tag,
    TaskInfo,
)

from ..formats.support import Writer, export_files
from .support import upload, zipped

W, H = 100, 50
CAR = Label(1, "car", "rectangle", "#ff0000")
ROAD = Label(2, "road", "polygon", "#00ff00")
BLOB = Label(3, "blob", "mask", "#0000ff")
HEAD = Label(5, "head", "points", "#aaaaaa", parent_id=4)
HAND = Label(6, "hand", "points", "#bbbbbb", parent_id=4)
PERSON = Label(
    4,
    "person",
    "skeleton",
    "#123456",
    sublabels=(HEAD, HAND),
    svg='<circle r="1" cx="1" cy="1" data-type="element node" data-label-id="6"></circle>'
    '<circle r="1" cx="2" cy="2" data-type="element node" data-label-id="5"></circle>',
)  # points in svg order: hand, head
NOSE = Label(8, "nose", "points", "#010101", parent_id=7)
TAIL = Label(9, "tail", "points", "#020202", parent_id=7)
PAW = Label(10, "paw", "points", "#030303", parent_id=7)
CAT = Label(7, "cat", "skeleton", "#040404", sublabels=(NOSE, TAIL, PAW))
WEATHER = Label(11, "weather", "tag", "#abcdef")
SUNNY = Label(12, "sunny", "tag", "#abcdee")
TASK = TaskInfo(
    id=1,
    name="yard",
    mode="annotation",
    dimension="2d",
    size=4,
    labels=(CAR, ROAD, BLOB, PERSON, CAT, WEATHER, SUNNY),
)
# a 4x4 square ring at (30, 5) with a 2x2 hole: rows 1111 / 1001 / 1001 / 1111
RING_MASK = (0, 5, 2, 2, 2, 5, 30, 5, 33, 8)
FRAMES = (
    FrameAnnotations(
        FrameInfo(0, "img0.jpg", W, H),
        shapes=(
            Shape("rectangle", CAR.id, (10, 20, 30, 40)),
            Shape("rectangle", CAR.id, (20, 10, 40, 20), rotation=30),
            Shape("rectangle", CAR.id, (50, 10, 90, 30), rotation=200),
            Shape("rectangle", CAR.id, (60.004, 5, 70, 45.5), rotation=90),
            Shape("polygon", ROAD.id, (0, 0, 10, 0.004, 5, 8.125)),
            Shape("mask", BLOB.id, RING_MASK),
            Shape(
                "skeleton",
                PERSON.id,
                (),
                elements=(
                    Shape("points", HEAD.id, (30, 40), occluded=True),
                    Shape("points", HAND.id, (50, 45), outside=True),
                ),
            ),
            Shape(
                "skeleton",
                CAT.id,
                (),
                elements=(
                    Shape("points", NOSE.id, (10, 10)),
                    Shape("points", TAIL.id, (20.004, 30)),
                    Shape("points", PAW.id, (15, 45)),
                ),
            ),
        ),
        tags=(Tag(WEATHER.id), Tag(SUNNY.id)),
    ),
    FrameAnnotations(FrameInfo(1, "img1.png", W, H)),
    FrameAnnotations(
        FrameInfo(2, "seq/img2", W, H, "Test"),
        shapes=(
            Shape("rectangle", CAR.id, (1, 2, 3, 4), track_id=3),
            Shape("polygon", ROAD.id, (1, 1, 9, 1, 9, 9, 1, 9), track_id=5),
        ),
        tags=(Tag(WEATHER.id),),
    ),
)
DATASET = InMemoryDataset(TASK, FRAMES)
SIZES = {"img0": (W, H), "img1": (W, H), "seq/img2": (W, H)}


def exported(writer: Writer, tmp_path: Path) -> ImportFiles:
    """The dataset written by `writer`, as an upload."""
    return files_of(zipped(asyncio.run(export_files(writer, DATASET))), "export.zip", tmp_path)


def rounded(values: Any, digits: int = 3) -> list[float]:
    return [round(float(v), digits) + 0.0 for v in values]


def summary(parsed: ParsedAnnotations) -> list[tuple[Any, ...]]:
    """(frame, type, label, points, rotation) of every shape, sorted."""
    return sorted(
        (shape.frame, shape.type, shape.label, rounded(shape.points), round(shape.rotation, 3))
        for shape in parsed.shapes
    )


def sized(ref: str) -> tuple[int, int] | None:
    return SIZES.get(ref)


# --- round trips ---------------------------------------------------------------------------


def test_detection_round_trip(tmp_path: Path) -> None:
    parsed = read_ultralytics_detection(
        exported(write_ultralytics_detection, tmp_path), frame_sizes=sized
    )
    # every top-level label is a class, by label id; rotated boxes are not written
    assert parsed.labels == ["car", "road", "blob", "person", "cat", "weather", "sunny"]
    assert summary(parsed) == [
        ("img0", "rectangle", "car", [10, 20, 30, 40], 0),
        ("seq/img2", "rectangle", "car", [1, 2, 3, 4], 0),
    ]
    assert not parsed.tags
    assert not parsed.tracks


def test_segmentation_round_trip(tmp_path: Path) -> None:
    parsed = read_ultralytics_segmentation(
        exported(write_ultralytics_segmentation, tmp_path), frame_sizes=sized
    )
    mask = Shape("mask", BLOB.id, RING_MASK)
    (outline,) = segmentation_rings(mask, H, W)
    assert summary(parsed) == sorted(
        [
            ("img0", "polygon", "road", [0, 0, 10, 0, 5, 8.12], 0),  # rounded as datumaro does
            ("img0", "polygon", "blob", rounded(outline), 0),
            ("seq/img2", "polygon", "road", [1, 1, 9, 1, 9, 9, 1, 9], 0),
        ]
    )


def _corners(shape: ParsedShape) -> list[tuple[float, float]]:
    """The rectangle's corners, turned about its centre, sorted."""
    x1, y1, x2, y2 = shape.points
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    angle = math.radians(shape.rotation)
    cos, sin = math.cos(angle), math.sin(angle)
    out = []
    for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
        dx, dy = x - cx, y - cy
        out.append((cx + cos * dx - sin * dy, cy + sin * dx + cos * dy))
    return sorted(out)


def test_obb_round_trip(tmp_path: Path) -> None:
    parsed = read_ultralytics_obb(exported(write_ultralytics_obb, tmp_path), frame_sizes=sized)
    # every rectangle, its rotation in [0, 180) as CVAT reads it: 200 degrees is 20, the box
    # being the same; the width stays along the first side (the 90 degree box stays tall)
    assert summary(parsed) == [
        ("img0", "rectangle", "car", [10, 20, 30, 40], 0),
        ("img0", "rectangle", "car", [20, 10, 40, 20], 30),
        ("img0", "rectangle", "car", [50, 10, 90, 30], 20),
        ("img0", "rectangle", "car", [60, 5, 70, 45.5], 90),
        ("seq/img2", "rectangle", "car", [1, 2, 3, 4], 0),
    ]
    turned = ParsedShape("rectangle", "car", [50, 10, 90, 30], rotation=200)
    for got, expected in zip(_corners(parsed.shapes[2]), _corners(turned), strict=True):
        assert got == pytest.approx(expected, abs=1e-3)


def test_pose_round_trip_with_the_skeletons_points(tmp_path: Path) -> None:
    files = exported(write_ultralytics_pose, tmp_path)
    points = {"person": ["hand", "head"], "cat": ["nose", "tail", "paw"]}
    parsed = read_ultralytics_pose(files, frame_sizes=sized, skeleton_points=points)
    assert parsed.labels == ["person", "cat"]  # the skeletons, by label id
    assert [(s.frame, s.type, s.label, s.points) for s in parsed.shapes] == [
        ("img0", "skeleton", "person", []),
        ("img0", "skeleton", "cat", []),
    ]
    person, cat = parsed.shapes
    assert [(e.label, rounded(e.points), e.occluded, e.outside) for e in person.elements] == [
        ("hand", [50, 45], False, True),  # outside keeps its point
        ("head", [30, 40], True, False),
    ]
    assert [(e.label, rounded(e.points), e.occluded, e.outside) for e in cat.elements] == [
        ("nose", [10, 10], False, False),
        ("tail", [20, 30], False, False),
        ("paw", [15, 45], False, False),
    ]
    assert all(e.type == "points" for e in person.elements + cat.elements)


def test_pose_without_the_skeletons_points_names_them_by_position(tmp_path: Path) -> None:
    files = exported(write_ultralytics_pose, tmp_path)
    person, _ = read_ultralytics_pose(files, frame_sizes=sized).shapes
    # kpt_shape is [3, 3]: the person's third point is the padding, 0 0 0 (outside)
    assert [(e.label, rounded(e.points), e.outside) for e in person.elements] == [
        ("0", [50, 45], True),
        ("1", [30, 40], False),
        ("2", [0, 0], True),
    ]


def test_pose_skeleton_with_more_points_than_kpt_shape_fails(tmp_path: Path) -> None:
    files = exported(write_ultralytics_pose, tmp_path)
    with pytest.raises(ImportFailed, match="kpt_shape has 3 points, but the skeleton 'cat' has 4"):
        read_ultralytics_pose(files, frame_sizes=sized, skeleton_points={"cat": list("abcd")})


def test_classification_round_trip(tmp_path: Path) -> None:
    parsed = read_ultralytics_classification(exported(write_ultralytics_classification, tmp_path))
    assert parsed.labels == ["sunny", "weather"]
    assert sorted((tag.frame, tag.label) for tag in parsed.tags) == [
        ("img0", "sunny"),
        ("img0", "weather"),
        ("seq/img2", "weather"),
    ]


def test_frames_the_task_lacks_give_no_shapes(tmp_path: Path) -> None:
    asked: list[str] = []

    def sizes(ref: str) -> tuple[int, int] | None:
        asked.append(ref)
        return None if ref == "img0" else SIZES[ref]

    files = exported(write_ultralytics_detection, tmp_path)
    parsed = read_ultralytics_detection(files, frame_sizes=sizes)
    assert sorted(asked) == ["img0", "seq/img2"]  # img1 has no label file: nothing to ask
    assert [shape.frame for shape in parsed.shapes] == ["seq/img2"]


# --- datasets as Ultralytics and others lay them out ---------------------------------------

COCO8_YAML = """\
# Ultralytics YOLO 🚀, AGPL-3.0 license
path: ../datasets/coco8 # dataset root dir
train: images/train # train images (relative to 'path') 4 images
val: images/val # val images (relative to 'path') 4 images
test: # test images (optional)

# Classes
nc: 3
names:
  0: person
  1: bicycle
  2: car

download: https://github.com/ultralytics/assets/releases/download/v0.0.0/coco8.zip
"""


def test_ultralytics_detection_dataset(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "coco8/data.yaml": COCO8_YAML,
        "coco8/labels/train/000000000009.txt": "2 0.479492 0.688771 0.955609 0.5955\n"
        "0 0.736516 0.247188 0.498875 0.476417\n",
        "coco8/labels/val/000000000036.txt": "1 0.5 0.5 0.25 0.5",
        "coco8/images/train/000000000009.jpg": b"\xff\xd8",
        "coco8/README.txt": "not a label file\n",
    }
    parsed = read_ultralytics_detection(upload(members, tmp_path), frame_sizes=lambda r: (640, 480))
    assert parsed.labels == ["person", "bicycle", "car"]
    assert summary(parsed) == [
        # car: centre (306.875, 330.61), size 611.59 x 285.84
        ("000000000009", "rectangle", "car", [1.08, 187.69, 612.67, 473.53], 0),
        ("000000000009", "rectangle", "person", [311.73, 4.31, 631.01, 232.99], 0),
        ("000000000036", "rectangle", "bicycle", [240, 120, 400, 360], 0),
    ]


def test_roboflow_layout_and_a_names_list(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "data.yaml": "train: ../train/images\nval: ../valid/images\n\nnc: 2\n"
        "names: ['cat', 'dog']\n",
        "train/labels/a_jpg.rf.123.txt": "1 0.5 0.5 0.5 0.5\n",
        "valid/labels/b.txt": "0 0.5 0.5 1 1\n",
    }
    parsed = read_ultralytics_detection(upload(members, tmp_path), frame_sizes=lambda r: (10, 10))
    assert summary(parsed) == [
        ("a_jpg.rf.123", "rectangle", "dog", [2.5, 2.5, 7.5, 7.5], 0),
        ("b", "rectangle", "cat", [0, 0, 10, 10], 0),
    ]


def test_sparse_class_numbers_are_kept(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "data.yaml": "names:\n  5: b\n  0: a\n",
        "labels/train/x.txt": "5 0.5 0.5 1 1\n0 0.5 0.5 1 1\n",
    }
    parsed = read_ultralytics_detection(upload(members, tmp_path), frame_sizes=lambda r: (2, 2))
    assert parsed.labels == ["a", "b"]  # by class number
    assert [shape.label for shape in parsed.shapes] == ["b", "a"]
    members["labels/train/x.txt"] = "3 0.5 0.5 1 1\n"
    with pytest.raises(ImportFailed, match=r"labels/train/x\.txt line 1: class 3 is not one"):
        read_ultralytics_detection(upload(members, tmp_path), frame_sizes=lambda r: (2, 2))


def test_ultralytics_pose_dataset(tmp_path: Path) -> None:
    # coco8-pose's layout: 17 points of x y v, v written as floats
    kpts = " ".join(f"{0.01 * i:.6f} {0.02 * i:.6f} {[0, 1, 2][i % 3]:.6f}" for i in range(17))
    members: dict[str, bytes | str] = {
        "data.yaml": "path: ../datasets/coco8-pose\ntrain: images/train\nval: images/val\n"
        "kpt_shape: [17, 3]\nflip_idx: [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]"
        "\nnames:\n  0: person\n",
        "labels/train/000000000113.txt": f"0 0.5 0.5 0.9 0.9 {kpts}\n",
    }
    parsed = read_ultralytics_pose(upload(members, tmp_path), frame_sizes=lambda r: (100, 200))
    (skeleton,) = parsed.shapes
    assert len(skeleton.elements) == 17
    third = skeleton.elements[2]
    assert (third.label, rounded(third.points), third.occluded, third.outside) == (
        "2",
        [2, 8],
        False,
        False,
    )
    assert skeleton.elements[0].outside
    assert skeleton.elements[1].occluded


def test_pose_with_two_values_per_point(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "data.yaml": "kpt_shape: [2, 2]\nnames: [hand]\n",
        "labels/train/x.txt": "0 0.5 0.5 1 1 0.1 0.2 0.3 0.4\n",
    }
    parsed = read_ultralytics_pose(
        upload(members, tmp_path),
        frame_sizes=lambda r: (10, 10),
        skeleton_points={"hand": ["thumb", "pinky"]},
    )
    elements = parsed.shapes[0].elements
    assert [(e.label, rounded(e.points), e.occluded, e.outside) for e in elements] == [
        ("thumb", [1, 2], False, False),
        ("pinky", [3, 4], False, False),
    ]


def test_dota_quadrilaterals_become_their_smallest_rectangle(tmp_path: Path) -> None:
    quads = [
        "0 0.780811 0.743961 0.782371 0.74686 0.777683 0.752068 0.776123 0.749169",
        "0 0.1 0.1 0.4 0.15 0.38 0.5 0.05 0.42",  # no rectangle
        "0 0.2 0.2 0.6 0.6 0.6 0.2 0.2 0.6",  # self-intersecting order
    ]
    members: dict[str, bytes | str] = {
        "data.yaml": "names: {0: plane}\n",
        "labels/train/P0001.txt": "\n".join(quads),
    }
    width, height = 1024, 768
    parsed = read_ultralytics_obb(upload(members, tmp_path), frame_sizes=lambda r: (width, height))
    for line, shape in zip(quads, parsed.shapes, strict=True):
        values = [float(v) for v in line.split()[1:]]
        corners = np.array(
            [(x * width, y * height) for x, y in zip(values[0::2], values[1::2], strict=True)],
            np.float32,
        )
        (cx, cy), (w, h), _ = cv2.minAreaRect(corners)  # CVAT's reference
        x1, y1, x2, y2 = shape.points
        assert (x2 - x1) * (y2 - y1) == pytest.approx(w * h, rel=1e-3)
        assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((cx, cy), abs=1e-2)
        assert 0 <= shape.rotation < 180
        # every corner lies in the rectangle
        for x, y in corners:
            angle = math.radians(shape.rotation)
            dx, dy = x - (x1 + x2) / 2, y - (y1 + y2) / 2
            along = dx * math.cos(angle) + dy * math.sin(angle)
            across = -dx * math.sin(angle) + dy * math.cos(angle)
            assert abs(along) <= (x2 - x1) / 2 + 1e-3
            assert abs(across) <= (y2 - y1) / 2 + 1e-3


def test_small_turned_boxes_keep_their_first_side(tmp_path: Path) -> None:
    """A 3 x 2 box turned 21 degrees in a 4000 x 3000 image, its corners printed to 6
    decimals in CVAT's order: the 0.1% tie keeps the width along the first side (the
    rectangle along the second side comes out smaller by rounding)."""
    width, height = 4000, 3000
    box = ParsedShape("rectangle", "a", [1000, 1000, 1003, 1002], rotation=21)
    x1, y1, x2, y2 = box.points
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    angle = math.radians(box.rotation)
    corners = []
    for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
        dx, dy = x - cx, y - cy
        corners += [
            (cx + math.cos(angle) * dx - math.sin(angle) * dy) / width,
            (cy + math.sin(angle) * dx + math.cos(angle) * dy) / height,
        ]
    members: dict[str, bytes | str] = {
        "data.yaml": "names: [a]\n",
        "labels/train/x.txt": "0 " + " ".join(f"{v:.6f}" for v in corners),
    }
    parsed = read_ultralytics_obb(upload(members, tmp_path), frame_sizes=lambda r: (width, height))
    (shape,) = parsed.shapes
    assert shape.points == pytest.approx(box.points, abs=1e-2)
    assert shape.rotation == pytest.approx(21, abs=0.2)


def test_classification_folders(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "train/cat/1.jpg": b"1",
        "train/cat/sub/4.JPG": b"4",
        "train/dog/1.jpg": b"1",
        "train/dog/notes.txt": b"",
        "val/no_label/3.png": b"3",
        "val/dog/5.webp": b"5",
        "README.md": b"",
    }
    parsed = read_ultralytics_classification(upload(members, tmp_path))
    assert parsed.labels == ["cat", "dog"]
    assert sorted((tag.frame, tag.label) for tag in parsed.tags) == [
        ("1.jpg", "cat"),
        ("1.jpg", "dog"),
        ("5.webp", "dog"),
        ("sub/4.JPG", "cat"),
    ]


def test_classification_labels_json_wins_over_folders(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "train/labels.json": '{"a": {"labels": ["x", "no_label"], "path": "x/a.jpg"}, '
        '"b/c": {"labels": [], "path": "no_label/c.jpg"}}',
        "train/y/a.jpg": b"",
        "test/labels.json": "{}",  # empty: the folders are read
        "test/z/q.png": b"",
    }
    parsed = read_ultralytics_classification(upload(members, tmp_path))
    assert parsed.labels == ["x", "z"]
    assert sorted((tag.frame, tag.label) for tag in parsed.tags) == [("a", "x"), ("q.png", "z")]


# --- hostile and wrong uploads -------------------------------------------------------------

DETECTION_OK: dict[str, bytes | str] = {
    "data.yaml": "names: [a, b]\n",
    "labels/train/x.txt": "0 0.5 0.5 1 1\n",
}


def _bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        previous, name = chr(96 + level), chr(97 + level)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join([*lines, "names: *j"]) + "\n"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            {"labels/train/x.txt": "0 0.5 0.5 1 1\n"},
            r"not an? .*Detection 1\.0 upload: no data\.yaml",
        ),
        ({"a/b/data.yaml": "names: [a]\n"}, r"no data\.yaml found"),
        ({"data.yaml": _bomb()}, "YAML aliases are not read"),
        ({"data.yaml": "names: " + "[" * 200 + "]" * 200}, "nested deeper than 32"),
        ({"data.yaml": "names: [a\n"}, r"data\.yaml is not YAML Tessera reads"),
        ({"data.yaml": "names: !!python/object:os.system {}\n"}, "not YAML Tessera reads"),
        ({"data.yaml": "- a\n- b\n"}, r"data\.yaml is not a YAML mapping"),
        ({"data.yaml": "train: images/train\n"}, r"data\.yaml has no 'names'"),
        ({"data.yaml": "names: person\n"}, r"data\.yaml has no 'names' list or mapping"),
        ({"data.yaml": "names: {'0': a}\n"}, "the keys of 'names' must be class numbers"),
        ({"data.yaml": "names: [[a]]\n"}, "the name of class 0 is not text"),
        ({"a/data.yaml": "names: [a]\n", "b/data.yaml": "names: [a]\n"}, "more than one"),
        ({**DETECTION_OK, "labels/train/x.txt": "0 0.5 0.5 1 1 7\n"}, "6 fields, where a box"),
        ({**DETECTION_OK, "labels/train/x.txt": "0 0.5 0.5 NaN 1\n"}, "not a finite number"),
        ({**DETECTION_OK, "labels/train/x.txt": "2 0.5 0.5 1 1\n"}, "class 2 is not one"),
    ],
)
def test_wrong_detection_uploads(
    tmp_path: Path, members: dict[str, bytes | str], message: str
) -> None:
    with pytest.raises(ImportFailed, match=message):
        read_ultralytics_detection(upload(members, tmp_path), frame_sizes=lambda r: (10, 10))


def test_oversized_data_yaml_is_refused(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {"data.yaml": "names: [a]\n" + "#" * (5 << 20)}
    with pytest.raises(ImportFailed, match="larger than 4 MiB"):
        read_ultralytics_detection(upload(members, tmp_path), frame_sizes=lambda r: (10, 10))


Reader = Callable[..., ParsedAnnotations]


@pytest.mark.parametrize(
    ("reader", "yaml_text", "line", "message"),
    [
        (read_ultralytics_segmentation, "names: [a]", "0 0.1 0.1 0.2 0.2", "5 fields, where a"),
        (read_ultralytics_segmentation, "names: [a]", "0 0.1 0.1 0.2 0.2 0.3 0.3 0.4", "8 fields"),
        (read_ultralytics_segmentation, "names: [a]", "0 0.1 0.1 0.2 0.2 0.3 z", "'z' is not a"),
        (read_ultralytics_obb, "names: [a]", "0 0.1 0.1 0.2 0.2 0.3 0.3", "7 fields, where an"),
        (read_ultralytics_obb, "names: [a]", "0 0 0 1 0 1 1 0 inf", "'inf' is not a finite"),
        (read_ultralytics_pose, "names: [a]", "0 0.5 0.5 1 1", "has no 'kpt_shape'"),
        (read_ultralytics_pose, "names: [a]\nkpt_shape: [2, 4]", "0 0 0 0 0", "must be"),
        (read_ultralytics_pose, "names: [a]\nkpt_shape: [-1, 3]", "0 0 0 0 0", "must be"),
        (read_ultralytics_pose, "names: [a]\nkpt_shape: 17", "0 0 0 0 0", "must be"),
        (read_ultralytics_pose, "names: [a]\nkpt_shape: [1, 3]", "0 0 0 0 0", "5 fields, where"),
        (read_ultralytics_pose, "names: [a]\nkpt_shape: [1, 3]", "0 0 0 0 0 1 1 v", "visibility"),
        (read_ultralytics_pose, "names: [a]\nkpt_shape: [1, 3]", "0 0 x 0 0 1 1 2", "'x' is not"),
    ],
)
def test_wrong_lines_of_the_other_kinds(
    tmp_path: Path, reader: Reader, yaml_text: str, line: str, message: str
) -> None:
    members: dict[str, bytes | str] = {"data.yaml": yaml_text, "labels/train/x.txt": line}
    with pytest.raises(ImportFailed, match=message):
        reader(upload(members, tmp_path), frame_sizes=lambda r: (10, 10))


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"a.txt": "x"}, r"not an? .*Classification 1\.0 upload"),
        ({"train/labels.json": "[1]"}, r"train/labels\.json: not a JSON object"),
        ({"train/labels.json": '{"a": {"labels": "x"}}'}, "item 'a' has no 'labels' list"),
        ({"train/labels.json": '{"a": 3}'}, "item 'a' has no 'labels' list"),
        ({"train/labels.json": '{"a": {"labels": [1]}}'}, "item 'a' has no 'labels' list"),
        ({"train/labels.json": "{"}, r"train/labels\.json is not valid JSON"),
    ],
)
def test_wrong_classification_uploads(
    tmp_path: Path, members: dict[str, bytes | str], message: str
) -> None:
    with pytest.raises(ImportFailed, match=message):
        read_ultralytics_classification(upload(members, tmp_path))
