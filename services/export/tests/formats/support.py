"""What the format writers' tests share: exporting into a zip in memory, laying the files out
for datumaro, measuring a writer's peak memory on a generated stream of frames, and the
street scene (labels, task and frames) the raster formats' tests paint, and the drive (a
point cloud task) of the 3D formats' tests."""

from __future__ import annotations

import asyncio
import io
import tracemalloc
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import datumaro as dm  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

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

GOLDEN = Path(__file__).parent / "golden"
"""The expected files written by hand from CVAT's exporters."""

Writer = Callable[[Any, zipfile.ZipFile, ExportOptions], Coroutine[Any, Any, None]]
"""A format writer: `write_<format>(dataset, archive, options)`."""


# --- exporting and reading back ------------------------------------------------------------


async def export_files(
    writer: Writer, dataset: Any, options: ExportOptions | None = None
) -> dict[str, bytes]:
    """The archive's members, by name in the order written, after `writer` has written the
    dataset into a zip in memory; no member is written twice."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        await writer(dataset, archive, options or ExportOptions())
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert len(archive.namelist()) == len(set(archive.namelist()))
        return {name: archive.read(name) for name in archive.namelist()}


def unpack(files: dict[str, bytes], root: Path) -> Path:
    """Write the files under `root`, folders made as needed; returns `root`."""
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def import_with_datumaro(files: dict[str, bytes], root: Path, format_name: str) -> Any:
    """The files unpacked under `root` and read back by datumaro as `format_name`."""
    return dm.Dataset.import_from(str(unpack(files, root)), format_name)


def label_names(dataset: Any) -> list[str]:
    """The names of a datumaro dataset's labels, by label index."""
    return [label.name for label in dataset.categories()[dm.AnnotationType.label].items]


def label_and_type_counts(dataset: Any) -> Counter[tuple[str, str]]:
    """How many annotations a datumaro dataset has of each (label name, annotation type)."""
    names = label_names(dataset)
    return Counter(
        (names[ann.label], ann.type.name) for item in dataset for ann in item.annotations
    )


def decode_png(data: bytes) -> npt.NDArray[Any]:
    """The image as cv2 (datumaro's reader) decodes it, depth and channels unchanged."""
    return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))


# --- streaming and memory ------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedDataset:
    """A dataset of `count` frames made one at a time by `frame(index)`, never held."""

    task: TaskInfo
    count: int
    frame: Callable[[int], FrameAnnotations]

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        """Every frame, made as it is asked for."""
        for index in range(self.count):
            yield self.frame(index)


class Discard(io.RawIOBase):
    """A write-only, unseekable sink, like a multipart upload."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def peak_memory(
    writer: Writer, dataset: Any, archive_type: type[zipfile.ZipFile] = zipfile.ZipFile
) -> int:
    """The most memory (traced by tracemalloc) the writer takes to write the dataset into
    an `archive_type` over a sink that keeps nothing."""
    tracemalloc.start()
    try:
        sink = archive_type(Discard(), "w", zipfile.ZIP_DEFLATED)
        asyncio.run(writer(dataset, sink, ExportOptions()))
        sink.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- the street scene of the raster formats (Cityscapes, KITTI, Segmentation mask, VOC) ----

CAR = Label(1, "car", "rectangle", "#ff0000")
ROAD = Label(2, "road", "polygon", "#00ff00")
BLOB = Label(3, "blob", "mask", "#0000ff")
SIGN = Label(4, "sign", "ellipse", "#ffff00")
LANE = Label(5, "lane", "polyline", "#00ffff")
WEATHER = Label(6, "Weather", "tag", "#abcdef")
HEAD = Label(8, "head", "points", "#aaaaaa", parent_id=7)
HAND = Label(9, "hand", "points", "#bbbbbb", parent_id=7)
PERSON = Label(7, "person", "skeleton", "#123456", sublabels=(HEAD, HAND))


def street_task(car: Label = CAR, blob: Label = BLOB, sign: Label = SIGN) -> TaskInfo:
    """The street scene's task, 4 frames; a format's test may give the car, blob or sign
    label attributes of its own (the ids stay)."""
    return TaskInfo(
        id=3,
        name="streets",
        mode="annotation",
        dimension="2d",
        size=4,
        labels=(car, ROAD, blob, sign, LANE, WEATHER, PERSON),
    )


EMPTY = FrameAnnotations(FrameInfo(1, "empty_1.png", 12, 8))
"""A street frame with nothing on it."""
TAGGED = FrameAnnotations(
    FrameInfo(2, "tagged.jpg", 12, 8),
    shapes=(Shape("polyline", LANE.id, (0, 0, 5, 5)),),
    tags=(Tag(WEATHER.id),),
)
"""A street frame with a tag and a polyline: nothing a raster format paints."""


def painted_frame(index: int) -> FrameAnnotations:
    """A 240 x 160 frame of the street scene with a box, a polygon over it and a mask: a
    frame of the long streams the raster writers' memory is measured on."""
    return FrameAnnotations(
        FrameInfo(index, f"frame_{index:06d}.jpg", 240, 160),
        shapes=(
            Shape("rectangle", CAR.id, (index % 50, 10, 100, 120.5)),
            Shape("polygon", ROAD.id, (0, 0, 100, 0, 50, 80.25, 3, 4), z_order=1),
            Shape("mask", BLOB.id, (1, 4, 1, 10, 5, 11, 7)),
        ),
    )


# --- the drive of the point cloud formats (Kitti Raw, Sly Point Cloud) ---------------------

DRIVE_CAR = Label(
    11,
    "car",
    "cuboid",
    "#ff0000",
    attributes=(
        AttributeSpec(11, "color", "select", False, ("red", "blue"), "red"),
        AttributeSpec(12, "parked", "checkbox", True, ("false",), "false"),
        AttributeSpec(13, "speed", "number", True, ("0", "100", "0.5"), "0"),
    ),
)
DRIVE_PEDESTRIAN = Label(
    12,
    "pedestrian",
    "cuboid",
    "#00ff00",
    attributes=(
        AttributeSpec(14, "truncation", "select", True, ("in_image", "truncated"), "in_image"),
        AttributeSpec(15, "occlusion", "text", True, (), ""),
    ),
)
DRIVE_RAIN = Label(13, "rain", "tag", "#0000ff")
DRIVE_TASK = TaskInfo(
    id=7,
    name="drive",
    mode="annotation",
    dimension="3d",
    size=4,
    labels=(DRIVE_CAR, DRIVE_PEDESTRIAN, DRIVE_RAIN),
    owner="alice",
)


def cuboid(
    position: tuple[float, float, float],
    rotation: tuple[float, float, float],
    scale: tuple[float, float, float],
) -> tuple[float, ...]:
    """A 3D cuboid's points as CVAT stores them: position, rotation, scale, 7 zeros."""
    return (*position, *rotation, *scale, 0, 0, 0, 0, 0, 0, 0)


def drive_frame(index: int) -> FrameInfo:
    """Frame `index` of the drive: a KITTI scan, as ingest names it once made a PCD file."""
    return FrameInfo(index, f"drive/velodyne_points/data/{index:010d}.pcd", 1200, 1)


def _track(points: tuple[float, ...], **fields: Any) -> Shape:
    values = {"color": "red", "parked": "true", "speed": "30"}
    return Shape("cuboid", DRIVE_CAR.id, points, track_id=9, attributes=values, **fields)


DRIVE = InMemoryDataset(
    DRIVE_TASK,
    (
        FrameAnnotations(
            drive_frame(0),
            shapes=(
                _track(cuboid((10, -2.5, 0.8), (0, 0, 1.5708), (4.2, 1.8, 1.5))),
                Shape(
                    "cuboid",
                    DRIVE_CAR.id,
                    cuboid((1.005, 2.675, -0.001), (0.1, -0.2, 3.14159), (4.5, 1.9, 1.6)),
                    occluded=True,
                    attributes={"color": "blue", "speed": "12.5"},
                ),
            ),
            tags=(Tag(DRIVE_RAIN.id),),
        ),
        FrameAnnotations(
            drive_frame(1),
            shapes=(
                _track(cuboid((11, -2.25, 0.8), (0, 0, 1.6), (4.2, 1.8, 1.5)), keyframe=False),
            ),
        ),
        FrameAnnotations(
            drive_frame(2),
            shapes=(
                _track(cuboid((12, -2, 0.8), (0, 0, 1.6292), (4.4, 1.8, 1.5))),
                Shape(
                    "cuboid",
                    DRIVE_PEDESTRIAN.id,
                    cuboid((5, 5, 0.9), (0, 0, 0), (0.6, 0.7, 1.8)),
                    attributes={"truncation": "truncated", "occlusion": "Fully"},
                ),
            ),
        ),
        FrameAnnotations(
            drive_frame(3),
            shapes=(_track(cuboid((12, -2, 0.8), (0, 0, 1.6292), (4.4, 1.8, 1.5)), outside=True),),
        ),
    ),
)
"""A point cloud task of 4 frames: a car track (keyframes on frames 0 and 2, frame 1
interpolated, outside from frame 3) with its attributes, a plain occluded car and a tag on
frame 0, a plain pedestrian naming its truncation and occlusion on frame 2."""
