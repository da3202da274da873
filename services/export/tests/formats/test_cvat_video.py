"""CVAT for video 1.1: the exact track elements CVAT's dumper writes (written by hand from
`dump_as_cvat_interpolation`), datumaro as an independent reader, and flat memory."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import datumaro as dm  # type: ignore[import-untyped]
import pytest

from tessera.export.formats.cvat_video import write_cvat_video
from tessera.export.formats.cvat_xml import CvatTaskMeta
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

CAR = Label(
    1,
    "car",
    "rectangle",
    "#ff0000",
    attributes=(AttributeSpec(1, "parked", "checkbox", True, ("false",), "false"),),
)
ROAD = Label(2, "road", "polygon", "#00ff00")
LANE = Label(3, 'lane "a" & <b>', "polyline", "#0000ff")
HEAD = Label(9, "head", "points", "#aaaaaa", parent_id=8)
HAND = Label(10, "hand", "points", "#bbbbbb", parent_id=8)
PERSON = Label(8, "person", "skeleton", "#123456", sublabels=(HEAD, HAND), svg="")
WEATHER = Label(11, "weather", "tag", "#abcdef")
LABELS = (CAR, ROAD, LANE, PERSON, WEATHER)

TASK = TaskInfo(
    id=3, name="clip", mode="interpolation", dimension="2d", size=6, labels=LABELS, owner="ann"
)
META = CvatTaskMeta(dumped=datetime(2024, 5, 6, 10, 0, tzinfo=UTC))


def _frame(index: int) -> FrameInfo:
    return FrameInfo(index, f"frame_{index:06d}", 640, 480)


def _car(x: float, *, keyframe: bool = True, outside: bool = False) -> Shape:
    return Shape(
        "rectangle",
        CAR.id,
        [x, 10, x + 40, 50],
        track_id=10,
        keyframe=keyframe,
        outside=outside,
        z_order=1,
        attributes={"parked": "false"},
    )


def _road(dx: float) -> Shape:
    return Shape(
        "polygon", ROAD.id, [dx, 0, dx + 10, 0, dx + 10, 10], track_id=5, source="auto", group=4
    )


def _element(label: Label, x: float, *, keyframe: bool = True, outside: bool = False) -> Shape:
    return Shape("points", label.id, [x, x + 1], track_id=20, keyframe=keyframe, outside=outside)


def _person(x: float, *, keyframe: bool) -> Shape:
    return Shape(
        "skeleton",
        PERSON.id,
        [],
        track_id=20,
        keyframe=keyframe,
        elements=(
            _element(HEAD, x, keyframe=keyframe),
            _element(HAND, x + 5, keyframe=keyframe, outside=True),
        ),
    )


PLAIN_BOX = Shape("rectangle", CAR.id, [1, 2, 3, 4], rotation=30, group=3, occluded=True)
PLAIN_LINE = Shape("polyline", LANE.id, [0, 0, 5, 5], source="semi-auto")
PLAIN_PERSON = Shape(
    "skeleton",
    PERSON.id,
    [],
    elements=(Shape("points", HEAD.id, [7, 8]), Shape("points", HAND.id, [9, 10], outside=True)),
)

DATASET = InMemoryDataset(
    TASK,
    [
        FrameAnnotations(
            _frame(0),
            [_car(10), _person(100, keyframe=True), PLAIN_PERSON],
            [Tag(WEATHER.id)],
        ),
        FrameAnnotations(
            _frame(1), [_car(15, keyframe=False), _road(0), _person(101, keyframe=False)]
        ),
        FrameAnnotations(_frame(2), [PLAIN_BOX, _car(20), _road(1)]),
        FrameAnnotations(_frame(3), [_car(20, outside=True)]),
        FrameAnnotations(_frame(4), [PLAIN_LINE]),
        FrameAnnotations(_frame(5)),
    ],
)

# What follows </meta>, written by hand from dump_as_cvat_interpolation: tracks by id
# (road 5, car 10, person 20), then the plain shapes in order, each with an outside copy
# on the next frame unless that frame is not before stop_frame (5); no tags.
GOLDEN = Path(__file__).parent / "golden" / "cvat_video_tracks.xml"


async def _export(dataset: Any, meta: CvatTaskMeta | None = META) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        await write_cvat_video(dataset, archive, ExportOptions(), meta=meta)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert archive.namelist() == ["annotations.xml"]
        return archive.read("annotations.xml")


async def test_tracks_are_written_as_cvats_dumper_writes_them() -> None:
    xml = (await _export(DATASET)).decode()
    assert xml.startswith('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n')
    tracks = xml[xml.index("</meta>") + len("</meta>") :]
    # CVAT's close_* always indent first: an element without children still ends on its
    # own line, never `<x/>` or `<x></x>`.
    assert tracks == GOLDEN.read_text(encoding="utf-8")
    assert "<tag" not in xml
    assert "<image" not in xml


async def test_meta_has_the_video_size() -> None:
    root = ElementTree.fromstring(await _export(DATASET))
    task = root.find("meta/task")
    assert task is not None
    assert task.findtext("mode") == "interpolation"
    assert task.findtext("stop_frame") == "5"
    assert task.findtext("original_size/width") == "640"
    assert task.findtext("original_size/height") == "480"
    assert root.findtext("meta/dumped") == "2024-05-06 10:00:00+00:00"
    given = CvatTaskMeta(original_size=(1920, 1080), source="clip.mp4")
    root = ElementTree.fromstring(await _export(DATASET, given))
    assert root.findtext("meta/task/original_size/width") == "1920"
    assert root.findtext("meta/task/source") == "clip.mp4"


async def test_frame_step_and_stop_frame_decide_the_outside_copy() -> None:
    meta = CvatTaskMeta(frame_filter="step=2", stop_frame=20)
    dataset = InMemoryDataset(TASK, [FrameAnnotations(_frame(0), [PLAIN_LINE])])
    root = ElementTree.fromstring(await _export(dataset, meta))
    frames = [(e.get("frame"), e.get("outside")) for e in root.iter("polyline")]
    assert frames == [("0", "0"), ("2", "1")]


async def test_point_clouds_are_refused() -> None:
    task = TaskInfo(1, "pc", "annotation", "3d", 1, LABELS)
    with pytest.raises(ValueError, match="2D"):
        await _export(InMemoryDataset(task, []))


async def test_datumaro_reads_the_same_annotations(tmp_path: Path) -> None:
    # datumaro 1.13's CVAT reader takes every child of a <track> as an annotation of its
    # frame (outside frames too, with `outside` and `keyframe` attributes) and has no
    # skeletons: a skeleton frame's element <points> have no `frame`, so it fails on
    # them. It reads this dataset without the skeletons.
    items = [
        FrameAnnotations(item.frame, [s for s in item.shapes if s.type != "skeleton"], item.tags)
        for item in DATASET.items
    ]
    (tmp_path / "annotations.xml").write_bytes(await _export(InMemoryDataset(TASK, items)))
    imported = dm.Dataset.import_from(str(tmp_path), "cvat")
    names = imported.categories()[dm.AnnotationType.label]
    found: Counter[tuple[str, str, str, bool]] = Counter()
    for item in imported:
        for annotation in item.annotations:
            found[
                (
                    item.id,
                    names[annotation.label].name,
                    annotation.type.name,
                    bool(annotation.attributes.get("outside")),
                )
            ] += 1
    assert found == Counter(
        {
            ("frame_000000", "car", "bbox", False): 1,
            ("frame_000001", "car", "bbox", False): 1,
            ("frame_000001", "road", "polygon", False): 1,
            ("frame_000002", "car", "bbox", False): 1,
            ("frame_000002", "car", "rotated_bbox", False): 1,
            ("frame_000002", "road", "polygon", False): 1,
            ("frame_000003", "car", "bbox", True): 1,
            ("frame_000003", "car", "rotated_bbox", True): 1,
            ("frame_000004", 'lane "a" & <b>', "polyline", False): 1,
            ("frame_000005", 'lane "a" & <b>', "polyline", True): 1,
        }
    )
    track_ids = {
        annotation.attributes["track_id"]
        for item in imported
        for annotation in item.annotations
        if annotation.label == names.find("car")[0]
    }
    assert track_ids == {1, 2}


class _LongVideo:
    """A video of `size` frames, made on the fly: five long tracks and a plain box a frame."""

    def __init__(self, size: int) -> None:
        self.task = TaskInfo(1, "long", "interpolation", "2d", size, LABELS)
        self._size = size

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        for index in range(self._size):
            shapes = [
                Shape(
                    "polygon",
                    ROAD.id,
                    [float(index + i), 0.0] * 20,
                    track_id=i,
                    keyframe=index % 10 == 0,
                )
                for i in range(5)
            ]
            shapes.append(Shape("rectangle", CAR.id, [0, 0, index, index]))
            yield FrameAnnotations(FrameInfo(index, f"{index}", 640, 480), shapes)


async def _peak(size: int, path: Path) -> int:
    tracemalloc.start()
    try:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            await write_cvat_video(_LongVideo(size), archive, ExportOptions(), meta=META)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_memory_stays_flat_over_thousands_of_frames(tmp_path: Path) -> None:
    small = await _peak(500, tmp_path / "small.zip")
    large = await _peak(4000, tmp_path / "large.zip")
    assert large < small * 1.5 + 256 * 1024, (small, large)
    assert large < 8 * 1024 * 1024
    with zipfile.ZipFile(tmp_path / "large.zip") as archive:
        root = ElementTree.fromstring(archive.read("annotations.xml"))
    tracks = root.findall("track")
    assert len(tracks) == 5 + 4000
    assert [len(track) for track in tracks[:5]] == [4000] * 5
    assert [track.get("id") for track in tracks[:7]] == [str(i) for i in range(7)]
