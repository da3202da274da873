"""MOT 1.1: `gt/gt.txt` and `gt/labels.txt` as CVAT writes them (expected lines written by
hand from CVAT's mot.py and its datumaro fork's `MotSeqGtConverter`), datumaro as an
independent reader, and the writer's speed and flat memory on a long tracked video."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tessera.export.formats.mot import image_path, image_paths, write_mot
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
    export_files,
    import_with_datumaro,
    label_and_type_counts,
    label_names,
    peak_memory,
)

CAR = Label(
    1,
    "car",
    "rectangle",
    "#ff0000",
    (AttributeSpec(1, "model", "select", False, ("sedan", "suv"), "sedan"),),
)
PEDESTRIAN = Label(
    2,
    "pedestrian",
    "rectangle",
    "#00ff00",
    (
        AttributeSpec(2, "ignored", "checkbox", True, ("false",), "false"),
        AttributeSpec(3, "visibility", "number", True, ("0", "1", "0.01"), "1"),
    ),
)
ROAD = Label(3, "road", "polygon", "#0000ff")
HEAD = Label(5, "head", "points", "#aaaaaa", parent_id=4)
PERSON = Label(4, "person", "skeleton", "#123456", sublabels=(HEAD,))
WEATHER = Label(6, "weather", "tag", "#abcdef")

TASK = TaskInfo(
    id=3,
    name="crossing",
    mode="annotation",
    dimension="2d",
    size=4,
    labels=(WEATHER, CAR, PEDESTRIAN, ROAD, PERSON),  # written in label id order
)

FRAMES = (
    FrameAnnotations(
        FrameInfo(0, "street/a.jpg", 64, 48),
        shapes=(
            Shape(
                "rectangle",
                CAR.id,
                (10, 20, 30.333, 40.005),
                rotation=30,
                occluded=True,
                z_order=1,
                attributes={"model": "suv"},
            ),
            Shape(
                "rectangle",
                PEDESTRIAN.id,
                (1.005, 2.5, 11.115, 12),
                attributes={"ignored": "true", "visibility": "0.25"},
            ),
            Shape("polygon", ROAD.id, (0, 0, 10, 0, 5, 8)),
            Shape("skeleton", PERSON.id, (), elements=(Shape("points", HEAD.id, (3, 4)),)),
        ),
        tags=(Tag(WEATHER.id),),
    ),
    FrameAnnotations(FrameInfo(1, "b.png", 64, 48), tags=(Tag(WEATHER.id),)),
    FrameAnnotations(
        FrameInfo(2, "c.jpg", 64, 48),
        shapes=(
            Shape("rectangle", CAR.id, (1, 1, 2, 2), track_id=40, keyframe=False),
            Shape("rectangle", CAR.id, (5, 5, 9, 9), track_id=11, outside=True),
            Shape("rectangle", PEDESTRIAN.id, (3, 3, 4.1, 4.7), track_id=11, occluded=True),
            Shape("rectangle", CAR.id, (3, 3, 4, 4), occluded=True),
        ),
    ),
    FrameAnnotations(
        FrameInfo(3, "000042.jpg", 64, 48),
        shapes=(Shape("rectangle", PEDESTRIAN.id, (0.1, 0.2, 0.3, 0.7), track_id=40),),
    ),
)
DATASET = InMemoryDataset(TASK, FRAMES)

# frame, id, x, y, w, h, not ignored, class, visibility; what csv writes: repr of the floats,
# "\r\n" line ends. Frames: "street/a" and "c" are no numbers, so 1 + their position
# (1, 3); "000042" is 42. Tracks are numbered by first appearance (40 -> 1, 11 -> 2), plain
# boxes get -1; within a frame plain shapes come first, then by z_order (the occluded car
# has z_order 1). Classes, by label id: car 1, pedestrian 2, road 3, person 4, head 5,
# weather 6.
EXPECTED_GT = (
    # the pedestrian: ignored (0), its visibility attribute (0.25); x 1.005 rounds to 1.0
    "1,-1,1.0,2.5,10.11,9.5,0,2,0.25\r\n"
    # the car: unrotated, occluded and without a visibility attribute: 0.0; datumaro keeps
    # the corner y0 + h = 40.005 rounded (40.01), and h is 40.01 - 20.0 in floats
    "1,-1,10.0,20.0,20.33,20.009999999999998,1,1,0.0\r\n"
    "3,-1,3.0,3.0,1.0,1.0,1,1,0.0\r\n"
    "3,1,1.0,1.0,1.0,1.0,1,1,1.0\r\n"
    # occluded, but the pedestrian's visibility attribute (default 1) decides
    "3,2,3.0,3.0,1.0999999999999996,1.7000000000000002,1,2,1.0\r\n"
    "42,1,0.1,0.2,0.19999999999999998,0.49999999999999994,1,2,1.0\r\n"
)
EXPECTED_LABELS = "car\npedestrian\nroad\nperson\nhead\nweather"


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_mot, dataset, options)


def test_gt_is_what_cvat_writes() -> None:
    files = asyncio.run(_export(DATASET))
    assert list(files) == ["gt/gt.txt", "gt/labels.txt"]
    assert files["gt/gt.txt"].decode() == EXPECTED_GT
    assert files["gt/labels.txt"].decode() == EXPECTED_LABELS
    # annotated_only leaves the lines (and the frame numbers) as they are
    again = asyncio.run(_export(DATASET, ExportOptions(annotated_only=True)))
    assert again == files


def test_video_frames_count_from_one() -> None:
    frames = tuple(
        FrameAnnotations(
            FrameInfo(index, f"frame_{index:06d}", 64, 48),
            shapes=(Shape("rectangle", CAR.id, (index, 0, index + 2.5, 3), track_id=9 - index),),
        )
        for index in range(3)
    )
    video = InMemoryDataset(dataclasses.replace(TASK, mode="interpolation"), frames)
    lines = asyncio.run(_export(video))["gt/gt.txt"].decode().splitlines()
    assert lines == [
        "1,1,0.0,0.0,2.5,3.0,1,1,1.0",
        "2,2,1.0,0.0,2.5,3.0,1,1,1.0",
        "3,3,2.0,0.0,2.5,3.0,1,1,1.0",
    ]
    assert image_path(frames[0].frame, "default") == "img1/frame_000000.PNG"
    assert image_path(FRAMES[0].frame, "train") == "img1/street/a.jpg"
    assert image_paths(FRAMES[3], TASK) == ["img1/000042.jpg"]


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    dataset = import_with_datumaro(asyncio.run(_export(DATASET)), tmp_path, "mot_seq")
    names = label_names(dataset)
    assert names == ["car", "pedestrian", "road", "person", "head", "weather"]
    items = {item.id: item for item in dataset}
    assert set(items) == {"1", "3", "42"}  # the frames with boxes
    counts = label_and_type_counts(dataset)
    assert counts == {("car", "bbox"): 3, ("pedestrian", "bbox"): 3}
    first = sorted(items["1"].annotations, key=lambda ann: ann.label)
    assert [ann.get_bbox() for ann in first] == [
        pytest.approx([10, 20, 20.33, 20.01]),
        pytest.approx([1, 2.5, 10.11, 9.5]),
    ]
    assert first[1].attributes["ignored"] is True
    assert first[1].attributes["visibility"] == 0.25
    assert "track_id" not in first[1].attributes  # plain boxes are no tracks
    tracked = sorted(
        (item.id, ann.attributes["track_id"], names[ann.label])
        for item in dataset
        for ann in item.annotations
        if "track_id" in ann.attributes
    )
    assert tracked == [("3", 1, "car"), ("3", 2, "pedestrian"), ("42", 1, "pedestrian")]


def test_refuses_point_clouds() -> None:
    cloud = InMemoryDataset(dataclasses.replace(TASK, dimension="3d"), ())
    with pytest.raises(ValueError, match="2D format"):
        asyncio.run(_export(cloud))
    empty = asyncio.run(_export(InMemoryDataset(TASK, ())))
    assert empty == {"gt/gt.txt": b"", "gt/labels.txt": EXPECTED_LABELS.encode()}


@dataclass(frozen=True)
class _Tracked:
    """A video of `count` frames with `tracks` boxes tracked over every frame."""

    task: TaskInfo
    count: int
    tracks: int

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        boxes = [(float(t), float(t % 40), t + 20.25, t % 40 + 30.5) for t in range(self.tracks)]
        for index in range(self.count):
            yield FrameAnnotations(
                FrameInfo(index, f"frame_{index:06d}", 1920, 1080),
                shapes=[
                    Shape(
                        "rectangle",
                        PEDESTRIAN.id,
                        (x0 + index, y0, x1 + index, y1),
                        track_id=100 + track,
                        keyframe=index == 0,
                        attributes={"visibility": "0.5"},
                    )
                    for track, (x0, y0, x1, y1) in enumerate(boxes)
                ],
            )


def test_fast_for_55000_tracked_boxes() -> None:
    dataset = _Tracked(TASK, 800, 69)  # 55,200 boxes
    buffer = io.BytesIO()
    started = time.perf_counter()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        asyncio.run(write_mot(dataset, archive, ExportOptions()))
    elapsed = time.perf_counter() - started
    lines = zipfile.ZipFile(io.BytesIO(buffer.getvalue())).read("gt/gt.txt").splitlines()
    assert len(lines) == 55_200
    assert lines[0] == b"1,1,0.0,0.0,20.25,30.5,1,2,0.5"
    assert lines[-1] == b"800,69,867.0,28.0,20.25,30.5,1,2,0.5"
    # shapes included; the writer alone takes well under a second on one slow core
    assert elapsed < 10, elapsed


def _peak_memory(frames: int) -> int:
    return peak_memory(write_mot, _Tracked(TASK, frames, 4))


def test_memory_stays_flat_as_frames_grow() -> None:
    _peak_memory(10)
    small, large = _peak_memory(100), _peak_memory(1000)
    assert large < small * 1.3 + (1 << 20), (small, large)
