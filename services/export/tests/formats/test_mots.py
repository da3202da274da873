"""MOTS PNG 1.0: the instance PNGs and labels CVAT writes (expected values written by hand
from CVAT's mots.py, its bindings and its datumaro fork's MOTS converter), datumaro as an
independent reader, the format's limits, annotated_only, and flat memory."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tessera.export.formats.mots import image_path, write_mots
from tessera.export.model import (
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
    GeneratedDataset,
    decode_png,
    export_files,
    import_with_datumaro,
    label_names,
    peak_memory,
)

CAR = Label(1, "car", "rectangle", "#ff0000")
PEDESTRIAN = Label(2, "pedestrian", "polygon", "#00ff00")
TREE = Label(3, "tree", "mask", "#0000ff")
WEATHER = Label(4, "Weather", "tag", "#abcdef")
NOSE = Label(6, "nose", "points", "#aaaaaa", parent_id=5)
BODY = Label(5, "body", "skeleton", "#123456", sublabels=(NOSE,))

TASK = TaskInfo(
    id=3,
    name="walk",
    mode="interpolation",
    dimension="2d",
    size=4,
    labels=(CAR, PEDESTRIAN, TREE, WEATHER, BODY),
)

# tracks are numbered as they first appear: 99 is 0 (though outside), 40 is 1, 12 is 2, 7 is 3
F0 = FrameAnnotations(
    FrameInfo(0, "f0.jpg", 10, 6),
    shapes=(
        Shape("rectangle", CAR.id, (5, 5, 6, 6), track_id=99, outside=True),
        Shape("rectangle", CAR.id, (1, 1, 4, 3), track_id=40),  # columns 1-3, rows 1-2
        Shape("polygon", PEDESTRIAN.id, (3, 2, 7, 2, 7, 5, 3, 5), z_order=1, track_id=12),
        Shape("mask", TREE.id, (0, 1, 0, 0, 9, 9), z_order=0),  # not a track: not written
        Shape("mask", TREE.id, (0, 4, 8, 0, 9, 1), track_id=7),  # columns 8-9, rows 0-1
        Shape("points", CAR.id, (1, 1), track_id=41),
    ),
    tags=(Tag(WEATHER.id),),
)
F1 = FrameAnnotations(
    FrameInfo(1, "f1.jpg", 10, 6),
    shapes=(
        Shape("rectangle", CAR.id, (2, 1, 5, 3), track_id=40, keyframe=False),
        Shape("polygon", PEDESTRIAN.id, (3, 2, 7, 2, 7, 5), track_id=12, outside=True),
    ),
)
F2 = FrameAnnotations(
    FrameInfo(2, "f2.jpg", 10, 6), shapes=(Shape("rectangle", CAR.id, (0, 0, 9, 5)),)
)
F3 = FrameAnnotations(
    FrameInfo(3, "x/f3.jpg", 10, 6, subset="train"),
    shapes=(Shape("polygon", PEDESTRIAN.id, (0, 0, 2, 0, 2, 2, 0, 2), track_id=12),),
)
DATASET = InMemoryDataset(TASK, (F0, F1, F2, F3))

LABELS = b"car\npedestrian\ntree\nWeather\nbody\nnose"


def _grid(rows: list[list[int]]) -> npt.NDArray[np.int64]:
    return np.array(rows)


F0_VALUES = [
    [0, 0, 0, 0, 0, 0, 0, 0, 3003, 3003],
    [0, 1001, 1001, 1001, 0, 0, 0, 0, 3003, 3003],
    [0, 1001, 1001, 2002, 2002, 2002, 2002, 0, 0, 0],
    [0, 0, 0, 2002, 2002, 2002, 2002, 0, 0, 0],
    [0, 0, 0, 2002, 2002, 2002, 2002, 0, 0, 0],
    [0] * 10,
]
F1_VALUES = [
    [0] * 10,
    [0, 0, 1001, 1001, 1001, 0, 0, 0, 0, 0],
    [0, 0, 1001, 1001, 1001, 0, 0, 0, 0, 0],
    *[[0] * 10] * 3,
]


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_mots, dataset, options)


def test_files_are_what_cvat_writes() -> None:
    files = asyncio.run(_export(DATASET))
    assert list(files) == [
        "default/instances/f0.png",
        "default/instances/f1.png",
        "train/instances/x/f3.png",
        "default/instances/labels.txt",
        "train/instances/labels.txt",
    ]
    assert files["default/instances/labels.txt"] == LABELS
    assert files["train/instances/labels.txt"] == LABELS
    f0 = decode_png(files["default/instances/f0.png"])
    assert f0.dtype == np.uint16
    assert np.array_equal(f0, _grid(F0_VALUES))
    assert np.array_equal(decode_png(files["default/instances/f1.png"]), _grid(F1_VALUES))
    f3 = np.zeros((6, 10), np.int64)
    f3[0:2, 0:2] = 2002
    assert np.array_equal(decode_png(files["train/instances/x/f3.png"]), f3)


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    dataset = import_with_datumaro(asyncio.run(_export(DATASET)), tmp_path, "mots")
    names = label_names(dataset)
    assert names == ["car", "pedestrian", "tree", "Weather", "body", "nose"]
    assert {(item.subset, item.id) for item in dataset} == {
        ("default", "f0"),
        ("default", "f1"),
        ("train", "x/f3"),
    }
    counts = Counter(
        (names[ann.label], ann.attributes["track_id"])
        for item in dataset
        for ann in item.annotations
    )
    assert counts == {("car", 1): 2, ("pedestrian", 2): 2, ("tree", 3): 1}


def test_the_format_s_limits() -> None:
    points = tuple(Shape("points", CAR.id, (1, 1), track_id=k) for k in range(1000))
    crowded = FrameAnnotations(
        FrameInfo(0, "a.jpg", 4, 4),
        shapes=(*points, Shape("rectangle", CAR.id, (0, 0, 2, 2), track_id=5000)),
    )
    with pytest.raises(ValueError, match="1000 tracks"):
        asyncio.run(_export(InMemoryDataset(TASK, (crowded,))))
    many = tuple(Label(k, f"l{k}", "rectangle", "#000000") for k in range(1, 67))
    task = TaskInfo(1, "t", "interpolation", "2d", 1, many)
    frame = FrameAnnotations(
        FrameInfo(0, "a.jpg", 4, 4), shapes=(Shape("rectangle", 66, (0, 0, 2, 2), track_id=1),)
    )
    with pytest.raises(ValueError, match="16-bit"):
        asyncio.run(_export(InMemoryDataset(task, (frame,))))
    frame = FrameAnnotations(
        FrameInfo(0, "a.jpg", 4, 4), shapes=(Shape("rectangle", 65, (0, 0, 2, 2), track_id=1),)
    )
    files = asyncio.run(_export(InMemoryDataset(task, (frame,))))
    assert decode_png(files["default/instances/a.png"])[0, 0] == 65000


def test_annotated_only_and_no_frames() -> None:
    frames = (FrameAnnotations(FrameInfo(9, "e.jpg", 4, 4, subset="val")), F2)
    files = asyncio.run(_export(InMemoryDataset(TASK, frames), ExportOptions(annotated_only=True)))
    assert list(files) == ["default/instances/labels.txt"]
    files = asyncio.run(_export(InMemoryDataset(TASK, frames)))
    assert list(files) == ["val/instances/labels.txt", "default/instances/labels.txt"]
    empty = asyncio.run(_export(InMemoryDataset(TASK, ())))
    assert list(empty) == ["default/instances/labels.txt"]


def test_image_path_and_3d() -> None:
    assert image_path(FrameInfo(0, "dir/a.png", 1, 1), "train") == "train/images/dir/a.png"
    assert image_path(FrameInfo(0, "frame_000001", 1, 1), "default") == (
        "default/images/frame_000001.jpg"
    )
    task = TaskInfo(1, "cloud", "annotation", "3d", 0, (CAR,))
    with pytest.raises(ValueError, match="2D"):
        asyncio.run(_export(InMemoryDataset(task, ())))


def _generated_frame(index: int) -> FrameAnnotations:
    return FrameAnnotations(
        FrameInfo(index, f"frame_{index:06d}.jpg", 240, 160),
        shapes=(
            Shape("rectangle", CAR.id, (index % 50, 10, 100, 120.5), track_id=1),
            Shape("polygon", PEDESTRIAN.id, (0, 0, 100, 0, 50, 80.25, 3, 4), z_order=1, track_id=2),
            Shape("mask", TREE.id, (1, 4, 1, 10, 5, 11, 7), track_id=3),
        ),
    )


def _peak_memory(count: int) -> int:
    return peak_memory(write_mots, GeneratedDataset(TASK, count, _generated_frame))


def test_memory_stays_flat_as_frames_grow() -> None:
    _peak_memory(5)
    small, large = _peak_memory(10), _peak_memory(80)
    assert large < small * 1.3 + (1 << 20), (small, large)
