"""KITTI 1.0: the segmentation PNGs, detection labels and label colours CVAT writes (expected
values written by hand from CVAT's kitti.py, its bindings and its datumaro fork's KITTI
converter), datumaro as an independent reader, annotated_only, and flat memory."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from pathlib import Path
from typing import Any

import datumaro as dm  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tessera.export.formats.kitti import image_path, write_kitti
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

from .support import (
    BLOB,
    EMPTY,
    GOLDEN,
    HAND,
    HEAD,
    LANE,
    PERSON,
    ROAD,
    SIGN,
    TAGGED,
    WEATHER,
    GeneratedDataset,
    decode_png,
    export_files,
    label_names,
    painted_frame,
    peak_memory,
    street_task,
    unpack,
)

CAR = Label(
    1,
    "car",
    "rectangle",
    "#ff0000",
    attributes=(
        AttributeSpec(1, "truncated", "number", True, ("0", "1", "0.05"), "0"),
        AttributeSpec(2, "score", "number", True, ("0", "1", "0.01"), "1"),
    ),
)

TASK = street_task(car=CAR)

# 12 x 8. Upright boxes (B, F1) stay boxes: label_2. The masks, in CVAT's list: E C D A (the
# rotated box moves to the end), then group 3 (F2 alone). Painted by z_order: E A F2 (z 0),
# C (z 1), D (z 2).
STREET = FrameAnnotations(
    FrameInfo(0, "street_0.jpg", 12, 8),
    shapes=(
        Shape("rectangle", SIGN.id, (5.5, 5.8, 9.5, 6.8), rotation=90),  # A: column 7, rows 4-7
        Shape(
            "rectangle",
            CAR.id,
            (1, 1, 5, 4),
            occluded=True,
            attributes={"truncated": "0.25", "score": "0.75"},
        ),  # B
        Shape("polygon", ROAD.id, (3, 2, 9, 2, 9, 6, 3, 6), z_order=1),  # C: 3-8 x 2-5
        Shape("mask", BLOB.id, (1, 4, 1, 10, 5, 11, 7), z_order=2),  # D
        Shape("ellipse", SIGN.id, (10.5, 2.5, 11.7, 1.0)),  # E
        Shape("rectangle", CAR.id, (0.004, 6, 2, 8), group=3),  # F1
        Shape("polygon", ROAD.id, (2, 7, 4, 7, 4, 8, 2, 8), group=3),  # F2: columns 2-3, row 7
        Shape("polyline", LANE.id, (0, 0, 11, 0), z_order=3),
        Shape(
            "skeleton",
            PERSON.id,
            (),
            elements=(Shape("points", HEAD.id, (1, 1)), Shape("points", HAND.id, (2, 2))),
        ),
    ),
    tags=(Tag(WEATHER.id),),
)
FAR = FrameAnnotations(
    FrameInfo(3, "dir/far.jpg", 12, 8, subset="val"),
    shapes=(Shape("rectangle", CAR.id, (0.7, 0, 2.9, 2), track_id=5, keyframe=False),),
)
DATASET = InMemoryDataset(TASK, (STREET, EMPTY, TAGGED, FAR))

CLASSES = ["background", "Weather", "blob", "car", "hand", "head", "lane", "person", "road",
           "sign"]  # fmt: skip
COLORS = [(0, 0, 0), (171, 205, 239), (0, 0, 255), (255, 0, 0), (187, 187, 187), (170, 170, 170),
          (0, 255, 255), (18, 52, 86), (0, 255, 0), (255, 255, 0)]  # fmt: skip

# which mask shows: 1 E, 2 A, 3 F2, 4 C, 5 D
STREET_SHOWN = [
    "000000000000",
    "000000000010",
    "000444444111",
    "000444444010",
    "000444444000",
    "000444444005",
    "000000020055",
    "003300020050",
]
CLASS_OF = {0: 0, 1: 9, 2: 9, 3: 8, 4: 8, 5: 2}


def _classes() -> npt.NDArray[np.int64]:
    return np.array([[CLASS_OF[int(c)] for c in row] for row in STREET_SHOWN])


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_kitti, dataset, options)


def test_files_are_what_cvat_writes() -> None:
    files = asyncio.run(_export(DATASET))
    assert list(files) == [
        "default/semantic_rgb/street_0.png",
        "default/semantic/street_0.png",
        "default/instance/street_0.png",
        "default/label_2/street_0.txt",
        "val/label_2/dir/far.txt",
        "label_colors.txt",
    ]
    assert files["default/label_2/street_0.txt"] == (GOLDEN / "kitti_street_0.txt").read_bytes()
    assert files["val/label_2/dir/far.txt"] == (
        b"car 0.0 0 -1 0.7 0.0 2.9000000000000004 2.0 -1 -1 -1 -1 -1 -1 -1 1.0\n"
    )
    colors = "".join(
        f"{r} {g} {b} {name}\n" for name, (r, g, b) in zip(CLASSES, COLORS, strict=True)
    )
    assert files["label_colors.txt"] == colors.encode()


def test_pngs() -> None:
    files = asyncio.run(_export(DATASET))
    classes = _classes()
    semantic = decode_png(files["default/semantic/street_0.png"])
    assert semantic.dtype == np.uint16
    assert np.array_equal(semantic, classes)
    instance = decode_png(files["default/instance/street_0.png"])
    assert instance.dtype == np.uint16
    assert np.array_equal(instance, classes << 8)  # CVAT's masks carry no id: class * 256
    rgb = Image.open(io.BytesIO(files["default/semantic_rgb/street_0.png"]))
    assert rgb.mode == "P"
    assert np.array_equal(np.asarray(rgb), classes)
    decoded = decode_png(files["default/semantic_rgb/street_0.png"])[..., ::-1]
    assert np.array_equal(decoded, np.array(COLORS)[classes])


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    files = asyncio.run(_export(DATASET))
    unpack(files, tmp_path)
    segmentation = dm.Dataset.import_from(str(tmp_path), "kitti_segmentation")
    names = label_names(segmentation)
    assert names == CLASSES
    assert [(item.subset, item.id) for item in segmentation] == [("default", "street_0")]
    # one mask per class and instance id (every mask of a class has id 0); datumaro makes one
    # of the background too, which CVAT's KITTI importer filters out
    counts = Counter(names[ann.label] for item in segmentation for ann in item.annotations)
    del counts["background"]
    assert counts == {"sign": 1, "road": 1, "blob": 1}
    detection = dm.Dataset.import_from(str(tmp_path), "kitti_detection")
    names = label_names(detection)
    assert {(item.subset, item.id) for item in detection} == {("default", "street_0"),
                                                              ("val", "dir/far")}  # fmt: skip
    boxes = [ann for item in detection for ann in item.annotations]
    assert Counter(names[ann.label] for ann in boxes) == {"car": 3}
    street = next(item for item in detection if item.id == "street_0")
    first = street.annotations[0]
    assert first.get_bbox() == pytest.approx([1, 1, 4, 3])
    assert first.attributes["occluded"] is True
    assert first.attributes["truncated"] is True  # datumaro reads truncation > 0.1 as true
    assert first.attributes["score"] == pytest.approx(0.75)


def test_annotated_only_and_no_frames() -> None:
    frames = (EMPTY, TAGGED, FAR)
    files = asyncio.run(_export(InMemoryDataset(TASK, frames), ExportOptions(annotated_only=True)))
    assert list(files) == ["val/label_2/dir/far.txt", "label_colors.txt"]
    empty = asyncio.run(_export(InMemoryDataset(TASK, ())))
    assert list(empty) == ["label_colors.txt"]


def test_image_path_and_3d() -> None:
    assert image_path(FrameInfo(0, "dir/a.jpg", 1, 1), "train") == "train/image_2/dir/a.jpg"
    assert image_path(FrameInfo(0, "000001", 1, 1), "default") == "default/image_2/000001.png"
    task = TaskInfo(1, "cloud", "annotation", "3d", 0, (CAR,))
    with pytest.raises(ValueError, match="3D"):
        asyncio.run(_export(InMemoryDataset(task, ())))


def _peak_memory(count: int) -> int:
    return peak_memory(write_kitti, GeneratedDataset(TASK, count, painted_frame))


def test_memory_stays_flat_as_frames_grow() -> None:
    _peak_memory(5)
    small, large = _peak_memory(10), _peak_memory(80)
    assert large < small * 1.3 + (1 << 20), (small, large)
