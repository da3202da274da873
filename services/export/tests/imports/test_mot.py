"""MOT 1.1 import: our writer's archives read back (tracks rebuilt as CVAT rebuilds them),
MOTChallenge ground truth as its tools write it, and hostile or wrong uploads."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tessera.export.formats.mot import write_mot
from tessera.export.imports.files import ImportFailed, files_of
from tessera.export.imports.formats.mot import DEFAULT_LABELS, read_mot
from tessera.export.imports.model import ParsedShape, Position
from tessera.export.model import (
    AttributeSpec,
    FrameAnnotations,
    FrameInfo,
    InMemoryDataset,
    Label,
    Shape,
    TaskInfo,
)

from ..formats.support import export_files
from .support import upload, zipped

CAR = Label(1, "car", "rectangle", "#ff0000")
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
TASK = TaskInfo(
    id=1,
    name="crossing",
    mode="interpolation",
    dimension="2d",
    size=7,
    labels=(CAR, PEDESTRIAN, ROAD),
)


def _car(frame: int, **fields: Any) -> Shape:
    x = 10.0 + frame
    return Shape("rectangle", CAR.id, (x, 20, x + 30.333, 40.005), track_id=7, **fields)


FRAMES = (
    FrameAnnotations(
        FrameInfo(0, "frame_000000", 64, 48),
        shapes=(
            _car(0),
            Shape("polygon", ROAD.id, (0, 0, 10, 0, 5, 8)),  # not in MOT
            Shape(
                "rectangle",
                PEDESTRIAN.id,
                (1.005, 2.5, 11.115, 12),
                attributes={"ignored": "true", "visibility": "0.25"},
            ),
        ),
    ),
    FrameAnnotations(
        FrameInfo(1, "frame_000001", 64, 48),
        shapes=(_car(1, occluded=True), Shape("rectangle", CAR.id, (3, 3, 4, 4), occluded=True)),
    ),
    FrameAnnotations(FrameInfo(2, "frame_000002", 64, 48), shapes=(_car(2, keyframe=False),)),
    FrameAnnotations(FrameInfo(3, "frame_000003", 64, 48), shapes=(_car(3, outside=True),)),
    FrameAnnotations(FrameInfo(4, "frame_000004", 64, 48), shapes=(_car(4),)),
    FrameAnnotations(
        FrameInfo(5, "frame_000005", 64, 48),
        shapes=(
            _car(5),
            Shape("rectangle", PEDESTRIAN.id, (5, 5, 6, 6), track_id=9, occluded=True),
        ),
    ),
)
DATASET = InMemoryDataset(TASK, FRAMES)


def at(shape: ParsedShape) -> int:
    """The 0-based place a shape's frame ref gives (MOT's frame column less one)."""
    assert isinstance(shape.frame, Position)
    return shape.frame.index


def keyframes(shapes: list[ParsedShape]) -> list[tuple[Any, ...]]:
    """(frame, outside, occluded, points rounded) of a track's keyframes."""
    return [(at(s), s.outside, s.occluded, [round(v, 3) for v in s.points]) for s in shapes]


def test_round_trip(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_mot, DATASET))
    parsed = read_mot(files_of(zipped(files), "mot.zip", tmp_path))
    assert parsed.labels == ["car", "pedestrian", "road"]
    assert [(at(s), s.label, s.occluded, s.points) for s in parsed.shapes] == [
        (0, "pedestrian", False, [1.0, 2.5, 11.11, 12.0]),  # corners as datumaro rounds them
        (1, "car", True, [3.0, 3.0, 4.0, 4.0]),
    ]
    assert parsed.shapes[0].attributes == {"visibility": "0.25", "ignored": "true"}
    assert parsed.shapes[1].attributes == {"visibility": "0.0", "ignored": "false"}
    car, pedestrian = parsed.tracks
    assert (car.label, pedestrian.label) == ("car", "pedestrian")
    # a keyframe on every frame written (the interpolated frame 2 too); the outside frame 3
    # is not written: the matcher makes it again from the gap, as CVAT does
    assert keyframes(car.shapes) == [
        (0, False, False, [10, 20, 40.33, 40.01]),
        (1, False, True, [11, 20, 41.33, 40.01]),
        (2, False, False, [12, 20, 42.33, 40.01]),
        (4, False, False, [14, 20, 44.33, 40.01]),
        (5, False, False, [15, 20, 45.33, 40.01]),
    ]
    assert all(shape.keyframe and shape.type == "rectangle" for shape in car.shapes)
    # the pedestrian's visibility attribute (default 1) decides, not the occluded flag
    assert keyframes(pedestrian.shapes) == [(5, False, False, [5, 5, 6, 6])]
    assert pedestrian.shapes[0].attributes == {"visibility": "1.0", "ignored": "false"}


# MOT17-02's ground truth as MOTChallenge ships it (no labels.txt: its classes are
# MOTChallenge's), one box per line, a track's lines not in frame order
MOT17 = (
    "1,1,912,484,97,109,0,7,1\n"
    "2,1,912,484,97,109,0,7,1\n"
    "1,2,1338,418,167,379,1,1,0.86173\n"
    "5,2,1350,415,170,382,1,1,0\n"
    "2,2,1342,417,168,380,1,1,0.86802\n"
    "3,-1,5,5,10,10,1,3,0.5\n"
)


def test_motchallenge_ground_truth(tmp_path: Path) -> None:
    parsed = read_mot(upload({"MOT17-02/gt/gt.txt": MOT17, "MOT17-02/seqinfo.ini": "x"}, tmp_path))
    assert parsed.labels == list(DEFAULT_LABELS)
    (plain,) = parsed.shapes
    assert (at(plain), plain.label, plain.points) == (2, "car", [5.0, 5.0, 15.0, 15.0])
    static, walker = parsed.tracks
    assert static.label == "static person"
    assert keyframes(static.shapes) == [
        (0, False, False, [912, 484, 1009, 593]),
        (1, False, False, [912, 484, 1009, 593]),
    ]
    assert static.shapes[0].attributes == {"visibility": "1.0", "ignored": "true"}
    assert walker.label == "pedestrian"
    # frames 1, 2 then 5 (0-based 0, 1, 4), in frame order; visibility 0 occludes
    assert [(at(s), s.outside, s.occluded) for s in walker.shapes] == [
        (0, False, False),
        (1, False, False),
        (4, False, True),
    ]
    assert walker.shapes[0].attributes == {"visibility": "0.86173", "ignored": "false"}


def test_labels_and_short_lines(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "gt/gt.txt": "1, 3, 1.5, 2.5, 10, 20, , 2\n\n2.0,0,1,1,1,1,,1\r\n",
        "gt/labels.txt": "bike\ntruck\n\n",
    }
    parsed = read_mot(upload(members, tmp_path))
    assert parsed.labels == ["bike", "truck"]
    (track,) = parsed.tracks
    assert (track.label, track.shapes[0].points) == ("truck", [1.5, 2.5, 11.5, 22.5])
    assert track.shapes[0].attributes == {"visibility": "1.0", "ignored": "false"}
    (plain,) = parsed.shapes  # id 0 is no track; frame "2.0" is frame 2
    assert (at(plain), plain.label) == (1, "bike")


@pytest.mark.parametrize(
    ("gt", "message"),
    [
        ("0,1,1,1,1,1,1,1,1\n", r"gt/gt\.txt line 1: frame 0, where MOT frames count from 1"),
        ("1,1,1,1,1,1,1\n", r"line 1: no class"),
        ("1,1,1,1,1,1,1,-1,1\n", r"line 1: class -1 is not one of gt/labels\.txt"),
        ("1,1,1,1,1,1,1,0,1\n", r"class 0 is not one of"),
        ("1,1,1,1,1,1,1,4,1\n", r"class 4 is not one of gt/labels\.txt \(counted from 1\)"),
        ("1,1,1,1,1\n", r"line 1: 5 fields, where a box has at least 6"),
        ("\n1,1,x,1,1,1,1,1,1\n", r"gt/gt\.txt line 2: the x 'x' is not a number"),
        ("1,1,1,nan,1,1,1,1,1\n", r"the y 'nan' is not a finite number"),
        ("1,1,1,1,1e300,1,1,1,1\n", r"the box's coordinates are out of range"),
        ("1,1,1,1,1,1,yes,1,1\n", r"the not_ignored flag 'yes' is not a number"),
        ("1,1,1,1,1,1,1,1,high\n", r"the visibility 'high' is not a number"),
        ("one,1,1,1,1,1,1,1,1\n", r"the frame 'one' is not a number"),
        ("1,1.5,1,1,1,1,1,1,1\n", r"the track id '1.5' is not a whole number"),
        ("1,2,1,1,1,1,1,1,1\n1,2,3,3,1,1,1,1,1\n", r"track 2 has two boxes on frame 1"),
        ("1,1,1,1,1,1,1,1,1\x00\n", r"line 1: the visibility '1\\x00' is not a number"),
        ("1,1,1,1,1,1,1,1," + "1" * 200_000, r"gt/gt\.txt line 1 is not CSV Tessera reads"),
    ],
)
def test_wrong_lines_fail_with_the_file_and_line(tmp_path: Path, gt: str, message: str) -> None:
    members: dict[str, bytes | str] = {"gt/gt.txt": gt, "gt/labels.txt": "a\nb\nc"}
    with pytest.raises(ImportFailed, match=message):
        read_mot(upload(members, tmp_path))


def test_not_mot(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match=r"not a MOT 1\.1 upload: no gt/gt\.txt found"):
        read_mot(upload({"det/det.txt": "1,-1,1,1,1,1,0.9,-1,-1,-1\n"}, tmp_path))
    with pytest.raises(ImportFailed, match=r"more than one gt/gt\.txt"):
        read_mot(upload({"a/gt/gt.txt": MOT17, "b/gt/gt.txt": MOT17}, tmp_path))
    with pytest.raises(ImportFailed, match=r"class 13 is not one of MOTChallenge's classes"):
        read_mot(upload({"gt/gt.txt": "1,1,1,1,1,1,1,13,1\n"}, tmp_path))
