"""What the format writers' tests share: exporting into a zip in memory, laying the files out
for datumaro, measuring a writer's peak memory on a generated stream of frames, and the
street scene (labels, task and frames) the raster formats' tests paint."""

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
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
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
