"""The snapshot stream as a `Dataset`: track expansion, attributes by name, dedupe of
overlapping jobs' copies, the writers reading it, and flat memory on a long stream."""

from __future__ import annotations

import gc
import io
import json
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.export.formats.coco import write_coco
from tessera.export.formats.cvat_images import write_cvat_images
from tessera.export.model import (
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Shape,
    shapes_as_cvat_writes_them,
)
from tessera.export.snapshot_dataset import SnapshotDataset, _batch_track, _Converter
from tessera.geometry import interpolate_track, iter_interpolated_shapes
from tessera.platform.clients.annotations import SnapshotItem
from tessera.platform.contracts.annotations import (
    SnapshotAttribute,
    SnapshotHeader,
    SnapshotJob,
    SnapshotLabel,
    SnapshotTask,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SIZE = 20
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SVG = (
    '<line x1="1" y1="1" x2="2" y2="2" data-type="edge" data-node-from="1" data-node-to="2">'
    '</line><circle r="0.75" cx="1" cy="1" data-type="element node" data-element-id="1" '
    'data-node-id="1" data-label-id="31"></circle><circle r="0.75" cx="2" cy="2" '
    'data-type="element node" data-element-id="2" data-node-id="2" data-label-id="32"></circle>'
)


def spec(id: int, name: str, input_type: str, mutable: bool, values: list[str]) -> Any:
    return SnapshotAttribute(
        id=id,
        name=name,
        input_type=input_type,
        mutable=mutable,
        values=values,
        default_value=values[0],
    )


LABELS = [
    SnapshotLabel(
        id=1,
        name="car",
        color="#ff0000",
        type="rectangle",
        attributes=[
            spec(10, "color", "select", False, ["red", "blue"]),
            spec(11, "speed", "number", True, ["0", "100", "1"]),
        ],
    ),
    SnapshotLabel(
        id=2,
        name="person",
        color="#00ff00",
        type="polygon",
        attributes=[spec(12, "kind", "text", True, [""])],
    ),
    SnapshotLabel(
        id=3,
        name="body",
        color="#0000ff",
        type="skeleton",
        attributes=[],
        svg=SVG,
        sublabels=[
            SnapshotLabel(
                id=31,
                name="nose",
                color="#111111",
                type="points",
                attributes=[spec(13, "visible", "checkbox", True, ["true", "false"])],
                parent_id=3,
            ),
            SnapshotLabel(
                id=32, name="eye", color="#222222", type="points", attributes=[], parent_id=3
            ),
        ],
    ),
    SnapshotLabel(
        id=4,
        name="weather",
        color="#333333",
        type="tag",
        attributes=[spec(14, "rain", "checkbox", False, ["false", "true"])],
    ),
]


def header(jobs: list[tuple[int, int, int]], size: int = SIZE, scope: str = "task") -> Any:
    task = SnapshotTask(
        id=5,
        name="streets",
        status="annotation",
        mode="interpolation",
        dimension="2d",
        media_type="image",
        size=size,
        subset="train",
        bug_tracker="",
        project_id=None,
        project_name=None,
        organization_id=None,
        owner="alice",
        assignee=None,
        segment_size=10,
        overlap=2,
        image_quality=70,
        start_frame=0,
        stop_frame=size - 1,
        frame_filter="",
        data_chunk_size=36,
        compressed_chunk_type="imageset",
        original_chunk_type="imageset",
        created_date=NOW,
        updated_date=NOW,
    )
    return SnapshotHeader(
        scope=scope,
        version=3,
        task=task,
        labels=LABELS,
        jobs=[
            SnapshotJob(
                id=jid, type="annotation", start_frame=a, stop_frame=b, frames=None, version=1
            )
            for jid, a, b in jobs
        ],
    )


def frame_infos(size: int) -> list[FrameInfo]:
    return [FrameInfo(index=i, name=f"img_{i:05d}.jpg", width=100, height=80) for i in range(size)]


def kf(frame: int, kind: str, points: list[float], **extra: Any) -> dict[str, Any]:
    shape = {
        "type": kind,
        "frame": frame,
        "points": points,
        "rotation": 0.0,
        "occluded": False,
        "outside": False,
        "z_order": 0,
        "attributes": [],
    }
    shape.update(extra)
    return shape


CAR_TRACK = {
    "id": 300,
    "frame": 0,
    "label_id": 1,
    "group": 0,
    "source": "manual",
    "attributes": [{"spec_id": 10, "value": "blue"}, {"spec_id": 998, "value": "stale"}],
    "shapes": [
        kf(0, "rectangle", [0, 0, 10, 10], attributes=[{"spec_id": 11, "value": "1"}]),
        kf(4, "rectangle", [20, 20, 30, 30], attributes=[{"spec_id": 11, "value": "2"}]),
        kf(6, "rectangle", [20, 20, 30, 30], outside=True),
        kf(7, "rectangle", [40, 40, 50, 50]),
    ],
    "elements": [],
}
# job 8's copy of the same track, as job 8 stores its part: dropped (same id)
CAR_TRACK_COPY = {
    **CAR_TRACK,
    "frame": 8,
    "shapes": [kf(8, "rectangle", [41, 41, 51, 51]), kf(9, "rectangle", [42, 42, 52, 52])],
}
PERSON_TRACK = {
    "id": 301,
    "frame": 1,
    "label_id": 2,
    "group": 0,
    "source": "semi-auto",
    "attributes": [],
    "shapes": [
        kf(1, "polygon", [0, 0, 10, 0, 5, 8], attributes=[{"spec_id": 12, "value": "adult"}]),
        kf(5, "polygon", [0, 0, 20, 0, 20, 20, 0, 20]),
    ],
    "elements": [],
}
BODY_TRACK = {
    "id": 302,
    "frame": 2,
    "label_id": 3,
    "group": 0,
    "source": "manual",
    "attributes": [],
    "shapes": [kf(2, "skeleton", []), kf(6, "skeleton", [])],
    "elements": [
        {
            "id": 3021,
            "frame": 2,
            "label_id": 31,
            "group": 0,
            "source": "manual",
            "attributes": [],
            "shapes": [
                kf(2, "points", [1, 1], attributes=[{"spec_id": 13, "value": "true"}]),
                kf(6, "points", [5, 5]),
            ],
        },
        {
            "id": 3022,
            "frame": 2,
            "label_id": 32,
            "group": 0,
            "source": "manual",
            "attributes": [],
            "shapes": [kf(2, "points", [2, 2]), kf(4, "points", [3, 3], outside=True)],
        },
    ],
}
LATE_TRACK = {
    "id": 303,
    "frame": 9,
    "label_id": 1,
    "group": 0,
    "source": "manual",
    "attributes": [],
    "shapes": [kf(9, "rectangle", [0, 0, 5, 5]), kf(15, "rectangle", [6, 6, 11, 11])],
    "elements": [],
}


def plain(id: int, frame: int, kind: str, label: int, points: list[float], **extra: Any) -> Any:
    shape = {"id": id, "label_id": label, "group": 0, "source": "manual", **kf(frame, kind, points)}
    shape.update(extra)
    return shape


def tag(id: int, frame: int, label: int, attributes: list[Any]) -> dict[str, Any]:
    return {
        "id": id,
        "frame": frame,
        "label_id": label,
        "group": 0,
        "source": "manual",
        "attributes": attributes,
    }


SKELETON_SHAPE = plain(
    201,
    2,
    "skeleton",
    3,
    [],
    elements=[
        plain(2011, 2, "points", 31, [3, 3], attributes=[{"spec_id": 13, "value": "false"}]),
        plain(2012, 2, "points", 32, [4, 4]),
    ],
)
DUPLICATE = plain(202, 8, "polygon", 2, [1, 1, 9, 1, 5, 5])

ITEMS = [
    SnapshotItem(
        "tag", 7, tag(100, 0, 4, [{"spec_id": 14, "value": "true"}, {"spec_id": 999, "value": "x"}])
    ),
    SnapshotItem(
        "shape",
        7,
        plain(
            200,
            0,
            "rectangle",
            1,
            [1, 2, 3, 4],
            attributes=[{"spec_id": 10, "value": "red"}, {"spec_id": 11, "value": "5"}],
            score=0.5,
        ),
    ),
    SnapshotItem("track", 7, CAR_TRACK),
    SnapshotItem("track", 7, PERSON_TRACK),
    SnapshotItem("shape", 7, SKELETON_SHAPE),
    SnapshotItem("track", 7, BODY_TRACK),
    SnapshotItem("tag", 7, tag(101, 8, 4, [])),
    SnapshotItem("tag", 8, tag(101, 8, 4, [])),
    SnapshotItem("shape", 7, DUPLICATE),
    SnapshotItem("shape", 8, DUPLICATE),
    SnapshotItem("track", 8, CAR_TRACK_COPY),
    SnapshotItem("track", 8, LATE_TRACK),
    SnapshotItem("shape", 8, plain(203, 12, "rectangle", 1, [5, 5, 9, 9])),
]
JOBS = [(7, 0, 9), (8, 8, 19)]


async def items_of(items: Iterable[SnapshotItem]) -> AsyncIterator[SnapshotItem]:
    for item in items:
        yield item


def dataset() -> SnapshotDataset:
    return SnapshotDataset(header(JOBS), items_of(ITEMS), frame_infos(SIZE))


async def read_all(ds: SnapshotDataset) -> list[FrameAnnotations]:
    return [frame async for frame in ds.frames()]


def track_number(track_id: int) -> int:
    """The track's number in the dataset: its place among the tracks of ITEMS (each once)."""
    ids = list(dict.fromkeys(item.data["id"] for item in ITEMS if item.kind == "track"))
    return ids.index(track_id)


def track_shapes(frames: list[FrameAnnotations], track_id: int) -> dict[int, Shape]:
    """The shapes of the track with that id, by frame."""
    out: dict[int, Shape] = {}
    number = track_number(track_id)
    for item in frames:
        found = [s for s in item.shapes if s.track_id == number]
        assert len(found) <= 1, (item.frame.index, found)
        if found:
            out[item.frame.index] = found[0]
    return out


async def test_task_and_labels() -> None:
    task = dataset().task
    assert (task.id, task.name, task.mode, task.size, task.subset, task.owner) == (
        5, "streets", "interpolation", SIZE, "train", "alice"
    )  # fmt: skip
    car, _, body, weather = task.labels
    assert [a.name for a in car.attributes] == ["color", "speed"]
    assert car.attributes[1].mutable
    assert not car.attributes[0].mutable
    assert body.type == "skeleton"
    assert body.svg == SVG
    assert [(s.name, s.parent_id, s.type) for s in body.sublabels] == [
        ("nose", 3, "points"),
        ("eye", 3, "points"),
    ]
    assert body.sublabels[0].attributes[0].input_type == "checkbox"
    assert weather.type == "tag"


async def test_every_frame_in_order_with_plain_shapes_and_tags() -> None:
    frames = await read_all(dataset())
    assert [f.frame.index for f in frames] == list(range(SIZE))
    assert frames[0].frame.name == "img_00000.jpg"
    [weather] = frames[0].tags
    assert weather.attributes == {"rain": "true"}  # stale spec 999 dropped
    [rect] = [s for s in frames[0].shapes if s.track_id is None]
    assert rect.id == 200
    assert rect.attributes == {"color": "red", "speed": "5"}
    assert rect.score == 0.5
    assert list(rect.points) == [1, 2, 3, 4]
    [skeleton] = [s for s in frames[2].shapes if s.track_id is None]
    assert skeleton.type == "skeleton"
    assert [(e.label_id, list(e.points), dict(e.attributes)) for e in skeleton.elements] == [
        (31, [3, 3], {"visible": "false"}),
        (32, [4, 4], {}),
    ]
    [late] = [s for s in frames[12].shapes if s.track_id is None]
    assert late.id == 203
    assert not frames[19].tags


async def test_overlapping_copies_come_once() -> None:
    frames = await read_all(dataset())
    assert [t.id for t in frames[8].tags] == [101]
    assert [s.id for s in frames[8].shapes if s.track_id is None] == [202]
    # the car track: job 7's copy only, repeated up to job 7's stop frame
    car = track_shapes(frames, 300)
    assert sorted(car) == list(range(10))
    assert list(car[9].points) == [40, 40, 50, 50]


@pytest.mark.parametrize(
    ("track", "stop"), [(CAR_TRACK, 9), (PERSON_TRACK, 9), (BODY_TRACK, 9), (LATE_TRACK, 19)]
)
async def test_tracks_match_interpolation(track: dict[str, Any], stop: int) -> None:
    got = track_shapes(await read_all(dataset()), track["id"])
    expected = interpolate_track(track, stop)
    assert sorted(got) == [e["frame"] for e in expected]
    for want in expected:
        shape = got[want["frame"]]
        assert shape.type == want["type"]
        assert list(shape.points) == pytest.approx(want["points"])
        assert (shape.keyframe, shape.outside, shape.occluded) == (
            want["keyframe"],
            want["outside"],
            want["occluded"],
        )
        assert shape.source == track["source"]
        assert shape.id is None
        assert len(shape.elements) == len(want["elements"])
        for element, raw in zip(shape.elements, want["elements"], strict=True):
            assert element.track_id == track_number(track["id"])
            assert (element.label_id, element.outside, element.keyframe) == (
                raw["label_id"],
                raw["outside"],
                raw["keyframe"],
            )
            assert list(element.points) == pytest.approx(raw["points"])


async def test_track_attributes_by_name_mutable_first() -> None:
    frames = await read_all(dataset())
    car = track_shapes(frames, 300)
    assert list(car[0].attributes.items()) == [("speed", "1"), ("color", "blue")]
    assert list(car[5].attributes.items()) == [("speed", "2"), ("color", "blue")]
    assert car[6].outside
    assert car[6].keyframe
    assert (car[7].keyframe, car[8].keyframe) == (True, False)
    person = track_shapes(frames, 301)
    assert person[3].attributes == {"kind": "adult"}
    assert person[7].attributes == {"kind": "adult"}  # carried to the next keyframe
    body = track_shapes(frames, 302)
    assert body[3].elements[0].attributes == {"visible": "true"}


async def test_frames_read_once() -> None:
    ds = dataset()
    await read_all(ds)
    with pytest.raises(RuntimeError):
        await read_all(ds)


async def test_out_of_order_stream_is_refused() -> None:
    items = [ITEMS[6], ITEMS[0]]
    ds = SnapshotDataset(header(JOBS), items_of(items), frame_infos(SIZE))
    with pytest.raises(ValueError, match="frame order"):
        await read_all(ds)


async def test_job_scope_emits_the_jobs_frames() -> None:
    items = [i for i in ITEMS if i.job_id == 8]
    ds = SnapshotDataset(header([(8, 8, 19)], scope="job"), items_of(items), frame_infos(SIZE))
    frames = await read_all(ds)
    assert [f.frame.index for f in frames] == list(range(8, 20))
    # job 8's own copy of the car track, to job 8's stop frame
    assert sorted(track_shapes(frames, 300)) == list(range(8, 20))


def visible_count(frames: list[FrameAnnotations], kind: str) -> int:
    return sum(1 for f in frames for s in shapes_as_cvat_writes_them(f.shapes) if s.type == kind)


async def test_coco_writer_accepts_it() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        await write_coco(dataset(), archive, ExportOptions())
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        data = json.loads(archive.read("annotations/instances_train.json"))
    assert [image["file_name"] for image in data["images"]] == [
        f"img_{i:05d}.jpg" for i in range(SIZE)
    ]
    frames = await read_all(dataset())
    names = {c["id"]: c["name"] for c in data["categories"]}
    boxes = [a for a in data["annotations"] if names[a["category_id"]] == "car"]
    assert len(boxes) == visible_count(frames, "rectangle")
    track_ids = {a["attributes"].get("track_id") for a in boxes}
    assert {track_number(300), track_number(303)} <= track_ids


async def test_cvat_images_writer_accepts_it() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        await write_cvat_images(dataset(), archive, ExportOptions())
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        root = ET.fromstring(archive.read("annotations.xml"))
    images = root.findall("image")
    assert [int(i.get("id", "-1")) for i in images] == list(range(SIZE))
    frames = await read_all(dataset())
    assert len(root.findall("image/box")) == visible_count(frames, "rectangle")
    assert len(root.findall("image/polygon")) == visible_count(frames, "polygon")
    assert len(root.findall("image/skeleton")) == visible_count(frames, "skeleton")
    assert len(root.findall("image/tag")) == 2
    [first] = images[0].findall("box[@source='manual']/attribute[@name='color']")[:1]
    assert first.text == "red"


# --- flat memory ----------------------------------------------------------------------


BIG = 5000
LONG_TRACKS = 6


def long_track(index: int) -> dict[str, Any]:
    return {
        "id": 10_000 + index,
        "frame": 0,
        "label_id": 2 if index % 2 else 1,
        "group": 0,
        "source": "manual",
        "attributes": [],
        "shapes": [
            kf(f, "polygon", [f, 0, f + 10, 0, f + 5, 8 + index, f, 9])
            if index % 2
            else kf(f, "rectangle", [f, 0, f + 10, 10 + index])
            for f in range(0, BIG, 250)
        ],
        "elements": [],
    }


class Counting:
    """A generated stream that counts the items it gave."""

    def __init__(self) -> None:
        self.pulled = 0
        self.max_frame = -1

    async def __aiter__(self) -> AsyncIterator[SnapshotItem]:
        for index in range(LONG_TRACKS):
            self.pulled += 1
            self.max_frame = 0
            yield SnapshotItem("track", 1, long_track(index))
        for frame in range(BIG):
            self.pulled += 1
            self.max_frame = frame
            yield SnapshotItem("shape", 1, plain(frame + 1, frame, "rectangle", 1, [0, 0, 1, 1]))


async def consume(stream: Counting) -> int:
    ds = SnapshotDataset(header([(1, 0, BIG - 1)], size=BIG), stream, frame_infos(BIG))
    count = 0
    async for item in ds.frames():
        # a frame is emitted as soon as the next item's frame is past it, not later
        assert stream.max_frame <= item.frame.index + 1
        assert len(item.shapes) == LONG_TRACKS + 1
        count += 1
    return count


async def test_long_stream_is_pulled_incrementally_in_flat_memory() -> None:
    assert await consume(Counting()) == BIG  # warm up (imports, JIT)
    gc.collect()
    tracemalloc.start()
    try:
        stream = Counting()
        assert await consume(stream) == BIG
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stream.pulled == LONG_TRACKS + BIG
    # 30k expanded track frames held at once would take tens of MiB
    assert peak < 4 * 1024 * 1024, peak


_COORDINATE = st.floats(-50, 500, allow_nan=False, width=32)


def _keyframes(points: st.SearchStrategy[list[float]]) -> st.SearchStrategy[list[Any]]:
    return st.lists(
        st.tuples(
            st.integers(0, 150),  # frame: windows of 64 frames are crossed
            points,
            st.floats(-360, 360, allow_nan=False, width=32),  # rotation
            st.booleans(),  # outside
            st.booleans(),  # occluded
            st.integers(-2, 2),  # z_order
            st.sampled_from([[], [{"spec_id": 1, "value": "2"}]]),  # mutable attributes
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda keyframe: keyframe[0],
    )


_BOXES = _keyframes(st.lists(_COORDINATE, min_size=4, max_size=4))
_POLYS = _keyframes(
    st.integers(2, 7).flatmap(lambda n: st.lists(_COORDINATE, min_size=2 * n, max_size=2 * n))
)


@given(
    kind_and_keyframes=st.one_of(
        st.tuples(st.sampled_from(["rectangle", "ellipse"]), _BOXES),
        st.tuples(st.sampled_from(["polygon", "polyline"]), _POLYS),
    ),
    stop=st.integers(0, 200),
)
@settings(max_examples=200, deadline=None)
def test_batch_tracks_come_from_the_kernels_as_from_the_per_frame_expansion(
    kind_and_keyframes: tuple[str, list[Any]], stop: int
) -> None:
    kind, keyframes = kind_and_keyframes
    track = {
        "id": 9, "frame": min(k[0] for k in keyframes), "label_id": 1, "group": 3,
        "source": "auto", "attributes": [{"spec_id": 2, "value": "blue"}],
        "shapes": [
            {"type": kind, "frame": f, "points": p, "rotation": r, "outside": o,
             "occluded": occ, "z_order": z, "attributes": a}
            for f, p, r, o, occ, z, a in keyframes
        ],
    }  # fmt: skip
    start = track["frame"]
    convert = _Converter({1: {1: "speed", 2: "color"}})
    batch = _batch_track(track)
    assert batch is not None
    fast = list(batch.shapes(convert, track, start, stop)) if start <= stop else []
    reference = [
        (shape["frame"], convert.shape(shape, track=track))
        for shape in iter_interpolated_shapes(track, stop, start_frame=min(start, stop))
        if shape["frame"] >= start
    ]
    assert [frame for frame, _ in fast] == [frame for frame, _ in reference]
    for (_, got), (_, want) in zip(fast, reference, strict=True):
        assert list(got.points) == pytest.approx(list(want.points), abs=1e-9)
        assert got.rotation == pytest.approx(want.rotation, abs=1e-9)
        assert replace(got, points=(), rotation=0.0) == replace(want, points=(), rotation=0.0)
