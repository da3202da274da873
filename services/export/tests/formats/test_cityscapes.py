"""Cityscapes 1.0: the PNGs and label colours CVAT writes (expected values written by hand
from CVAT's cityscapes.py, its bindings and its datumaro fork's Cityscapes converter),
datumaro as an independent reader, annotated_only, and flat memory."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import datumaro as dm  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tessera.export.formats.cityscapes import image_path, write_cityscapes
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
    decode_png,
    export_files,
    label_names,
    painted_frame,
    peak_memory,
    street_task,
    unpack,
)

BLOB = Label(
    3,
    "blob",
    "mask",
    "#0000ff",
    (AttributeSpec(1, "is_crowd", "checkbox", False, ("false",), "false"),),
)

TASK = street_task(blob=BLOB)

# 12 x 8. CVAT's list of masks: B E C D A (the rotated box moves to the end), then group 3
# (F1 + F2 as car): n = 1..6 in that order. Painted by z_order: B E A F (z 0), C, D.
STREET = FrameAnnotations(
    FrameInfo(0, "street_0.jpg", 12, 8),
    shapes=(
        Shape("rectangle", SIGN.id, (5.5, 5.8, 9.5, 6.8), rotation=90),  # A: column 7, rows 4-7
        Shape("rectangle", CAR.id, (1, 1, 5, 4)),  # B: columns 1-4, rows 1-3
        Shape("polygon", ROAD.id, (3, 2, 9, 2, 9, 6, 3, 6), z_order=1),  # C: 3-8 x 2-5
        Shape(
            "mask", BLOB.id, (1, 4, 1, 10, 5, 11, 7), z_order=2, attributes={"is_crowd": "true"}
        ),  # D: a crowd
        Shape("ellipse", SIGN.id, (10.5, 2.5, 11.7, 1.0)),  # E
        Shape("rectangle", CAR.id, (0.004, 6, 2, 8), group=3),  # F1: 4 pixels
        Shape("polygon", ROAD.id, (2, 7, 4, 7, 4, 8, 2, 8), group=3),  # F2: 2 pixels
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
    shapes=(Shape("rectangle", CAR.id, (0, 0, 2, 2), track_id=5, keyframe=False),),
)
DATASET = InMemoryDataset(TASK, (STREET, EMPTY, TAGGED, FAR))

# background first, then the rest sorted by name
CLASSES = ["background", "Weather", "blob", "car", "hand", "head", "lane", "person", "road",
           "sign"]  # fmt: skip
COLORS = [(0, 0, 0), (171, 205, 239), (0, 0, 255), (255, 0, 0), (187, 187, 187), (170, 170, 170),
          (0, 255, 255), (18, 52, 86), (0, 255, 0), (255, 255, 0)]  # fmt: skip

# which mask shows: 1 B, 2 E, 3 A, 4 F, 5 C, 6 D (painting order)
STREET_SHOWN = [
    "000000000000",
    "011110000020",
    "011555555222",
    "011555555020",
    "000555555000",
    "000555555006",
    "440000030066",
    "444400030060",
]
CLASS_OF = {0: 0, 1: 3, 2: 9, 3: 9, 4: 3, 5: 8, 6: 2}
# class * 1000 + n, n the place in CVAT's list (B 1, E 2, C 3, D 4, A 5, F 6); D is a crowd
INSTANCE_OF = {0: 0, 1: 3001, 2: 9002, 3: 9005, 4: 3006, 5: 8003, 6: 2}


def _grid(rows: list[str], values: dict[int, int]) -> npt.NDArray[np.int64]:
    return np.array([[values[int(c)] for c in row] for row in rows])


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_cityscapes, dataset, options)


def test_files_are_what_cvat_writes() -> None:
    files = asyncio.run(_export(DATASET))
    assert list(files) == [
        "gtFine/default/street_0_gtFine_labelIds.png",
        "gtFine/default/street_0_gtFine_color.png",
        "gtFine/default/street_0_gtFine_instanceIds.png",
        "gtFine/val/dir/far_gtFine_labelIds.png",
        "gtFine/val/dir/far_gtFine_color.png",
        "gtFine/val/dir/far_gtFine_instanceIds.png",
        "label_colors.txt",
    ]
    golden = (GOLDEN / "cityscapes_label_colors.txt").read_bytes()
    assert files["label_colors.txt"] == golden
    assert [line.split()[-1] for line in golden.decode().splitlines()] == CLASSES


def test_pngs() -> None:
    files = asyncio.run(_export(DATASET))
    classes = _grid(STREET_SHOWN, CLASS_OF)
    label_ids = decode_png(files["gtFine/default/street_0_gtFine_labelIds.png"])
    assert label_ids.dtype == np.uint8
    assert np.array_equal(label_ids, classes)
    instances = decode_png(files["gtFine/default/street_0_gtFine_instanceIds.png"])
    assert instances.dtype == np.uint16
    assert np.array_equal(instances, _grid(STREET_SHOWN, INSTANCE_OF))
    color = Image.open(io.BytesIO(files["gtFine/default/street_0_gtFine_color.png"]))
    assert color.mode == "P"
    assert np.array_equal(np.asarray(color), classes)
    rgb = decode_png(files["gtFine/default/street_0_gtFine_color.png"])[..., ::-1]
    assert np.array_equal(rgb, np.array(COLORS)[classes])
    far = np.zeros((8, 12), np.int64)
    far[0:2, 0:2] = 1
    assert np.array_equal(decode_png(files["gtFine/val/dir/far_gtFine_labelIds.png"]), far * 3)
    assert np.array_equal(
        decode_png(files["gtFine/val/dir/far_gtFine_instanceIds.png"]), far * 3001
    )


def _import(files: dict[str, bytes], root: Path) -> Any:
    unpack(files, root)
    for subset in ("default", "val"):
        # datumaro 1.13 wants image folders, even empty, at `leftImg8bit/<subset>` (CVAT's
        # fork puts images in `imgsFine/leftImg8bit/<subset>`, and only when asked to)
        (root / "leftImg8bit" / subset).mkdir(parents=True, exist_ok=True)
    return dm.Dataset.import_from(str(root), "cityscapes")


def _counts(dataset: Any) -> Counter[str]:
    names = label_names(dataset)
    return Counter(names[ann.label] for item in dataset for ann in item.annotations)


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    files = asyncio.run(_export(DATASET))
    dataset = _import(files, tmp_path / "as_written")
    assert label_names(dataset) == CLASSES
    assert {(item.subset, item.id) for item in dataset} == {("default", "street_0"),
                                                            ("val", "dir/far")}  # fmt: skip
    # datumaro 1.13 reads `instanceIds` as a class map (it looks for each class id in it):
    # of our instance ids only the crowd's (its class id) is one
    assert _counts(dataset) == {"blob": 1}
    # so the class maps are checked by handing it `labelIds` under that name
    swapped = {
        name.replace("labelIds", "instanceIds") if "labelIds" in name else name: content
        for name, content in files.items()
        if "instanceIds" not in name
    }
    shutil.rmtree(tmp_path / "as_written")
    dataset = _import(swapped, tmp_path / "classes")
    assert _counts(dataset) == {"car": 2, "sign": 1, "road": 1, "blob": 1}


def test_a_black_label_is_the_background() -> None:
    asphalt = Label(10, "Asphalt", "polygon", "#000000")
    task = TaskInfo(4, "t", "annotation", "2d", 1, (CAR, asphalt))
    frame = FrameAnnotations(
        FrameInfo(0, "a.png", 4, 2),
        shapes=(
            Shape("rectangle", CAR.id, (0, 0, 4, 2)),
            Shape("polygon", asphalt.id, (2, 0, 4, 0, 4, 2, 2, 2), z_order=1),  # erases
        ),
    )
    files = asyncio.run(_export(InMemoryDataset(task, (frame,))))
    assert files["label_colors.txt"] == b"0 0 0 Asphalt\n0 0 0 background\n255 0 0 car\n"
    assert decode_png(files["gtFine/default/a_gtFine_labelIds.png"]).tolist() == [[2, 2, 0, 0]] * 2
    assert (
        decode_png(files["gtFine/default/a_gtFine_instanceIds.png"]).tolist()
        == [[2001, 2001, 0, 0]] * 2
    )


def test_annotated_only_and_no_frames() -> None:
    frames = (EMPTY, TAGGED, FAR)
    files = asyncio.run(_export(InMemoryDataset(TASK, frames), ExportOptions(annotated_only=True)))
    assert len(files) == 4
    empty = asyncio.run(_export(InMemoryDataset(TASK, ())))
    assert list(empty) == ["label_colors.txt"]


def test_image_path_and_3d() -> None:
    frame = FrameInfo(0, "dir/a.jpg", 1, 1)
    assert image_path(frame, "train") == "imgsFine/leftImg8bit/train/dir/a_leftImg8bit.jpg"
    assert image_path(FrameInfo(0, "frame_000001", 1, 1), "default") == (
        "imgsFine/leftImg8bit/default/frame_000001_leftImg8bit.png"
    )
    task = TaskInfo(1, "cloud", "annotation", "3d", 0, (CAR,))
    with pytest.raises(ValueError, match="2D"):
        asyncio.run(_export(InMemoryDataset(task, ())))


def _peak_memory(count: int) -> int:
    return peak_memory(write_cityscapes, GeneratedDataset(TASK, count, painted_frame))


def test_memory_stays_flat_as_frames_grow() -> None:
    _peak_memory(5)
    small, large = _peak_memory(10), _peak_memory(80)
    assert large < small * 1.3 + (1 << 20), (small, large)
