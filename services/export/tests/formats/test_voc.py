"""PASCAL VOC 1.1: the annotations, masks and lists CVAT writes (expected values written by
hand from CVAT's pascal_voc.py, its bindings and its datumaro fork's VOC converter), datumaro
as an independent reader, annotated_only, and flat memory."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tessera.export.formats import paint
from tessera.export.formats.voc import image_path, write_voc
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
    WEATHER,
    GeneratedDataset,
    export_files,
    import_with_datumaro,
    label_and_type_counts,
    label_names,
    peak_memory,
    street_task,
)

CAR = Label(
    1,
    "car",
    "rectangle",
    "#ff0000",
    attributes=(
        AttributeSpec(1, "model", "select", False, ("sedan", "suv"), "sedan"),
        AttributeSpec(2, "truncated", "checkbox", True, ("false",), "false"),
        AttributeSpec(3, "difficult", "number", True, ("0", "5", "0.1"), "0"),
        AttributeSpec(4, "pose", "text", True, (), "Unspecified"),
    ),
)
SIGN = Label(
    4, "sign", "ellipse", "#ffff00", (AttributeSpec(5, "kind", "text", False, (), "stop"),)
)

TASK = street_task(car=CAR, sign=SIGN)

STREET = FrameAnnotations(
    FrameInfo(0, "street_0.jpg", 12, 8),
    shapes=(
        Shape("rectangle", SIGN.id, (5.5, 5.8, 9.5, 6.8), rotation=90),  # written upright
        Shape(
            "rectangle",
            CAR.id,
            (1, 1, 5, 4),
            occluded=True,
            attributes={"model": "suv", "truncated": "true", "difficult": "1.9", "pose": "Left"},
        ),
        Shape("polygon", ROAD.id, (3, 2, 9, 2, 9, 6, 3, 6), z_order=1),  # not a VOC mask
        Shape("mask", BLOB.id, (1, 4, 1, 10, 5, 11, 7), z_order=2),
        Shape("ellipse", SIGN.id, (10.5, 2.5, 11.7, 1.0)),
        Shape("rectangle", CAR.id, (0.004, 6, 2, 8), group=3),
        Shape("polygon", ROAD.id, (2, 7, 4, 7, 4, 8, 2, 8), group=3),
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
TAGGED = FrameAnnotations(
    FrameInfo(2, "tagged.jpg", 12, 8),
    shapes=(Shape("polyline", LANE.id, (0, 0, 5, 5)),),
    tags=(Tag(WEATHER.id), Tag(ROAD.id)),
)
FAR = FrameAnnotations(
    FrameInfo(3, "dir/far.jpg", 12, 8, subset="val"),
    shapes=(
        Shape(
            "rectangle",
            CAR.id,
            (0.7, 0, 2.9, 2),
            track_id=5,
            keyframe=False,
            attributes={"model": "x<y&z>\"'"},
        ),
        Shape("rectangle", ROAD.id, (4, 4, 8, 8), track_id=6, outside=True),
    ),
)
DATASET = InMemoryDataset(TASK, (STREET, EMPTY, TAGGED, FAR))

CLASSES = ["background", "car", "road", "blob", "sign", "lane", "Weather", "person", "head",
           "hand"]  # fmt: skip

# the masks are E (sign, instance 1) and D (blob, instance 2, z_order 2)
STREET_OBJECTS = [
    "000000000000",
    "000000000010",
    "000000000111",
    "000000000010",
    "000000000000",
    "000000000002",
    "000000000022",
    "000000000020",
]


def _grid(rows: list[str]) -> Any:
    return np.array([[int(c) for c in row] for row in rows])


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_voc, dataset, options)


def test_members_and_lists_are_what_cvat_writes() -> None:
    files = asyncio.run(_export(DATASET))
    class_lists = [f"ImageSets/Main/{name}_default.txt" for name in CLASSES]
    assert list(files) == [
        "Annotations/street_0.xml",
        "SegmentationClass/street_0.png",
        "SegmentationObject/street_0.png",
        "Annotations/empty_1.xml",
        "Annotations/tagged.xml",
        "Annotations/dir/far.xml",
        "ImageSets/Main/default.txt",
        *class_lists,
        "ImageSets/Action/default.txt",
        "ImageSets/Layout/default.txt",
        "ImageSets/Segmentation/default.txt",
        "ImageSets/Main/val.txt",
        "labelmap.txt",
    ]
    assert files["ImageSets/Main/default.txt"] == b"street_0\nempty_1\ntagged\n"
    assert files["ImageSets/Main/val.txt"] == b"dir/far\n"
    # a line for each frame with tags: " 1" when one of its tags has the class, else "-1"
    expected = dict.fromkeys(CLASSES, b"street_0 -1\ntagged -1\n")
    expected["Weather"] = b"street_0  1\ntagged  1\n"
    expected["road"] = b"street_0 -1\ntagged  1\n"
    assert {name: files[f"ImageSets/Main/{name}_default.txt"] for name in CLASSES} == expected
    # frames with nothing on them; Segmentation adds the frames with masks
    assert files["ImageSets/Action/default.txt"] == b"empty_1\n"
    assert files["ImageSets/Layout/default.txt"] == b"empty_1\n"
    assert files["ImageSets/Segmentation/default.txt"] == b"street_0\nempty_1\n"
    assert files["labelmap.txt"] == (GOLDEN / "voc_labelmap.txt").read_bytes()


def test_annotation_xml() -> None:
    files = asyncio.run(_export(DATASET))
    assert files["Annotations/street_0.xml"] == (GOLDEN / "voc_street_0.xml").read_bytes()
    assert files["Annotations/dir/far.xml"] == (GOLDEN / "voc_far.xml").read_bytes()
    empty = files["Annotations/empty_1.xml"].decode()
    assert "<folder>empty</folder>" in empty
    assert "<filename>empty_1.png</filename>" in empty
    assert "<segmented>0</segmented>" in empty
    assert "<object>" not in empty


def test_masks_are_mask_shapes_and_ellipses() -> None:
    files = asyncio.run(_export(DATASET))
    objects = Image.open(io.BytesIO(files["SegmentationObject/street_0.png"]))
    assert objects.mode == "P"
    assert np.array_equal(np.asarray(objects), _grid(STREET_OBJECTS))
    classes = Image.open(io.BytesIO(files["SegmentationClass/street_0.png"]))
    assert classes.mode == "P"
    assert np.array_equal(np.asarray(classes), np.choose(_grid(STREET_OBJECTS), [0, 4, 3]))
    # class k in VOC's colour k
    assert (classes.getpalette() or [])[:15] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0,
                                                 0, 0, 128]  # fmt: skip


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    dataset = import_with_datumaro(asyncio.run(_export(DATASET)), tmp_path, "voc")
    names = label_names(dataset)
    assert names[: len(CLASSES)] == CLASSES
    assert {(item.subset, item.id) for item in dataset} == {
        ("default", "street_0"),
        ("default", "empty_1"),
        ("default", "tagged"),
        ("val", "dir/far"),
    }
    counts = label_and_type_counts(dataset)
    assert counts == {
        ("sign", "bbox"): 1,
        ("car", "bbox"): 3,
        ("sign", "mask"): 1,
        ("blob", "mask"): 1,
        ("Weather", "label"): 2,
        ("road", "label"): 1,
    }
    far = next(item for item in dataset if item.id == "dir/far")
    box = far.annotations[0]
    assert box.get_bbox() == pytest.approx([0.7, 0, 2.2, 2])
    assert box.attributes["model"] == "x<y&z>\"'"


def test_annotated_only_quoting_and_no_frames() -> None:
    frames = (
        EMPTY,
        FrameAnnotations(FrameInfo(5, "two words.png", 4, 4)),
        FrameAnnotations(FrameInfo(6, "b.png", 4, 4), tags=(Tag(WEATHER.id),)),
    )
    files = asyncio.run(_export(InMemoryDataset(TASK, frames)))
    assert files["ImageSets/Action/default.txt"] == b"empty_1\ntwo words\n"
    assert files["ImageSets/Layout/default.txt"] == b'empty_1\n"two words"\n'
    only = asyncio.run(_export(InMemoryDataset(TASK, frames), ExportOptions(annotated_only=True)))
    assert only["ImageSets/Main/default.txt"] == b"b\n"
    assert "ImageSets/Action/default.txt" not in only
    assert "ImageSets/Segmentation/default.txt" not in only
    empty = asyncio.run(_export(InMemoryDataset(TASK, ())))
    assert list(empty) == ["labelmap.txt"]


def test_image_path_and_3d() -> None:
    assert image_path(FrameInfo(0, "dir/a.png", 1, 1), "train") == "JPEGImages/dir/a.png"
    assert image_path(FrameInfo(0, "frame_000001", 1, 1), "x") == "JPEGImages/frame_000001.jpg"
    task = TaskInfo(1, "cloud", "annotation", "3d", 0, (CAR,))
    with pytest.raises(ValueError, match="2D"):
        asyncio.run(_export(InMemoryDataset(task, ())))


def _generated_frame(index: int) -> FrameAnnotations:
    return FrameAnnotations(
        FrameInfo(index, f"frame_{index:06d}.jpg", 240, 160),
        shapes=(
            Shape("rectangle", CAR.id, (index % 50, 10, 100, 120.5)),
            Shape("ellipse", SIGN.id, (50, 50, 80, 20), z_order=1),
            Shape("mask", BLOB.id, (1, 4, 1, 10, 5, 11, 7)),
        ),
        tags=(Tag(WEATHER.id),),
    )


def _peak_memory(count: int) -> int:
    return peak_memory(write_voc, GeneratedDataset(TASK, count, _generated_frame))


def test_memory_stays_flat_as_frames_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paint, "_SPOOL_BYTES", 16 << 10)
    _peak_memory(5)
    small, large = _peak_memory(10), _peak_memory(80)
    assert large < small * 1.3 + (1 << 20), (small, large)
