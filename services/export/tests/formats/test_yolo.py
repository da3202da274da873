"""YOLO 1.1 and the Ultralytics YOLO formats: golden archives written by hand from CVAT's
exporters (cvat/apps/dataset_manager/formats/yolo.py and the datumaro fork's
yolo_format/converter.py), datumaro 1.13 as an independent reader where it can read the
format (YOLO 1.1 and Ultralytics Detection, through its "yolo" importer), small readers of
our own where it cannot (Segmentation, Pose, Oriented Bounding Boxes and Classification:
datumaro 1.13 has no importer for them), and the writers' streaming."""

from __future__ import annotations

import asyncio
import json
import math
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datumaro as dm  # type: ignore[import-untyped]
import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools import mask as mask_utils

from tessera.export.formats import ultralytics, yolo
from tessera.export.formats.ultralytics import (
    ClassificationLayout,
    config_yaml,
    image_path_ultralytics,
    image_paths_ultralytics_classification,
    mask_outlines,
    write_ultralytics_classification,
    write_ultralytics_detection,
    write_ultralytics_obb,
    write_ultralytics_pose,
    write_ultralytics_segmentation,
)
from tessera.export.formats.yolo import image_path_yolo, write_yolo
from tessera.export.model import (
    AttributeSpec,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    InMemoryDataset,
    Label,
    Shape,
    Tag,
    TaskInfo,
)
from tessera.geometry import cvat_mask_to_array, ellipse_to_mask

from .support import (
    GOLDEN,
    Discard,
    GeneratedDataset,
    Writer,
    export_files,
    label_and_type_counts,
    peak_memory,
    unpack,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
W, H = 100, 50

PERSON_SVG = (
    '<line x1="10" y1="20" x2="30" y2="40" data-type="edge" data-node-from="1" data-node-to="2">'
    '</line><circle r="1.5" cx="10" cy="20" data-type="element node" data-element-id="1" '
    'data-node-id="1" data-label-id="9" data-label-name="head"></circle><circle r="1.5" '
    'cx="30" cy="40" data-type="element node" data-element-id="2" data-node-id="2" '
    'data-label-id="10" data-label-name="hand"></circle>'
)
# the cat's points in the svg: tail, paw, nose (by label id only), not their id order
CAT_SVG = (
    '<circle r="1" cx="1" cy="1" data-type="element node" data-node-id="1" data-label-id="15">'
    '</circle><circle r="1" cx="2" cy="2" data-type="element node" data-node-id="2" '
    'data-label-id="16"></circle><circle r="1" cx="3" cy="3" data-type="element node" '
    'data-node-id="3" data-label-id="14"></circle>'
)

CAR = Label(
    1,
    "car",
    "rectangle",
    "#ff0000",
    (AttributeSpec(1, "model", "select", False, ("sedan", "suv"), "sedan"),),
)
ROAD = Label(2, "road", "polygon", "#00ff00")
LANE = Label(3, "lane", "polyline", "#0000ff")
WHEEL = Label(4, "wheel", "points", "#ffff00")
SIGN = Label(5, "sign", "ellipse", "#00ffff")
CRATE = Label(6, "crate", "cuboid", "#ff00ff")
BLOB = Label(7, "blob", "mask", "#808080")
HEAD = Label(9, "head", "points", "#aaaaaa", parent_id=8)
HAND = Label(10, "hand", "points", "#bbbbbb", parent_id=8)
PERSON = Label(8, "person", "skeleton", "#123456", sublabels=(HEAD, HAND), svg=PERSON_SVG)
WEATHER = Label(
    11, "weather", "tag", "#abcdef", (AttributeSpec(2, "sky", "text", False, (), "clear"),)
)
DOG = Label(12, "dog", "rectangle", "#fedcba")
NOSE = Label(14, "nose", "points", "#010101", parent_id=13)
TAIL = Label(15, "tail", "points", "#020202", parent_id=13)
PAW = Label(16, "paw", "points", "#030303", parent_id=13)
CAT = Label(13, "cat", "skeleton", "#040404", sublabels=(NOSE, TAIL, PAW), svg=CAT_SVG)

TASK = TaskInfo(
    id=3,
    name="yard",
    mode="annotation",
    dimension="2d",
    size=4,
    labels=(CAT, DOG, CAR, ROAD, LANE, WHEEL, SIGN, CRATE, BLOB, WEATHER, PERSON),
)
CLASSES = [
    "car", "road", "lane", "wheel", "sign", "crate", "blob", "person", "weather", "dog", "cat",
]  # fmt: skip

# a 4x4 square ring at (30, 5) with a 2x2 hole: rows 1111 / 1001 / 1001 / 1111
RING_MASK = (0, 5, 2, 2, 2, 5, 30, 5, 33, 8)

FRAME_0 = FrameAnnotations(
    FrameInfo(0, "img0.jpg", W, H),
    shapes=(
        Shape(
            "skeleton",
            CAT.id,
            (),
            z_order=3,
            elements=(
                Shape("points", NOSE.id, (10, 10)),
                Shape("points", TAIL.id, (20.004, 30)),
                Shape("points", PAW.id, (15, 45)),
            ),
        ),
        Shape("rectangle", CAR.id, (20, 10, 40, 20), rotation=90, z_order=1),
        Shape("rectangle", CAR.id, (10, 20, 30, 40), attributes={"model": "suv"}),
        Shape("polygon", ROAD.id, (0, 0, 10, 0.004, 5, 8.125)),
        Shape("polyline", LANE.id, (1, 2, 3, 4)),
        Shape("ellipse", SIGN.id, (80, 25, 83, 23)),
        Shape("points", WHEEL.id, (5, 6, 7, 8)),
        Shape("mask", BLOB.id, RING_MASK),
        Shape("cuboid", CRATE.id, tuple(float(v) for v in range(1, 17))),
        Shape("rectangle", DOG.id, (50.004, 10, 70.006, 30), rotation=360),
        Shape(
            "skeleton",
            PERSON.id,
            (),
            z_order=2,
            elements=(
                Shape("points", HEAD.id, (30, 40), occluded=True),
                Shape("points", HAND.id, (50, 45), outside=True),
            ),
        ),
    ),
    tags=(Tag(WEATHER.id, attributes={"sky": "rain"}),),
)
FRAME_1 = FrameAnnotations(FrameInfo(1, "img1.png", W, H))
FRAME_2 = FrameAnnotations(
    FrameInfo(2, "seq/img2", W, H, "Test"),
    shapes=(
        Shape("rectangle", CAR.id, (10, 10, 20, 20), track_id=4, keyframe=False),
        Shape("rectangle", CAR.id, (0, 0, 5, 5), track_id=1, outside=True),
        Shape(
            "skeleton",
            PERSON.id,
            (),
            track_id=3,
            elements=(
                Shape("points", HEAD.id, (40, 20), track_id=3),
                Shape("points", HAND.id, (60, 30), track_id=3, occluded=True),
            ),
        ),
    ),
    tags=(Tag(WEATHER.id), Tag(WEATHER.id, group=2)),
)
FRAME_3 = FrameAnnotations(
    FrameInfo(3, "other/img2.jpg", W, H, "Test"),
    shapes=(Shape("rectangle", DOG.id, (0, 0, 100, 50)),),
    tags=(Tag(WEATHER.id),),
)
DATASET = InMemoryDataset(TASK, (FRAME_0, FRAME_1, FRAME_2, FRAME_3))

WRITERS: dict[str, Writer] = {
    "yolo_1.1": write_yolo,
    "yolo_ultralytics_detection": write_ultralytics_detection,
    "yolo_ultralytics_segmentation": write_ultralytics_segmentation,
    "yolo_ultralytics_pose": write_ultralytics_pose,
    "yolo_ultralytics_obb": write_ultralytics_obb,
    "yolo_ultralytics_classification": write_ultralytics_classification,
}


async def _export(
    writer: Writer, dataset: Any = DATASET, options: ExportOptions | None = None
) -> dict[str, bytes]:
    return await export_files(writer, dataset, options)


def _golden(name: str) -> dict[str, bytes]:
    root = GOLDEN / name
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# --- golden archives -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(WRITERS))
def test_archive_is_what_cvat_writes(name: str) -> None:
    """Every member and byte, against archives written by hand from CVAT's rules (the next
    test spells out how the less obvious values come about)."""
    files = asyncio.run(_export(WRITERS[name]))
    expected = _golden(name)
    assert sorted(files) == sorted(expected)
    for member, content in expected.items():
        assert files[member] == content, member


def test_golden_values_follow_from_the_rules() -> None:
    """The hand-computed numbers of the golden files, from the shapes, spelled out."""
    # the dog's box is stored rounded: x1 = round(50.004 + 20.002, 2) = 70.01
    assert f"{(50.0 + 70.01) / 2 / W:.6f}" == "0.600050"
    assert f"{(70.01 - 50.0) / W:.6f}" == "0.200100"
    # the road's 8.125 rounds half to even (numpy.around): 8.12
    assert f"{8.12 / H:.6f}" == "0.162400"
    # the car turned 90 degrees about (30, 15): top-left (20, 10) goes to (35, 5)
    assert (30 - (10 - 15), 15 + (20 - 30)) == (35, 5)
    # the sign's pixels (centres inside the ellipse about (80, 25), rx 3, ry 2):
    # rows 23 and 26 hold x 78..81, rows 24 and 25 x 77..82
    pixels = ellipse_to_mask([80, 25, 83, 23], H, W)
    assert [list(np.flatnonzero(pixels[y])) for y in range(23, 27)] == [
        [78, 79, 80, 81],
        [77, 78, 79, 80, 81, 82],
        [77, 78, 79, 80, 81, 82],
        [78, 79, 80, 81],
    ]
    assert not pixels[:23].any()
    assert not pixels[27:].any()


def test_image_paths() -> None:
    frame = FrameInfo(5, "seq/img2", W, H)
    assert image_path_yolo(frame, "default") == "obj_train_data/seq/img2.jpg"
    assert image_path_yolo(FrameInfo(0, "a.PNG", 1, 1), "Test") == "obj_Test_data/a.PNG"
    assert image_path_ultralytics(frame, "") == "images/train/seq/img2.jpg"
    assert image_path_ultralytics(FrameInfo(0, "a.png", 1, 1), "val") == "images/val/a.png"
    with ClassificationLayout() as layout:
        tagged = FrameAnnotations(frame, tags=(Tag(WEATHER.id), Tag(CAR.id)))
        assert image_paths_ultralytics_classification(layout, tagged, "Test", TASK.labels) == [
            "Test/weather/img2.jpg",
            "Test/car/img2.jpg",
        ]
        again = FrameAnnotations(FrameInfo(6, "img2.jpg", W, H), tags=(Tag(WEATHER.id),))
        assert image_paths_ultralytics_classification(layout, again, "Test", TASK.labels) == [
            "Test/weather/img2.0.jpg"
        ]
        # other subsets and folders do not collide
        assert layout.paths(again.frame, "default", ["weather"]) == ["train/weather/img2.jpg"]
        assert layout.paths(again.frame, "Test", []) == ["Test/no_label/img2.jpg"]
        assert layout.paths(again.frame, "Test", ["weather"]) == ["Test/weather/img2.1.jpg"]


# --- data.yaml -----------------------------------------------------------------------------


def test_data_yaml_is_what_yaml_dump_writes() -> None:
    """The fork writes `yaml.dump(dict(path=".", names={...}, **subsets, **extra))`."""
    names = [
        "car", "road sign", "yes", "123", "a: b", "#x", "собака", "", " x", "it's", "x" * 120,
        " ".join(["word"] * 30), "null", "2024-01-01", "1e3", "a\tb",
    ]  # fmt: skip
    subsets = ["train", "Test", "Validation", "yes"]
    extra = {"kpt_shape": [17, 3]}
    fork = yaml.dump(
        dict(path=".", names=dict(enumerate(names)), **{s: f"{s}.txt" for s in subsets}, **extra)
    )
    assert config_yaml(names, subsets, extra) == fork
    loaded = yaml.safe_load(config_yaml(names, subsets, extra))
    assert loaded["names"] == dict(enumerate(names))
    assert loaded["kpt_shape"] == [17, 3]
    assert config_yaml(["car"], [], {}) == "names:\n  0: car\npath: .\n"


# --- independent readers: datumaro ---------------------------------------------------------


@dataclass(frozen=True)
class _Renamed:
    """The dataset with flat frame names: datumaro 1.13's Ultralytics reader takes a label
    file's folder for its subset, so it cannot read ids with folders."""

    task: TaskInfo = TASK

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        for item in DATASET.items:
            name = item.frame.name.replace("/", "_")
            frame = FrameInfo(item.frame.index, name, item.frame.width, item.frame.height, "")
            yield FrameAnnotations(frame, item.shapes, item.tags)


def test_datumaro_reads_yolo_back(tmp_path: Path) -> None:
    files = asyncio.run(_export(write_yolo))
    root = unpack(files, tmp_path)
    info = {"img0": (H, W), "img1": (H, W), "seq/img2": (H, W), "other/img2": (H, W)}
    dataset = dm.Dataset.import_from(str(root), "yolo", image_info=info)
    labels = dataset.categories()[dm.AnnotationType.label]
    assert [label.name for label in labels] == CLASSES
    assert sorted((item.subset, item.id) for item in dataset) == [
        ("Test", "other/img2"), ("Test", "seq/img2"), ("train", "img0"), ("train", "img1"),
    ]  # fmt: skip
    assert label_and_type_counts(dataset) == {("car", "bbox"): 2, ("dog", "bbox"): 2}
    boxes = {
        (item.id, labels[ann.label].name): ann.get_bbox()
        for item in dataset
        for ann in item.annotations
    }
    assert boxes[("img0", "car")] == pytest.approx([10, 20, 20, 20])
    assert boxes[("img0", "dog")] == pytest.approx([50, 10, 20.01, 20])
    assert boxes[("seq/img2", "car")] == pytest.approx([10, 10, 10, 10])
    assert boxes[("other/img2", "dog")] == pytest.approx([0, 0, 100, 50])


def test_datumaro_reads_ultralytics_detection_back(tmp_path: Path) -> None:
    files = asyncio.run(_export(write_ultralytics_detection, _Renamed()))
    root = unpack(files, tmp_path)
    # datumaro 1.13 finds the images on disk: put them where CVAT's save_images would
    for item in DATASET.items:
        frame = item.frame
        path = root / image_path_ultralytics(
            FrameInfo(0, frame.name.replace("/", "_"), W, H), "default"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (W, H)).save(path)
    dataset = dm.Dataset.import_from(str(root), "yolo")
    labels = dataset.categories()[dm.AnnotationType.label]
    assert [label.name for label in labels] == CLASSES
    # only frames with lines have a label file, and datumaro 1.13 goes by the label files
    assert sorted(item.id for item in dataset) == ["img0", "other_img2", "seq_img2"]
    assert label_and_type_counts(dataset) == {("car", "bbox"): 2, ("dog", "bbox"): 2}
    boxes = {
        (item.id, labels[ann.label].name): ann.get_bbox()
        for item in dataset
        for ann in item.annotations
    }
    assert boxes[("img0", "car")] == pytest.approx([10, 20, 20, 20])
    assert boxes[("seq_img2", "car")] == pytest.approx([10, 10, 10, 10])


# --- independent readers of our own --------------------------------------------------------


def _config(files: dict[str, bytes]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(files["data.yaml"])
    assert config["path"] == "."
    for subset in ("train", "Test"):
        assert config[subset] == f"{subset}.txt"
        for line in files[f"{subset}.txt"].decode().splitlines():
            assert line.startswith(f"data/images/{subset}/")
    return config


def _rows(files: dict[str, bytes]) -> dict[str, list[list[float]]]:
    """Each label file's lines as numbers, by image id (`<subset>/<id>`)."""
    out = {}
    for name, content in files.items():
        if name.startswith("labels/"):
            key = name[len("labels/") : -len(".txt")]
            out[key] = [[float(v) for v in line.split()] for line in content.decode().splitlines()]
    return out


def test_segmentation_read_back() -> None:
    """Parse the lines and rasterise them with pycocotools: they are the shapes' pixels."""
    files = asyncio.run(_export(write_ultralytics_segmentation))
    names = _config(files)["names"]
    rows = _rows(files)
    assert list(rows) == ["train/img0"]
    by_label: dict[str, list[list[float]]] = {}
    for row in rows["train/img0"]:
        assert row[0] == int(row[0])
        assert int(row[0]) in names
        values = row[1:]
        assert len(values) % 2 == 0
        assert len(values) >= 6
        assert all(0 <= v <= 1 for v in values)
        pixels = [v * (W if i % 2 == 0 else H) for i, v in enumerate(values)]
        by_label.setdefault(names[int(row[0])], []).append(pixels)
    assert {name: len(rings) for name, rings in by_label.items()} == {
        "road": 1,
        "sign": 1,
        "blob": 1,
    }
    assert by_label["road"][0] == pytest.approx([0, 0, 10, 0, 5, 8.12])

    def raster(ring: list[float]) -> Any:
        return mask_utils.decode(mask_utils.frPyObjects([ring], H, W))[:, :, 0].astype(bool)

    # the mask's ring, hole cut in, covers exactly its pixels; so does the ellipse's outline
    assert np.array_equal(raster(by_label["blob"][0]), cvat_mask_to_array(RING_MASK, H, W))
    assert np.array_equal(raster(by_label["sign"][0]), ellipse_to_mask([80, 25, 83, 23], H, W))
    # closed outlines, as the fork closes its contours
    for ring in by_label["blob"] + by_label["sign"]:
        assert ring[:2] == pytest.approx(ring[-2:])


def test_mask_outlines_pieces_and_holes() -> None:
    mask = np.zeros((14, 16), bool)
    mask[1:10, 1:10] = True  # a square with two holes
    mask[2:5, 2:5] = False
    mask[6:9, 6:9] = False
    mask[3, 3] = True  # an island in the first hole: a piece of its own
    mask[11:13, 12:15] = True  # another piece
    mask[10, 11] = True  # touching it only at a corner: the same piece (8-connected)
    outlines = mask_outlines(mask)
    assert len(outlines) == 3
    union = np.zeros_like(mask)
    for outline in outlines:
        assert outline[:2] == outline[-2:]
        union |= mask_utils.decode(mask_utils.frPyObjects([outline], 14, 16))[:, :, 0] > 0
    assert np.array_equal(union, mask)


def test_pose_read_back() -> None:
    files = asyncio.run(_export(write_ultralytics_pose))
    config = _config(files)
    points, values_per_point = config["kpt_shape"]
    assert (points, values_per_point) == (3, 3)
    assert config["names"] == {0: "person", 1: "cat"}
    rows = _rows(files)
    assert sorted(rows) == ["Test/seq/img2", "train/img0"]
    counts: Counter[str] = Counter()
    for lines in rows.values():
        for row in lines:
            assert len(row) == 5 + points * values_per_point
            counts[config["names"][int(row[0])]] += 1
            visibility = row[7::3]
            assert set(visibility) <= {0, 1, 2}
    assert counts == {"person": 2, "cat": 1}
    cat = rows["train/img0"][1]
    # the cat's points in its svg order (tail, paw, nose), all visible
    xyv = [v for i in range(3) for v in (cat[5 + 3 * i] * W, cat[6 + 3 * i] * H, cat[7 + 3 * i])]
    assert xyv == pytest.approx([20, 30, 2, 15, 45, 2, 10, 10, 2])
    # the box is the box of the visible points: x 10..20, y 10..45
    cx, cy, bw, bh = cat[1] * W, cat[2] * H, cat[3] * W, cat[4] * H
    assert (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2) == pytest.approx((10, 10, 20, 45))
    person = rows["train/img0"][0]
    assert person[5:] == pytest.approx([0.3, 0.8, 1, 0.5, 0.9, 0, 0, 0, 0])


def test_obb_read_back() -> None:
    files = asyncio.run(_export(write_ultralytics_obb))
    names = _config(files)["names"]
    rows = _rows(files)
    found = []
    for key, lines in rows.items():
        for row in lines:
            assert len(row) == 9
            corners = np.array(row[1:]).reshape(4, 2) * (W, H)
            sides = [np.linalg.norm(corners[(i + 1) % 4] - corners[i]) for i in range(4)]
            assert sides[0] == pytest.approx(sides[2])
            assert sides[1] == pytest.approx(sides[3])
            # right angles
            first, second = corners[1] - corners[0], corners[2] - corners[1]
            assert float(np.dot(first, second)) == pytest.approx(0, abs=1e-6)
            angle = math.degrees(math.atan2(first[1], first[0])) % 360
            centre = corners.mean(axis=0)
            found.append((key, names[int(row[0])], *np.round(centre, 3), *np.round(sides[:2], 3)))
            found[-1] += (round(angle, 3),)
    assert sorted(found) == sorted(
        [
            ("train/img0", "car", 20, 30, 20, 20, 0),
            ("train/img0", "dog", 60.005, 20, 20.01, 20, 0),
            ("train/img0", "car", 30, 15, 20, 10, 90),  # the rotated one
            ("Test/seq/img2", "car", 15, 15, 10, 10, 0),
            ("Test/other/img2", "dog", 50, 25, 100, 50, 0),
        ]
    )


def test_classification_read_back() -> None:
    files = asyncio.run(_export(write_ultralytics_classification))
    assert sorted(files) == ["Test/labels.json", "train/labels.json"]
    tags = {
        (item.frame.subset or "train", item.frame.name.rsplit(".", 1)[0]): item.tags
        for item in DATASET.items
    }
    seen = 0
    for name, content in files.items():
        subset = name.split("/")[0]
        for item_id, info in json.loads(content).items():
            expected = ["weather"] * len(tags[(subset, item_id)])
            assert info["labels"] == expected
            folder = info["path"].split("/")[0]
            assert folder == (expected[-1] if expected else "no_label")
            assert info["path"].rsplit("/", 1)[-1].startswith(item_id.rsplit("/", 1)[-1])
            seen += 1
    assert seen == len(DATASET.items)


# --- options, subsets, failures ------------------------------------------------------------


def test_annotated_only_and_empty() -> None:
    options = ExportOptions(annotated_only=True)
    files = asyncio.run(_export(write_yolo, options=options))
    assert "obj_train_data/img1.txt" not in files
    assert files["train.txt"] == b"data/obj_train_data/img0.jpg\n"
    files = asyncio.run(_export(write_ultralytics_pose, options=options))
    assert files["train.txt"] == b"data/images/train/img0.jpg\n"
    files = asyncio.run(_export(write_ultralytics_classification, options=options))
    assert list(json.loads(files["train/labels.json"])) == ["img0"]

    empty = InMemoryDataset(TASK, ())
    files = asyncio.run(_export(write_yolo, empty))
    assert sorted(files) == ["obj.data", "obj.names"]
    assert files["obj.data"] == b"classes = 11\nnames = data/obj.names\nbackup = backup/\n"
    for writer in (write_ultralytics_detection, write_ultralytics_pose):
        files = asyncio.run(_export(writer, empty))
        assert list(files) == ["data.yaml"]
        assert "train" not in yaml.safe_load(files["data.yaml"])
    assert asyncio.run(_export(write_ultralytics_classification, empty)) == {}


def test_task_subset_and_pose_without_skeletons() -> None:
    task = TaskInfo(9, "t", "annotation", "2d", 1, (CAR,), subset="Validation")
    frames = (
        FrameAnnotations(FrameInfo(0, "a.jpg", 10, 10), (Shape("rectangle", 1, (0, 0, 5, 5)),)),
    )
    files = asyncio.run(_export(write_ultralytics_detection, InMemoryDataset(task, frames)))
    assert files["Validation.txt"] == b"data/images/Validation/a.jpg\n"
    assert files["labels/Validation/a.txt"] == b"0 0.250000 0.250000 0.500000 0.500000\n"
    files = asyncio.run(_export(write_ultralytics_pose, InMemoryDataset(task, frames)))
    assert yaml.safe_load(files["data.yaml"])["kpt_shape"] == [0, 3]
    assert not any(name.startswith("labels/") for name in files)


@pytest.mark.parametrize(
    ("writer", "subset"),
    [
        (write_yolo, "names"),
        (write_ultralytics_segmentation, "path"),
        (write_ultralytics_pose, "kpt_shape"),
    ],
)
def test_reserved_subsets_are_refused(writer: Writer, subset: str) -> None:
    frames = (FrameAnnotations(FrameInfo(0, "a.jpg", 10, 10, subset)),)
    with pytest.raises(ValueError, match="reserved"):
        asyncio.run(_export(writer, InMemoryDataset(TASK, frames)))


@pytest.mark.parametrize("name", list(WRITERS))
def test_point_clouds_are_refused(name: str) -> None:
    task = TaskInfo(1, "c", "annotation", "3d", 0, ())
    with pytest.raises(ValueError, match="2D"):
        asyncio.run(_export(WRITERS[name], InMemoryDataset(task, ())))


# --- streaming -----------------------------------------------------------------------------


def _generated_frame(index: int) -> FrameAnnotations:
    return FrameAnnotations(
        FrameInfo(index, f"frame_{index:06d}.jpg", 64, 48, "train" if index % 3 else "val"),
        shapes=(
            Shape("rectangle", CAR.id, (index % 50, 10, 60, 40.5)),
            Shape("polygon", ROAD.id, (0, 0, 30, 0, 15, 20.25, 3, 4)),
            Shape("mask", BLOB.id, (*RING_MASK[:6], 3, 5, 6, 8)),
            Shape(
                "skeleton",
                PERSON.id,
                (),
                elements=(
                    Shape("points", HEAD.id, (3, 4)),
                    Shape("points", HAND.id, (5, 6)),
                ),
            ),
        ),
        tags=(Tag(WEATHER.id),) if index % 2 else (),
    )


class _ForgetfulZip(zipfile.ZipFile):
    """A zip that forgets its members' records once written: a zip keeps one record per
    member for its central directory, which grows with the frames whatever the writer does
    (these formats have a file per frame), so the test leaves those out."""

    def open(self, name: Any, mode: Any = "r", pwd: Any = None, **kwargs: Any) -> Any:
        member = super().open(name, mode, pwd, **kwargs)
        close = member.close

        def forget() -> None:
            close()
            self.filelist.clear()
            self.NameToInfo.clear()

        setattr(member, "close", forget)  # noqa: B010
        return member


def _peak_memory(writer: Writer, count: int) -> int:
    return peak_memory(writer, GeneratedDataset(TASK, count, _generated_frame), _ForgetfulZip)


@pytest.mark.parametrize(
    ("writer", "small_count"),
    [
        (write_yolo, 80),
        (write_ultralytics_segmentation, 30),
        (write_ultralytics_classification, 80),
    ],
)
def test_memory_stays_flat_as_frames_grow(
    writer: Writer, small_count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yolo, "_SPOOL_BYTES", 16 << 10)
    monkeypatch.setattr(yolo, "_COPY_BYTES", 4 << 10)
    _peak_memory(writer, 10)
    small, large = _peak_memory(writer, small_count), _peak_memory(writer, 10 * small_count)
    assert large < small * 1.3 + (256 << 10), (small, large)


def test_writers_yield_to_the_event_loop() -> None:
    ticks = 0

    async def count_ticks() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def main() -> None:
        ticker = asyncio.create_task(count_ticks())
        sink = zipfile.ZipFile(Discard(), "w")
        await write_ultralytics_obb(
            GeneratedDataset(TASK, 64, _generated_frame), sink, ExportOptions()
        )
        ticker.cancel()

    asyncio.run(main())
    assert ticks >= 8


def test_module_exports() -> None:
    for name in (
        "write_ultralytics_detection",
        "write_ultralytics_segmentation",
        "write_ultralytics_pose",
        "write_ultralytics_obb",
        "write_ultralytics_classification",
        "image_path_ultralytics",
        "ClassificationLayout",
    ):
        assert callable(getattr(ultralytics, name))
    assert callable(yolo.write_yolo)
    assert callable(yolo.image_path_yolo)
