"""Segmentation mask 1.1: the PNGs, lists and label map CVAT writes (expected values written
by hand from CVAT's mask.py, its bindings and its datumaro fork's VOC converter), datumaro as
an independent reader, annotated_only, and flat memory."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tessera.export.formats import paint
from tessera.export.formats import segmentation_mask as writer
from tessera.export.formats.segmentation_mask import image_path, write_segmentation_mask
from tessera.export.model import (
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    InMemoryDataset,
    Shape,
    Tag,
    TaskInfo,
)

from .support import (
    BLOB,
    CAR,
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
    export_files,
    import_with_datumaro,
    label_and_type_counts,
    label_names,
    painted_frame,
    peak_memory,
    street_task,
)

TASK = street_task()

# 12 x 8. In CVAT's order (z_order, plain before tracks) the shapes are A B E F1 F2 (person)
# (z 0), C (z 1), D (z 2), G (z 3). Segments: B E C D A (A, a rotated box, moves to the
# end), then group 3 (F1 + F2, as car: F1 is larger). Painted by z: B E A F (z 0), C, D.
STREET = FrameAnnotations(
    FrameInfo(0, "street_0.jpg", 12, 8),
    shapes=(
        # A: 4 x 1 box about (7.5, 6.3) turned upright: column 7, rows 4-7
        Shape("rectangle", SIGN.id, (5.5, 5.8, 9.5, 6.8), rotation=90),
        # B: columns 1-4, rows 1-3
        Shape("rectangle", CAR.id, (1, 1, 5, 4)),
        # C: columns 3-8, rows 2-5, over B and A
        Shape("polygon", ROAD.id, (3, 2, 9, 2, 9, 6, 3, 6), z_order=1),
        # D: a 2 x 3 mask at (10, 5): rows 01 / 11 / 10
        Shape("mask", BLOB.id, (1, 4, 1, 10, 5, 11, 7), z_order=2),
        # E: rx 1.2, ry 1.5 about (10.5, 2.5)
        Shape("ellipse", SIGN.id, (10.5, 2.5, 11.7, 1.0)),
        # F1 (4 pixels) and F2 (2 pixels): one car
        Shape("rectangle", CAR.id, (0.004, 6, 2, 8), group=3),
        Shape("polygon", ROAD.id, (2, 7, 4, 7, 4, 8, 2, 8), group=3),
        # G and the skeleton paint nothing
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
    shapes=(
        Shape("rectangle", CAR.id, (0, 0, 2, 2), track_id=5, keyframe=False),
        Shape("rectangle", ROAD.id, (4, 4, 8, 8), track_id=6, outside=True),
    ),
)
DATASET = InMemoryDataset(TASK, (STREET, EMPTY, TAGGED, FAR))

# labelmap.txt's order (CVAT sorts the label map by name): class k is line k + 1
CLASSES = ["Weather", "background", "blob", "car", "hand", "head", "lane", "person", "road",
           "sign"]  # fmt: skip
COLORS = {
    "Weather": (171, 205, 239),
    "background": (0, 0, 0),
    "blob": (0, 0, 255),
    "car": (255, 0, 0),
    "hand": (187, 187, 187),
    "head": (170, 170, 170),
    "lane": (0, 255, 255),
    "person": (18, 52, 86),
    "road": (0, 255, 0),
    "sign": (255, 255, 0),
}

# instance k is the k-th segment by z_order: 1 B, 2 E, 3 A, 4 F, 5 C, 6 D
STREET_OBJECTS = [
    "000000000000",
    "011110000020",
    "011555555222",
    "011555555020",
    "000555555000",
    "000555555006",
    "440000030066",
    "444400030060",
]
_CLASS_OF_INSTANCE = {0: 1, 1: 3, 2: 9, 3: 9, 4: 3, 5: 8, 6: 2}
FAR_OBJECTS = ["110000000000", "110000000000", *["000000000000"] * 6]


def _grid(rows: list[str]) -> npt.NDArray[np.int64]:
    return np.array([[int(c, 16) for c in row] for row in rows])


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_segmentation_mask, dataset, options)


def _png(data: bytes) -> tuple[str, npt.NDArray[Any], list[int]]:
    image = Image.open(io.BytesIO(data))
    return image.mode, np.asarray(image), list(image.getpalette() or [])


def _rgb(data: bytes) -> npt.NDArray[Any]:
    """What cv2 (datumaro's reader) decodes: the palette expanded to colours."""
    return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))[..., ::-1]


def test_files_are_what_cvat_writes() -> None:
    files = asyncio.run(_export(DATASET))
    assert list(files) == [
        "SegmentationClass/street_0.png",
        "SegmentationObject/street_0.png",
        "SegmentationClass/dir/far.png",
        "SegmentationObject/dir/far.png",
        "ImageSets/Segmentation/default.txt",
        "ImageSets/Segmentation/val.txt",
        "labelmap.txt",
    ]
    # frames with masks, and frames with nothing at all; not "tagged" (a tag, a polyline)
    assert files["ImageSets/Segmentation/default.txt"] == b"street_0\nempty_1\n"
    assert files["ImageSets/Segmentation/val.txt"] == b"dir/far\n"
    golden = GOLDEN / "segmentation_mask_labelmap.txt"
    assert files["labelmap.txt"] == golden.read_bytes()
    assert [line.split(":")[0] for line in golden.read_text().splitlines()[1:]] == CLASSES


def test_class_and_object_pngs() -> None:
    files = asyncio.run(_export(DATASET))
    palette = [channel for name in CLASSES for channel in COLORS[name]]
    objects = _grid(STREET_OBJECTS)
    classes = np.vectorize(_CLASS_OF_INSTANCE.get)(objects)

    mode, pixels, stored = _png(files["SegmentationClass/street_0.png"])
    assert mode == "P"
    assert stored[: len(palette)] == palette
    assert np.array_equal(pixels, classes)
    want_rgb = np.array([[COLORS[CLASSES[c]] for c in row] for row in classes])
    assert np.array_equal(_rgb(files["SegmentationClass/street_0.png"]), want_rgb)

    mode, pixels, stored = _png(files["SegmentationObject/street_0.png"])
    assert mode == "P"
    assert stored[:21] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128, 128, 0, 128,
                           0, 128, 128]  # fmt: skip
    assert np.array_equal(pixels, objects)

    far = _grid(FAR_OBJECTS)
    assert np.array_equal(_png(files["SegmentationObject/dir/far.png"])[1], far)
    assert np.array_equal(_png(files["SegmentationClass/dir/far.png"])[1], np.where(far, 3, 1))


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    dataset = import_with_datumaro(asyncio.run(_export(DATASET)), tmp_path, "voc_segmentation")
    names = label_names(dataset)
    assert names == CLASSES
    assert {(item.subset, item.id) for item in dataset} == {
        ("default", "street_0"),
        ("default", "empty_1"),
        ("val", "dir/far"),
    }
    counts = label_and_type_counts(dataset)
    assert counts == {("car", "mask"): 3, ("sign", "mask"): 2, ("road", "mask"): 1,
                      ("blob", "mask"): 1}  # fmt: skip
    street = next(item for item in dataset if item.id == "street_0")
    road = next(ann for ann in street.annotations if names[ann.label] == "road")
    assert int(road.image.sum()) == 24


def test_annotated_only_and_no_frames() -> None:
    files = asyncio.run(_export(DATASET, ExportOptions(annotated_only=True)))
    assert files["ImageSets/Segmentation/default.txt"] == b"street_0\n"
    empty = asyncio.run(_export(InMemoryDataset(TASK, ())))
    assert list(empty) == ["labelmap.txt"]


def test_image_path_and_3d() -> None:
    assert image_path(FrameInfo(0, "dir/a.png", 1, 1), "train") == "JPEGImages/dir/a.png"
    assert image_path(FrameInfo(0, "frame_000001", 1, 1), "default") == (
        "JPEGImages/frame_000001.jpg"
    )
    task = TaskInfo(1, "cloud", "annotation", "3d", 0, (CAR,))
    with pytest.raises(ValueError, match="2D"):
        asyncio.run(_export(InMemoryDataset(task, ())))


def _peak_memory(count: int) -> int:
    return peak_memory(write_segmentation_mask, GeneratedDataset(TASK, count, painted_frame))


def test_memory_stays_flat_as_frames_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paint, "_SPOOL_BYTES", 16 << 10)
    assert writer.DEFAULT_SUBSET == "default"
    _peak_memory(5)
    small, large = _peak_memory(10), _peak_memory(80)
    assert large < small * 1.3 + (1 << 20), (small, large)
