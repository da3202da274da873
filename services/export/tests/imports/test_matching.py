"""Matching parsed annotations to a task: CVAT's frame and label rules, attribute specs,
track attributes split by mutability, skips reported (and fatal with `strict`)."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.export.imports.files import ImportFailed
from tessera.export.imports.matching import Matcher, TaskFrames
from tessera.export.imports.model import (
    ParsedAnnotations,
    ParsedShape,
    ParsedTag,
    ParsedTrack,
    Position,
)
from tessera.geometry import array_to_cvat_mask
from tessera.platform.contracts.annotations import SnapshotAttribute, SnapshotLabel

COLOR = SnapshotAttribute(
    id=11, name="color", input_type="select", mutable=False, values=["red", "blue"],
    default_value="red",
)  # fmt: skip
SPEED = SnapshotAttribute(
    id=12, name="speed", input_type="number", mutable=True, values=["0", "100", "5"],
    default_value="0",
)  # fmt: skip
PARKED = SnapshotAttribute(
    id=13, name="parked", input_type="checkbox", mutable=True, values=["false"],
    default_value="false",
)  # fmt: skip
CAR = SnapshotLabel(id=1, name="car", color="#f00", type="any", attributes=[COLOR, SPEED, PARKED])
ROAD = SnapshotLabel(id=2, name="road", color="#0f0", type="polygon", attributes=[])
NOSE = SnapshotLabel(id=4, name="nose", color="#111", type="points", attributes=[], parent_id=3)
EAR = SnapshotLabel(id=5, name="ear", color="#222", type="points", attributes=[], parent_id=3)
FACE = SnapshotLabel(
    id=3, name="face", color="#00f", type="skeleton", attributes=[], sublabels=[NOSE, EAR]
)
LABELS = [CAR, ROAD, FACE]
NAMES = ["images/a.jpg", "images/b.png", "other/c.jpg", "x/c.jpg", "frame_000004"]
FRAMES = TaskFrames(NAMES, lambda number: number != 1, [(20, 10)] * len(NAMES))


def match(parsed: ParsedAnnotations, **options: bool) -> tuple[dict, dict[str, int]]:  # type: ignore[type-arg]
    strict = options.pop("strict", False)
    matched = Matcher(LABELS, FRAMES, **options).match(parsed, strict=strict)
    return matched.document, {s.reason: s.count for s in matched.skipped}


def box(frame: int | str | Position, label: str = "car", **fields: object) -> ParsedShape:
    return ParsedShape("rectangle", label, [1.0, 2.0, 3.0, 4.0], frame=frame, **fields)  # type: ignore[arg-type]


def test_frames_match_by_path_without_extension_or_by_a_unique_file_name() -> None:
    parsed = ParsedAnnotations(
        shapes=[
            box("images/a.jpg"), box("images/a"), box("a.png"), box("C:\\data\\images\\a.jpg"),
            box(4), box("frame_000004.png"), box("c.jpg"), box("other/c.JPG"), box("b.png"),
            box(9),
        ]
    )  # fmt: skip
    document, skipped = match(parsed)
    assert [shape["frame"] for shape in document["shapes"]] == [0, 0, 0, 0, 4, 4, 2]
    # "c" is two frames' file name; b is deleted; 9 does not exist
    assert skipped == {"a frame the task does not have (or deleted, or outside the job)": 3}


def test_labels_attributes_and_skips() -> None:
    parsed = ParsedAnnotations(
        shapes=[
            box(0, attributes={"color": "blue", "speed": "15", "parked": "TRUE"}),
            box(0, attributes={"color": "green", "speed": "7", "weight": "3"}),
            box(0, label="bus"),
            box(0, label="road"),
            ParsedShape("polygon", "road", [0, 0, 5, 0, 5, 5], frame=0, rotation=-90, score=3.0),
        ],
        tags=[ParsedTag("car", "images/a.jpg", attributes={"color": "red"})],
        labels=["car", "tree"],
    )
    document, skipped = match(parsed)
    first, second, polygon = document["shapes"]
    assert first["attributes"] == [
        {"spec_id": 11, "value": "blue"}, {"spec_id": 12, "value": "15"},
        {"spec_id": 13, "value": "true"},
    ]  # fmt: skip
    assert second["attributes"] == []
    assert polygon["rotation"] == 270.0
    assert "score" not in polygon
    assert polygon["source"] == "file"
    assert document["tags"] == [
        {"frame": 0, "label_id": 1, "group": 0, "source": "file",
         "attributes": [{"spec_id": 11, "value": "red"}]}
    ]  # fmt: skip
    assert skipped == {
        "a label the task does not have": 2,  # tree (declared), bus (used)
        "an attribute value outside its spec": 2,  # green, 7 (off the step of 5)
        "an attribute its label does not have": 1,
        "a shape type its label does not take": 1,
    }
    with pytest.raises(ImportFailed, match="strict import"):
        match(parsed, strict=True)


def test_tracks_keep_keyframes_and_split_attributes_by_mutability() -> None:
    shapes = [
        box(0, attributes={"color": "blue", "speed": "10"}),
        box(2, keyframe=False, attributes={"color": "blue", "speed": "10"}),
        box(3, attributes={"color": "blue", "speed": "20"}),
        box(4, outside=True, attributes={"color": "blue", "speed": "20"}),
    ]
    document, skipped = match(ParsedAnnotations(tracks=[ParsedTrack("car", shapes, group=2)]))
    (track,) = document["tracks"]
    assert track["frame"] == 0
    assert track["group"] == 2
    assert track["attributes"] == [{"spec_id": 11, "value": "blue"}]
    assert [(s["frame"], s["outside"]) for s in track["shapes"]] == [
        (0, False),
        (3, False),
        (4, True),
    ]
    assert [s["attributes"] for s in track["shapes"]][:2] == [
        [{"spec_id": 12, "value": "10"}],
        [{"spec_id": 12, "value": "20"}],
    ]
    assert skipped == {}


def test_skeleton_points_by_sublabel_name() -> None:
    elements = [
        ParsedShape("points", "nose", [1, 1]), ParsedShape("points", "ear", [2, 2], outside=True),
        ParsedShape("points", "tail", [3, 3]),
    ]  # fmt: skip
    parsed = ParsedAnnotations(
        shapes=[ParsedShape("skeleton", "face", [], frame=0, elements=elements)]
    )
    document, skipped = match(parsed)
    (stored,) = document["shapes"]
    assert [(e["label_id"], e["outside"]) for e in stored["elements"]] == [(4, False), (5, True)]
    assert skipped == {"a skeleton point its skeleton does not have": 1}


def test_masks_become_polygons_with_conv_mask_to_poly() -> None:
    pixels = np.zeros((10, 20), bool)
    pixels[2:5, 3:7] = True
    pixels[6:8, 10:12] = True
    mask = ParsedShape("mask", "road", [float(v) for v in array_to_cvat_mask(pixels)], frame=0)
    document, _ = match(ParsedAnnotations(shapes=[mask]), conv_mask_to_poly=True)
    assert [shape["type"] for shape in document["shapes"]] == ["polygon", "polygon"]
    corners = document["shapes"][0]["points"]
    assert sorted(zip(corners[0::2], corners[1::2], strict=True)) == [
        (3, 2),
        (3, 5),
        (7, 2),
        (7, 5),
    ]
    _, skipped = match(ParsedAnnotations(shapes=[mask]))
    assert skipped == {"a shape type its label does not take": 1}  # a mask of a polygon label


# A video task cut from frame 10 with step=2: task frames 0..5 are the video's 10, 12, ... 20.
VIDEO = [f"frame_{10 + 2 * number:06d}" for number in range(6)]
NO_FRAME = "a frame the task does not have (or deleted, or outside the job)"


def test_numbers_are_the_medias_and_names_a_videos_frames() -> None:
    frames = TaskFrames(VIDEO, lambda number: True, [(20, 10)] * 6, start=10, step=2)
    shapes = [box(10), box(14), box(20), box(13), box(8), box(22), box(2), box("frame_000016.png")]
    track = ParsedTrack("car", [box(12), box(16, keyframe=False), box(18, outside=True)])
    parsed = ParsedAnnotations(shapes=shapes, tracks=[track])
    matched = Matcher(LABELS, frames).match(parsed)
    # 13 is between two frames of the step, 8 and 22 outside the task, 2 not a multiple
    # of the step after 10 (the number of task frame 2 is 14): CVAT's rel_frame_id
    assert [shape["frame"] for shape in matched.document["shapes"]] == [0, 2, 5, 3]
    assert {s.reason: s.examples for s in matched.skipped} == {NO_FRAME: ["13", "8", "22", "2"]}
    (track,) = matched.document["tracks"]
    assert [(s["frame"], s["outside"]) for s in track["shapes"]] == [(1, False), (4, True)]


def test_a_name_that_is_a_number_is_a_task_frame_as_cvat_reads_it() -> None:
    # CVAT's last resort (match_dm_item) takes the number of `frame_000003` as a task frame,
    # not as a number in the video: a name of no frame of this task lands on task frame 3
    frames = TaskFrames(VIDEO, lambda number: True, [(20, 10)] * 6, start=10, step=2)
    matched = Matcher(LABELS, frames).match(ParsedAnnotations(shapes=[box("frame_000003")]))
    assert [shape["frame"] for shape in matched.document["shapes"]] == [3]


def test_positions_count_from_the_jobs_start_frame() -> None:
    # a job of task frames 3..5: MOT's frame 1 (position 0) is its first frame, as CVAT's
    # `int(item.id) - 1 + instance_data.start` makes it
    frames = TaskFrames(
        VIDEO, lambda number: 3 <= number <= 5, [(20, 10)] * 6, start=10, step=2, first=3
    )
    track = ParsedTrack("car", [box(Position(0)), box(Position(1))])
    parsed = ParsedAnnotations(shapes=[box(Position(2)), box(Position(3))], tracks=[track])
    matched = Matcher(LABELS, frames, tracks_listed_per_frame=True).match(parsed)
    assert [shape["frame"] for shape in matched.document["shapes"]] == [5]
    (stored,) = matched.document["tracks"]
    # every line a keyframe, then an outside one after the last visible frame while it is
    # in the job (CVAT: `frame + step <= stop_frame`, the job's)
    assert [(s["frame"], s["outside"]) for s in stored["shapes"]] == [
        (3, False),
        (4, False),
        (5, True),
    ]
    assert {s.reason: s.examples for s in matched.skipped} == {NO_FRAME: ["position 3"]}
    # without a job, position 0 is task frame 0
    task = TaskFrames(VIDEO, lambda number: True, [(20, 10)] * 6, start=10, step=2)
    matched = Matcher(LABELS, task).match(ParsedAnnotations(shapes=[box(Position(0))]))
    assert [shape["frame"] for shape in matched.document["shapes"]] == [0]
