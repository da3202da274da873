"""Frame numbers of a video task cut from a longer video (`start_frame` 10, `step=2`: task
frames 0..5 are the video's frames 10, 12, ..., 20), as CVAT 2.x writes and reads them
(cvat/apps/dataset_manager/bindings.py: `abs_frame_id`, `rel_frame_id`, `match_dm_item`).

Exports take the frames from ingest's data meta as the runner does (`_Part.frames`): a
video frame is named by its number in the video (`frame_000010`), `<image id>`, a track's
`frame` and Datumaro's `attr.frame` are that number, MOT's frame column the frame's place
(from 1). Imports match a file CVAT made for such a task (track frames 12, 14, ...) to
the task frames, and an export imported again is exported the same."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tessera.export.formats.registry import exporter_named
from tessera.export.imports.files import files_of
from tessera.export.imports.matching import Matcher, TaskFrames
from tessera.export.imports.registry import ReadContext, importer_named
from tessera.export.model import ExportOptions
from tessera.export.runner import _cvat_meta, _number_offsets, _Part
from tessera.export.snapshot_dataset import SnapshotDataset
from tessera.platform.clients.annotations import SnapshotItem
from tessera.platform.contracts.annotations import (
    SnapshotHeader,
    SnapshotJob,
    SnapshotLabel,
    SnapshotTask,
)
from tessera.platform.contracts.ingest import DataMeta, FrameMeta

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SIZE = 6
VIDEO_FRAMES = [10 + 2 * number for number in range(SIZE)]  # the video's, by task frame
META = DataMeta(
    chunks_updated_date=NOW.isoformat(), chunk_size=36, size=SIZE, image_quality=70,
    start_frame=10, stop_frame=20, frame_filter="step=2",
    frames=[FrameMeta(width=64, height=48, name="clip.mp4", related_files=0,
                      has_related_context=False)],
    deleted_frames=[], included_frames=None, storage="local", cloud_storage_id=None,
)  # fmt: skip
CAR = SnapshotLabel(id=1, name="car", color="#ff0000", type="rectangle", attributes=[])
WEATHER = SnapshotLabel(id=2, name="weather", color="#00ff00", type="tag", attributes=[])
LABELS = [CAR, WEATHER]


def header(jobs: Sequence[tuple[int, int, int]] = ((7, 0, 5),), scope: str = "task") -> Any:
    task = SnapshotTask(
        id=5, name="clip", status="annotation", mode="interpolation", dimension="2d",
        media_type="video", size=SIZE, subset="", bug_tracker="", project_id=None,
        project_name=None, organization_id=None, owner="alice", assignee=None,
        segment_size=3, overlap=0, image_quality=70, start_frame=10, stop_frame=20,
        frame_filter="step=2", data_chunk_size=36, compressed_chunk_type="video",
        original_chunk_type="video", created_date=NOW, updated_date=NOW,
    )  # fmt: skip
    return SnapshotHeader(
        scope=scope, version=1, task=task, labels=LABELS,
        jobs=[SnapshotJob(id=job, type="annotation", start_frame=start, stop_frame=stop,
                          frames=None, version=1) for job, start, stop in jobs],
    )  # fmt: skip


def box(frame: int, points: list[float], **fields: Any) -> dict[str, Any]:
    shape = {"type": "rectangle", "frame": frame, "points": points, "rotation": 0.0,
             "occluded": False, "outside": False, "z_order": 0, "attributes": []}  # fmt: skip
    return {**shape, **fields}


# In task frames: a tag on frame 0, a car tracked from frame 1 to 3 (keyframes 1 and 3,
# frame 2 interpolated, outside from 4), a plain box on frame 2.
ITEMS = [
    SnapshotItem("tag", 7, {"id": 1, "frame": 0, "label_id": WEATHER.id, "group": 0,
                            "source": "manual", "attributes": []}),
    SnapshotItem("track", 7, {
        "id": 2, "frame": 1, "label_id": CAR.id, "group": 0, "source": "manual",
        "attributes": [], "elements": [],
        "shapes": [box(1, [10, 10, 20, 20]), box(3, [30, 10, 40, 20]),
                   box(4, [30, 10, 40, 20], outside=True)],
    }),
    SnapshotItem("shape", 7, {"id": 3, "label_id": CAR.id, "group": 0, "source": "manual",
                              **box(2, [1, 2, 3, 4])}),
]  # fmt: skip


async def _stream(items: Sequence[SnapshotItem]) -> AsyncIterator[SnapshotItem]:
    for item in items:
        yield item


async def export(
    format_name: str, items: Sequence[SnapshotItem] = ITEMS, snapshot: Any = None
) -> dict[str, bytes]:
    """The archive's members, written as the runner writes a task's (or a job's) export."""
    snapshot = snapshot or header()
    part = _Part(snapshot, META, 0)
    dataset = SnapshotDataset(snapshot, _stream(items), part.frames())
    meta = _cvat_meta([part], "http://cvat")
    exporter = exporter_named(format_name)
    assert exporter is not None
    writer = exporter.writer_for(replace(meta, dumped=NOW))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        await writer(dataset, archive, ExportOptions())
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def task_frames(meta: DataMeta, *, job: tuple[int, int] | None = None) -> TaskFrames:
    """The task's frames as the import runner gives them to the matcher: names and sizes
    from the data meta, numbers in the media from its start frame and step, and for a job
    import its frames only, positions counted from its start frame."""
    frames = meta.frame_sizes()
    first, last = job if job is not None else (0, len(frames) - 1)
    return TaskFrames(
        [frame.name for frame in frames],
        lambda number: first <= number <= last,
        [(frame.width, frame.height) for frame in frames],
        start=meta.start_frame,
        step=meta.frame_step,
        first=first,
    )


def import_document(
    format_name: str, files: dict[str, bytes], tmp_path: Path, frames: TaskFrames | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The document an import of `files` stores, and what it left out."""
    importer = importer_named(format_name)
    assert importer is not None
    frames = frames or task_frames(META)
    index = Matcher.frame_index(frames)

    def size(name: str) -> tuple[int, int] | None:
        number = index.number(name)
        return None if number is None else frames.sizes[number]

    upload = io.BytesIO()
    with zipfile.ZipFile(upload, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    with files_of(upload.getvalue(), "upload.zip", tmp_path) as opened:
        parsed = importer.read(opened, ReadContext(size))
    matcher = Matcher(LABELS, frames, tracks_listed_per_frame=importer.tracks_listed_per_frame)
    matched = matcher.match(parsed)
    return matched.document, [f"{s.count} x {s.reason}" for s in matched.skipped]


def as_items(document: dict[str, Any]) -> list[SnapshotItem]:
    """A matched document as a snapshot's items, in frame order (what the task holds
    once the import stored it)."""
    kinds = {"tags": "tag", "shapes": "shape", "tracks": "track"}
    found = [
        SnapshotItem(kinds[key], 7, {**obj, "id": 100 + number})  # type: ignore[arg-type]
        for key in ("tags", "shapes", "tracks")
        for number, obj in enumerate(document[key])
    ]
    return sorted(found, key=lambda item: int(item.data["frame"]))


def test_a_videos_frames_are_named_and_numbered_by_their_number_in_the_video() -> None:
    frames = _Part(header(), META, 0).frames()
    assert [(f.index, f.name, f.number) for f in frames] == [
        (number, f"frame_{video:06d}", video) for number, video in enumerate(VIDEO_FRAMES)
    ]
    assert META.frame_step == 2
    assert [f.name for f in _Part(header(), META, 0, extension=".png").frames()][:2] == [
        "frame_000010.png",
        "frame_000012.png",
    ]


async def test_cvat_for_video_writes_the_videos_frame_numbers() -> None:
    root = ElementTree.fromstring((await export("CVAT for video 1.1"))["annotations.xml"])
    task = root.find("meta/task")
    assert task is not None
    assert (task.findtext("start_frame"), task.findtext("stop_frame")) == ("10", "20")
    assert task.findtext("frame_filter") == "step=2"
    assert [(s.findtext("start"), s.findtext("stop")) for s in task.iter("segment")] == [
        ("0", "5")  # a segment's frames are the task's
    ]
    tracks = [
        [(b.get("frame"), b.get("keyframe"), b.get("outside")) for b in track]
        for track in root.iter("track")
    ]
    assert tracks == [
        # the track: keyframes on 12 and 16, 14 interpolated, outside from 18
        [("12", "1", "0"), ("14", "0", "0"), ("16", "1", "0"), ("18", "1", "1")],
        # the plain box on 14, as a track ending on the next frame of the step
        [("14", "1", "0"), ("16", "1", "1")],
    ]


async def test_cvat_for_images_writes_image_ids_in_the_video() -> None:
    root = ElementTree.fromstring((await export("CVAT for images 1.1"))["annotations.xml"])
    images = [
        (image.get("id"), image.get("name"), [child.tag for child in image])
        for image in root.iter("image")
    ]
    assert images == [
        ("10", "frame_000010", ["tag"]),
        ("12", "frame_000012", ["box"]),
        ("14", "frame_000014", ["box", "box"]),
        ("16", "frame_000016", ["box"]),
        ("18", "frame_000018", []),
        ("20", "frame_000020", []),
    ]


async def test_datumaro_items_carry_the_videos_frame_number() -> None:
    document = json.loads((await export("Datumaro 1.0"))["annotations/default.json"])
    assert [(item["id"], item["attr"]["frame"]) for item in document["items"]] == [
        (f"frame_{video:06d}", video) for video in VIDEO_FRAMES
    ]


async def test_mot_counts_frames_from_one_whatever_the_start_and_step() -> None:
    # datumaro's MOT writer: `cast(item.id, int, 1 + position)`, and `frame_000012` is not
    # a number
    gt = (await export("MOT 1.1"))["gt/gt.txt"].decode()
    assert [tuple(line.split(",")[:2]) for line in gt.splitlines()] == [
        ("2", "1"), ("3", "-1"), ("3", "1"), ("4", "1"),
    ]  # fmt: skip


async def test_a_jobs_export_numbers_its_frames_in_the_video() -> None:
    # the second job (task frames 3..5): CVAT's <job> meta gives its first and last
    # frames in the video, and its plain shapes end within it
    job = header([(8, 3, 5)], scope="job")
    items = [
        SnapshotItem("shape", 8, {"id": 4, "label_id": CAR.id, "group": 0, "source": "manual",
                                  **box(5, [1, 2, 3, 4])}),
    ]  # fmt: skip
    video = (await export("CVAT for video 1.1", items, job))["annotations.xml"]
    root = ElementTree.fromstring(video)
    assert root.findtext("meta/task/start_frame") == "16"
    assert root.findtext("meta/task/stop_frame") == "20"
    assert [(b.get("frame"), b.get("outside")) for b in root.iter("box")] == [("20", "0")]
    written = (await export("CVAT for images 1.1", items, job))["annotations.xml"]
    images = ElementTree.fromstring(written)
    assert [image.get("id") for image in images.iter("image")] == ["16", "18", "20"]


# What CVAT 2.x's `dump_as_cvat_interpolation` writes for the task (meta shortened): track
# frames are the video's.
CVAT_VIDEO = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>41</id>
      <size>6</size>
      <mode>interpolation</mode>
      <start_frame>10</start_frame>
      <stop_frame>20</stop_frame>
      <frame_filter>step=2</frame_filter>
      <labels>
        <label><name>car</name><type>rectangle</type><attributes></attributes></label>
      </labels>
    </task>
  </meta>
  <track id="0" label="car" source="manual">
    <box frame="12" keyframe="1" outside="0" occluded="0" xtl="10.00" ytl="10.00" xbr="20.00" ybr="20.00" z_order="0">
    </box>
    <box frame="14" keyframe="0" outside="0" occluded="0" xtl="20.00" ytl="10.00" xbr="30.00" ybr="20.00" z_order="0">
    </box>
    <box frame="16" keyframe="1" outside="0" occluded="0" xtl="30.00" ytl="10.00" xbr="40.00" ybr="20.00" z_order="0">
    </box>
    <box frame="18" keyframe="1" outside="1" occluded="0" xtl="30.00" ytl="10.00" xbr="40.00" ybr="20.00" z_order="0">
    </box>
  </track>
  <track id="1" label="car" source="manual">
    <box frame="14" keyframe="1" outside="0" occluded="0" xtl="1.00" ytl="2.00" xbr="3.00" ybr="4.00" z_order="0">
    </box>
    <box frame="16" keyframe="1" outside="1" occluded="0" xtl="1.00" ytl="2.00" xbr="3.00" ybr="4.00" z_order="0">
    </box>
  </track>
  <track id="2" label="car" source="manual">
    <box frame="13" keyframe="1" outside="0" occluded="0" xtl="1.00" ytl="2.00" xbr="3.00" ybr="4.00" z_order="0">
    </box>
  </track>
</annotations>
"""  # noqa: E501

# What CVAT 2.x's `dump_as_cvat_annotation` writes for the task: `<image id>` is the
# video's frame number, the name the video frame's.
CVAT_IMAGES = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="10" name="frame_000010" width="64" height="48">
    <tag label="weather" source="manual">
    </tag>
  </image>
  <image id="14" name="frame_000014" width="64" height="48">
    <box label="car" source="manual" occluded="0" xtl="1.00" ytl="2.00" xbr="3.00" ybr="4.00" z_order="0">
    </box>
  </image>
</annotations>
"""  # noqa: E501


def test_a_cvat_for_video_file_lands_on_the_task_frames(tmp_path: Path) -> None:
    document, skipped = import_document(
        "CVAT 1.1", {"annotations.xml": CVAT_VIDEO.encode()}, tmp_path
    )
    tracks = [[(s["frame"], s["outside"]) for s in track["shapes"]] for track in document["tracks"]]
    assert tracks == [[(1, False), (3, False), (4, True)], [(2, False), (3, True)]]
    # frame 13 is between two frames of the task (CVAT's rel_frame_id refuses it)
    assert skipped == ["1 x a frame the task does not have (or deleted, or outside the job)"]


def test_a_cvat_for_images_file_lands_on_the_task_frames(tmp_path: Path) -> None:
    document, skipped = import_document(
        "CVAT 1.1", {"annotations.xml": CVAT_IMAGES.encode()}, tmp_path
    )
    assert [(tag["frame"], tag["label_id"]) for tag in document["tags"]] == [(0, WEATHER.id)]
    assert [(shape["frame"], shape["points"]) for shape in document["shapes"]] == [
        (2, [1.0, 2.0, 3.0, 4.0])
    ]
    assert skipped == []


def test_mot_frames_count_from_a_jobs_start_frame(tmp_path: Path) -> None:
    # CVAT's MOT import: `int(item.id) - 1 + instance_data.start`; a job of task frames
    # 3..5 takes frame 1 as task frame 3
    gt = b"1,1,1.0,2.0,10.0,10.0,1,1,1.0\r\n2,1,2.0,2.0,10.0,10.0,1,1,1.0\r\n3,-1,5,5,1,1,1,1,1\r\n"
    files = {"gt/gt.txt": gt, "gt/labels.txt": b"car\nweather"}
    document, skipped = import_document("MOT 1.1", files, tmp_path, task_frames(META, job=(3, 5)))
    (track,) = document["tracks"]
    assert [(s["frame"], s["outside"]) for s in track["shapes"]] == [
        (3, False), (4, False), (5, True),
    ]  # fmt: skip
    assert [shape["frame"] for shape in document["shapes"]] == [5]
    # MOT's `visibility` and `ignored`, which the task's car does not have, and nothing else
    assert [reason.partition(" x ")[2] for reason in skipped] == [
        "an attribute its label does not have"
    ]
    # the same file into the task: frame 1 is task frame 0
    document, _ = import_document("MOT 1.1", files, tmp_path)
    assert [s["frame"] for s in document["tracks"][0]["shapes"]] == [0, 1, 2]
    assert [shape["frame"] for shape in document["shapes"]] == [2]


@pytest.mark.parametrize(
    ("exporter", "importer", "member"),
    [
        ("CVAT for video 1.1", "CVAT 1.1", "annotations.xml"),
        ("CVAT for images 1.1", "CVAT 1.1", "annotations.xml"),
        ("Datumaro 1.0", "Datumaro 1.0", "annotations/default.json"),
    ],
)
async def test_an_export_imported_again_is_exported_the_same(
    tmp_path: Path, exporter: str, importer: str, member: str
) -> None:
    first = await export(exporter)
    document, skipped = import_document(importer, first, tmp_path)
    assert skipped == []
    again = await export(exporter, as_items(document))
    assert again[member] == first[member]


async def test_mot_imported_again_keeps_its_frames(tmp_path: Path) -> None:
    # every MOT line is a keyframe (CVAT makes them so): the track's interpolated frame
    # comes back as a keyframe, on the same task frame
    document, skipped = import_document("MOT 1.1", await export("MOT 1.1"), tmp_path)
    assert [reason.partition(" x ")[2] for reason in skipped] == [
        "an attribute its label does not have"  # visibility, ignored
    ]
    (track,) = document["tracks"]
    assert [(s["frame"], s["outside"]) for s in track["shapes"]] == [
        (1, False), (2, False), (3, False), (4, True),
    ]  # fmt: skip
    assert [shape["frame"] for shape in document["shapes"]] == [2]


def test_a_projects_tasks_number_on_within_their_subset() -> None:
    # CVAT's ProjectData: tasks by (subset, id); in a subset, a task's numbers follow the
    # previous one's `start_frame + step * size`
    def task(task_id: int, subset: str) -> Any:
        found = header()
        return found.model_copy(update={"task": found.task.model_copy(
            update={"id": task_id, "subset": subset})})  # fmt: skip

    images = META.model_copy(update={"start_frame": 0, "frame_filter": "", "size": 3})
    tasks = [(task(9, "Train"), META), (task(4, ""), images), (task(7, ""), META)]
    offsets = _number_offsets(tasks)
    assert offsets == {4: 0, 7: 3, 9: 0}
    part = _Part(tasks[2][0], META, 3, number_offset=offsets[7])
    assert [(f.name, f.number) for f in part.frames()][:2] == [
        ("frame_000013", 13),
        ("frame_000015", 15),
    ]
