"""CVAT 1.1 import: round trips through our CVAT for images and CVAT for video writers,
files laid out as CVAT's XML format documentation shows them, project and job exports,
streaming memory, and hostile or wrong uploads."""

from __future__ import annotations

import dataclasses
import io
import tracemalloc
import zipfile
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

import pytest

from tessera.export.formats.cvat_images import write_cvat_images
from tessera.export.formats.cvat_video import write_cvat_video
from tessera.export.imports.files import ImportFailed, ImportFiles, files_of
from tessera.export.imports.formats.cvat_xml import read_cvat
from tessera.export.imports.model import ParsedAnnotations, ParsedShape, ParsedTrack
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
    shapes_as_cvat_writes_them,
)

CAR = Label(
    1,
    "car",
    "rectangle",
    "#ff0000",
    attributes=(
        AttributeSpec(1, "model", "select", False, ("sedan", "suv"), "sedan"),
        AttributeSpec(2, "parked", "checkbox", True, ("false",), "false"),
        AttributeSpec(3, "plate", "text", True, (), ""),
    ),
)
ROAD = Label(2, "road", "polygon", "#00ff00")
LANE = Label(3, 'lane "a" & <b>', "polyline", "#0000ff")
WHEEL = Label(4, "wheel", "points", "#ffff00")
SIGN = Label(5, "sign", "ellipse", "#00ffff")
CRATE = Label(6, "crate", "cuboid", "#ff00ff")
BLOB = Label(7, "blob", "mask", "#808080")
HEAD = Label(9, "head", "points", "#aaaaaa", parent_id=8)
HAND = Label(10, "hand", "points", "#bbbbbb", parent_id=8)
PERSON = Label(8, "person", "skeleton", "#123456", sublabels=(HEAD, HAND))
WEATHER = Label(
    11,
    "weather",
    "tag",
    "#abcdef",
    (AttributeSpec(7, "sky", "select", False, ("sunny", "rainy"), "sunny"),),
)
LABELS = (CAR, ROAD, LANE, WHEEL, SIGN, CRATE, BLOB, PERSON, WEATHER)
NAMES = {label.id: label.name for top in LABELS for label in (top, *top.sublabels)}  # sublabels too

CUBOID = tuple(float(v) + 0.25 for v in range(1, 17))
# a 3x2 mask at (10, 20): rows 011 / 110, runs 1 (0s), 4 (1s), 1 (0s)
MASK = (1, 4, 1, 10, 20, 12, 21)


def _element(label: Label, x: float, y: float, **kw: Any) -> Shape:
    return Shape("points", label.id, (x, y), **kw)


# --- CVAT for images ---------------------------------------------------------------------

IMAGES_TASK = TaskInfo(7, "street", "annotation", "2d", 3, LABELS, owner="alice")
IMAGES = InMemoryDataset(
    IMAGES_TASK,
    (
        FrameAnnotations(
            FrameInfo(0, "dir/img0.jpg", 640, 480),
            shapes=(
                Shape(
                    "rectangle",
                    CAR.id,
                    (10, 20.004, 110, 220.555),
                    rotation=30.5,
                    occluded=True,
                    z_order=1,
                    group=5,
                    attributes={"model": "suv", "parked": "true", "plate": 'AB<12> & "x"'},
                ),
                Shape("polygon", ROAD.id, (0, 0, 100, 0, 50, 80.125), group=5, source="auto"),
                Shape("polyline", LANE.id, (1, 2, 3, 4), source="semi-auto", z_order=-2),
                Shape("points", WHEEL.id, (5.5, 6.25, 7, 8)),
                Shape("ellipse", SIGN.id, (200, 150, 230.5, 130.25), rotation=10),
                Shape("cuboid", CRATE.id, CUBOID),
                Shape("mask", BLOB.id, MASK, z_order=3),
                Shape(
                    "skeleton",
                    PERSON.id,
                    (),
                    z_order=2,
                    elements=(
                        _element(HEAD, 30, 40, occluded=True),
                        _element(HAND, 50, 60, outside=True),
                    ),
                ),
            ),
            tags=(
                Tag(WEATHER.id, attributes={"sky": "rainy"}),
                Tag(WEATHER.id, group=3, source="auto", attributes={"sky": "sunny"}),
            ),
        ),
        FrameAnnotations(FrameInfo(1, "img1.png", 640, 480)),
        FrameAnnotations(
            FrameInfo(2, "img2.png", 320, 240),
            shapes=(
                # track frames: CVAT for images writes the visible ones as plain shapes
                Shape("rectangle", CAR.id, (1, 1, 2, 2), track_id=0, keyframe=False),
                Shape("rectangle", CAR.id, (5, 5, 9, 9), track_id=1, outside=True),
                Shape(
                    "skeleton",
                    PERSON.id,
                    (),
                    track_id=2,
                    elements=(_element(HEAD, 1, 1, outside=True), _element(HAND, 2, 2)),
                ),
            ),
        ),
    ),
)


Writer = Callable[..., Coroutine[Any, Any, None]]


async def _zip(writer: Writer, dataset: InMemoryDataset) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        await writer(dataset, archive, ExportOptions())
    return buffer.getvalue()


def _read(data: bytes, filename: str, tmp_path: Path) -> ParsedAnnotations:
    with files_of(data, filename, tmp_path) as files:
        return read_cvat(files)


def _points(values: Iterable[float]) -> tuple[float, ...]:
    return tuple(round(float(v), 2) for v in values)


def _parsed_key(shape: ParsedShape) -> tuple[Any, ...]:
    return (
        shape.frame,
        shape.type,
        shape.label,
        _points(shape.points),
        shape.occluded,
        shape.outside,
        shape.z_order,
        round(shape.rotation, 2),
        shape.group,
        shape.attributes,
        shape.source,
        shape.keyframe,
        [_parsed_key(element) for element in shape.elements],
    )


def _expected_key(
    shape: Shape, frame: int | str, *, element: bool = False, group: int | None = None
) -> tuple[Any, ...]:
    """What the reader gives for `shape` written by our writers (coordinates as {:.2f})."""
    points = shape.points
    if shape.type == "ellipse":
        cx, cy, right_x, top_y = points
        points = (cx, cy, cx + round(right_x - cx, 2), cy - round(cy - top_y, 2))
    return (
        frame,
        shape.type,
        NAMES[shape.label_id],
        _points(points),
        shape.occluded,
        shape.outside,
        0 if element else shape.z_order,
        round(shape.rotation, 2),
        0 if element else (shape.group if group is None else group),
        dict(shape.attributes),
        shape.source,
        True,
        [_expected_key(child, frame, element=True) for child in shape.elements],
    )


def _sorted(keys: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(keys, key=repr)


async def test_cvat_for_images_round_trip(tmp_path: Path) -> None:
    parsed = _read(await _zip(write_cvat_images, IMAGES), "task.zip", tmp_path)
    expected = [
        _expected_key(shape, item.frame.name)
        for item in IMAGES.items
        for shape in shapes_as_cvat_writes_them(item.shapes)
    ]
    assert len(expected) == 10  # the outside track frames are not written
    assert _sorted(map(_parsed_key, parsed.shapes)) == _sorted(expected)
    assert [(t.frame, t.label, t.group, t.attributes) for t in parsed.tags] == [
        ("dir/img0.jpg", "weather", 0, {"sky": "rainy"}),
        ("dir/img0.jpg", "weather", 3, {"sky": "sunny"}),
    ]
    assert parsed.tracks == []
    assert parsed.frame_names == {0: "dir/img0.jpg", 1: "img1.png", 2: "img2.png"}
    # labels in the meta's (id) order, without the skeleton's sublabels
    assert parsed.labels == [
        "car", "road", 'lane "a" & <b>', "wheel", "sign", "crate", "blob", "person", "weather"
    ]  # fmt: skip
    mask = next(shape for shape in parsed.shapes if shape.type == "mask")
    assert mask.points == [1, 4, 1, 10, 20, 12, 21]


# --- CVAT for video ----------------------------------------------------------------------

VIDEO_TASK = TaskInfo(3, "clip", "interpolation", "2d", 6, LABELS)


def _car(frame_x: float, **kw: Any) -> Shape:
    kw.setdefault("attributes", {"model": "suv", "parked": "false", "plate": ""})
    return Shape("rectangle", CAR.id, (frame_x, 10, frame_x + 40, 50), track_id=10, z_order=1, **kw)


def _person(x: float, keyframe: bool, hand_keyframe: bool) -> Shape:
    return Shape(
        "skeleton",
        PERSON.id,
        (),
        track_id=20,
        keyframe=keyframe,
        elements=(
            _element(HEAD, x, x + 1, track_id=20, keyframe=keyframe),
            _element(HAND, x + 5, x, track_id=20, keyframe=hand_keyframe, outside=True),
        ),
    )


def _sign(cx: float, **kw: Any) -> Shape:
    return Shape("ellipse", SIGN.id, (cx, 50, cx + 10, 45), rotation=15, track_id=30, **kw)


PLAIN_BOX = Shape("rectangle", CAR.id, (1, 2, 3, 4), rotation=30, group=3, occluded=True)
PLAIN_LINE = Shape("polyline", LANE.id, (0, 0, 5, 5), source="auto")
PLAIN_MASK = Shape("mask", BLOB.id, MASK, z_order=2)
PLAIN_PERSON = Shape(
    "skeleton",
    PERSON.id,
    (),
    elements=(_element(HEAD, 7, 8), _element(HAND, 9, 10, outside=True)),
)

VIDEO = InMemoryDataset(
    VIDEO_TASK,
    [
        FrameAnnotations(
            FrameInfo(0, "frame_000000", 640, 480),
            [_car(10), _person(100, True, True), _sign(5), PLAIN_PERSON],
            [Tag(WEATHER.id)],  # CVAT for video writes no tags
        ),
        FrameAnnotations(
            FrameInfo(1, "frame_000001", 640, 480),
            [
                _car(15, keyframe=False),
                Shape("polygon", ROAD.id, (0, 0, 10, 0, 10, 10), track_id=5, source="auto"),
                _person(101, False, True),
                _sign(6, keyframe=False),
                PLAIN_MASK,
            ],
        ),
        FrameAnnotations(
            FrameInfo(2, "frame_000002", 640, 480),
            [
                PLAIN_BOX,
                _car(20, attributes={"model": "suv", "parked": "true", "plate": "x"}),
                Shape("polygon", ROAD.id, (1, 0, 11, 0, 11, 10), track_id=5, source="auto"),
                _sign(7, outside=True),
            ],
        ),
        FrameAnnotations(FrameInfo(3, "frame_000003", 640, 480), [_car(20, outside=True)]),
        FrameAnnotations(FrameInfo(4, "frame_000004", 640, 480), [PLAIN_LINE]),
        FrameAnnotations(FrameInfo(5, "frame_000005", 640, 480)),
    ],
)


def _track_key(track: ParsedTrack) -> tuple[Any, ...]:
    return (
        track.label,
        track.group,
        track.source,
        track.attributes,
        [_parsed_key(shape) for shape in track.shapes],
        [_track_key(element) for element in track.elements],
    )


def _expected_track(
    label: str,
    shapes: list[tuple[Shape, int]],
    *,
    group: int = 0,
    source: str = "manual",
    elements: list[tuple[Any, ...]] | None = None,
) -> tuple[Any, ...]:
    # a track's skeleton elements are element tracks, not elements of its shapes
    keys = [(*_expected_key(shape, frame, group=group)[:-1], []) for shape, frame in shapes]
    return (
        label,
        group,
        source,
        dict(shapes[0][0].attributes),
        keys,
        elements or [],
    )


def _element_track(label: Label, shapes: list[tuple[Shape, int]]) -> tuple[Any, ...]:
    keys = [_expected_key(shape, frame, element=True) for shape, frame in shapes]
    return (label.name, 0, "manual", {}, keys, [])


def _outside(shape: Shape) -> Shape:
    return dataclasses.replace(shape, outside=True)


async def test_cvat_for_video_round_trip(tmp_path: Path) -> None:
    parsed = _read(await _zip(write_cvat_video, VIDEO), "clip.zip", tmp_path)
    car_2 = VIDEO.items[2].shapes[1]
    road = [VIDEO.items[1].shapes[1], VIDEO.items[2].shapes[2]]
    person_0 = VIDEO.items[0].shapes[1]
    person_1 = VIDEO.items[1].shapes[2]
    expected = [
        # tracks by id: road 5, car 10, person 20, sign 30; only keyframes are kept
        _expected_track("road", [(road[0], 1), (road[1], 2)], source="auto"),
        _expected_track("car", [(_car(10), 0), (car_2, 2), (_car(20, outside=True), 3)]),
        _expected_track(
            "person",
            [(person_0, 0)],
            elements=[
                _element_track(HEAD, [(person_0.elements[0], 0)]),
                _element_track(HAND, [(person_0.elements[1], 0), (person_1.elements[1], 1)]),
            ],
        ),
        _expected_track("sign", [(_sign(5), 0), (_sign(7, outside=True), 2)]),
        # plain shapes: a track each, with an outside copy on the next frame when there is
        # one (stop_frame is 5); the mask's track becomes a mask shape again
        _expected_track(
            "person",
            # CVAT writes no `outside` on a skeleton's frames: its elements carry it
            [(PLAIN_PERSON, 0), (PLAIN_PERSON, 1)],
            elements=[
                _element_track(
                    HEAD, [(PLAIN_PERSON.elements[0], 0), (_outside(PLAIN_PERSON.elements[0]), 1)]
                ),
                _element_track(
                    HAND, [(PLAIN_PERSON.elements[1], 0), (_outside(PLAIN_PERSON.elements[1]), 1)]
                ),
            ],
        ),
        _expected_track("car", [(PLAIN_BOX, 2), (_outside(PLAIN_BOX), 3)], group=3),
        _expected_track(
            'lane "a" & <b>', [(PLAIN_LINE, 4), (_outside(PLAIN_LINE), 5)], source="auto"
        ),
    ]
    assert [_track_key(track) for track in parsed.tracks] == expected
    assert [_parsed_key(shape) for shape in parsed.shapes] == [_expected_key(PLAIN_MASK, 1)]
    assert parsed.tags == []
    assert parsed.frame_names == {}
    assert "person" in parsed.labels
    assert "head" not in parsed.labels
    # a track's own attributes are its first keyframe's values; shapes keep theirs
    car = parsed.tracks[1]
    assert car.attributes == {"model": "suv", "parked": "false", "plate": ""}
    assert car.shapes[1].attributes == {"model": "suv", "parked": "true", "plate": "x"}


# --- files laid out as CVAT documents them ---------------------------------------------

DOCS_IMAGES = b"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>4</id>
      <name>segmentation</name>
      <size>27</size>
      <mode>annotation</mode>
      <overlap>0</overlap>
      <bugtracker></bugtracker>
      <flipped>False</flipped>
      <labels>
        <label>
          <name>car</name>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>traffic_line</name>
          <attributes>
            <attribute>
              <name>kind</name>
              <mutable>False</mutable>
              <input_type>select</input_type>
              <default_value>solid</default_value>
              <values>solid
dashed</values>
            </attribute>
          </attributes>
        </label>
        <label>
          <name>wheel</name>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>plate</name>
          <attributes>
          </attributes>
        </label>
      </labels>
      <segments>
        <segment>
          <id>4</id>
          <start>0</start>
          <stop>26</stop>
          <url>http://localhost:8080/?id=4</url>
        </segment>
      </segments>
      <owner>
        <username>admin</username>
        <email></email>
      </owner>
    </task>
    <dumped>2018-09-25 11:38:28.799808+03:00</dumped>
  </meta>
  <image id="0" name="filename000.jpg" width="1600" height="1200">
    <box label="plate" xtl="797.33" ytl="870.92" xbr="965.52" ybr="928.94" occluded="0" z_order="4">
    </box>
    <polygon label="car" points="561.30,916.23;561.30,842.77;554.72,761.63" occluded="1"
      z_order="1">
    </polygon>
    <polyline label="traffic_line" points="462.10,0.00;126.80,1200.00" occluded="0" z_order="3">
      <attribute name="kind">dashed</attribute>
    </polyline>
    <points label="wheel" points="574.90,939.48;1170.16,907.90" occluded="0" z_order="5">
    </points>
    <tag label="good_frame" source="manual">
    </tag>
  </image>
</annotations>
"""

DOCS_VIDEO = b"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>5</id>
      <name>interpolation</name>
      <size>4620</size>
      <mode>interpolation</mode>
      <labels>
        <label>
          <name>person</name>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>car</name>
          <attributes>
          </attributes>
        </label>
      </labels>
      <original_size>
        <width>640</width>
        <height>480</height>
      </original_size>
    </task>
    <dumped>2018-09-25 16:05:07.134046+03:00</dumped>
  </meta>
  <track id="0" label="car">
    <polygon frame="0" points="324.79,213.16;323.74,227.90;347.42,237.37"
      outside="0" occluded="0" keyframe="1">
    </polygon>
    <polygon frame="1" points="324.79,213.16;323.74,227.90;347.42,237.37"
      outside="1" occluded="0" keyframe="1">
    </polygon>
    <polygon frame="6" points="305.32,237.90;312.16,207.90;352.69,206.32"
      outside="0" occluded="1" keyframe="1">
    </polygon>
  </track>
  <track id="1" label="person" group_id="2">
    <box frame="3" xtl="1" ytl="2" xbr="3" ybr="4" outside="0" occluded="0" keyframe="1">
      <attribute name="pose">standing</attribute>
    </box>
    <box frame="4" xtl="2" ytl="2" xbr="4" ybr="4" outside="0" occluded="0" keyframe="0">
      <attribute name="pose">standing</attribute>
    </box>
  </track>
</annotations>
"""


def test_cvat_for_images_as_documented(tmp_path: Path) -> None:
    parsed = _read(DOCS_IMAGES, "annotations.xml", tmp_path)
    img = "filename000.jpg"
    assert parsed.labels == ["car", "traffic_line", "wheel", "plate"]
    assert parsed.frame_names == {0: "filename000.jpg"}
    assert [
        (s.type, s.label, s.points, s.occluded, s.z_order, s.attributes, s.frame)
        for s in parsed.shapes
    ] == [
        ("rectangle", "plate", [797.33, 870.92, 965.52, 928.94], False, 4, {}, img),
        ("polygon", "car", [561.3, 916.23, 561.3, 842.77, 554.72, 761.63], True, 1, {}, img),
        ("polyline", "traffic_line", [462.1, 0, 126.8, 1200], False, 3, {"kind": "dashed"}, img),
        ("points", "wheel", [574.9, 939.48, 1170.16, 907.9], False, 5, {}, img),
    ]  # fmt: skip
    assert all(s.source == "file" and s.group == 0 for s in parsed.shapes)
    # a tag whose label the meta does not declare is still read: the matcher reports it
    assert [(t.label, t.frame) for t in parsed.tags] == [("good_frame", "filename000.jpg")]


def test_cvat_for_video_as_documented(tmp_path: Path) -> None:
    parsed = _read(DOCS_VIDEO, "annotations.xml", tmp_path)
    assert parsed.labels == ["person", "car"]
    car, person = parsed.tracks
    assert (car.label, car.group, car.attributes) == ("car", 0, {})
    assert [(s.frame, s.outside, s.occluded, s.type) for s in car.shapes] == [
        (0, False, False, "polygon"),
        (1, True, False, "polygon"),
        (6, False, True, "polygon"),
    ]
    assert car.shapes[2].points == [305.32, 237.9, 312.16, 207.9, 352.69, 206.32]
    # the interpolated frame 4 is dropped, as CVAT's importer drops it
    assert [(s.frame, s.points, s.group) for s in person.shapes] == [(3, [1, 2, 3, 4], 2)]
    assert person.attributes == {"pose": "standing"}
    assert person.shapes[0].attributes == {"pose": "standing"}


def test_a_project_export_in_a_zip_with_images(tmp_path: Path) -> None:
    xml = b"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <project>
      <id>1</id>
      <labels>
        <label><name>cat</name><type>rectangle</type></label>
        <label><name>pose</name><type>skeleton</type></label>
        <label><name>nose</name><type>points</type><parent>pose</parent></label>
      </labels>
      <tasks><task><id>3</id><name>a</name></task></tasks>
    </project>
  </meta>
  <image id="0" name="a/1.png" subset="train" task_id="3" width="8" height="8">
    <box label="cat" source="auto" occluded="0" xtl="1" ytl="1" xbr="2" ybr="2" z_order="0"/>
    <skeleton label="pose" source="manual" z_order="0">
      <points label="nose" source="manual" outside="0" occluded="1" points="3,4">
        <attribute name="side">left</attribute>
      </points>
      <attribute name="seen">true</attribute>
    </skeleton>
  </image>
  <image id="1" name="b/2.png" subset="val" task_id="3" width="8" height="8">
    <mask label="cat" source="manual" occluded="0" rle="0, 4" left="0" top="0"
      width="2" height="2" z_order="0"/>
    <mask label="cat" source="manual" occluded="0" rle="4" left="0" top="0"
      width="2" height="2" z_order="0"/>
  </image>
</annotations>"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("images/train/a/1.png", b"\x89PNG not really")
        archive.writestr("__MACOSX/._annotations.xml", b"\x00\x05\x16\x07 binary")
        archive.writestr("export/annotations.xml", xml)
    parsed = _read(buffer.getvalue(), "project.zip", tmp_path)
    assert parsed.labels == ["cat", "pose"]
    assert parsed.frame_names == {0: "a/1.png", 1: "b/2.png"}
    box, pose, full = parsed.shapes  # the empty mask ("4" zeros) is skipped
    assert (box.label, box.source, box.frame, box.points) == (
        "cat",
        "auto",
        "a/1.png",
        [1, 1, 2, 2],
    )
    assert pose.attributes == {"seen": "true"}
    (nose,) = pose.elements
    assert (nose.label, nose.points, nose.occluded, nose.attributes) == (
        "nose",
        [3, 4],
        True,
        {"side": "left"},
    )
    assert full.points == [0, 4, 0, 0, 1, 1]


def test_a_job_export_and_every_xml_in_a_zip(tmp_path: Path) -> None:
    job = b"""<annotations><version>1.1</version><meta><job><id>9</id><labels>
      <label><name>dog</name></label></labels></job></meta>
      <image id="3" name="x.jpg" width="4" height="4"><tag label="dog" group_id="2"/></image>
    </annotations>"""
    other = b"""<annotations><meta><task><labels><label><name>dog</name></label>
      <label><name>fox</name></label></labels></task></meta>
      <track id="0" label="fox" source="auto"><points frame="7" keyframe="1" outside="0"
        occluded="0" points="1,2" z_order="0"/></track>
      <tag frame="5" label="dog"><attribute name="a">b</attribute></tag>
    </annotations>"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("one/job.XML", job)
        archive.writestr("two/other.xml", other)
    parsed = _read(buffer.getvalue(), "both.zip", tmp_path)
    assert parsed.labels == ["dog", "fox"]
    assert [(t.label, t.frame, t.group, t.attributes) for t in parsed.tags] == [
        ("dog", "x.jpg", 2, {}),
        ("dog", 5, 0, {"a": "b"}),  # a tag under <annotations>, with its frame number
    ]
    (fox,) = parsed.tracks
    assert (fox.label, fox.source, fox.shapes[0].frame, fox.shapes[0].source) == (
        "fox",
        "auto",
        7,
        "auto",
    )


def test_tracks_without_keyframes_are_skipped(tmp_path: Path) -> None:
    xml = b"""<annotations>
      <track id="0" label="car">
        <box frame="0" keyframe="0" xtl="1" ytl="1" xbr="2" ybr="2"/>
      </track>
      <track id="1" label="blob"><mask frame="2" keyframe="1" outside="1" rle="0, 1" left="0"
        top="0" width="1" height="1"/></track>
    </annotations>"""
    parsed = _read(xml, "a.xml", tmp_path)
    assert parsed.tracks == []
    assert parsed.shapes == []


# --- streaming -----------------------------------------------------------------------------


def test_a_long_track_is_streamed(tmp_path: Path) -> None:
    frames = 15_000
    body = "".join(
        f'<box frame="{f}" keyframe="{int(f % 5_000 == 0)}" outside="0" occluded="0" '
        f'xtl="{f}.00" ytl="1.00" xbr="{f + 5}.00" ybr="9.00" z_order="0">\n'
        '<attribute name="plate">abc</attribute>\n</box>\n'
        for f in range(frames)
    )
    path = tmp_path / "big.xml"
    path.write_text(f'<annotations><track id="0" label="car">{body}</track></annotations>')
    assert path.stat().st_size > 2_000_000
    with ImportFiles(path, "annotations.xml") as files:
        tracemalloc.start()
        try:
            parsed = read_cvat(files)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert [shape.frame for shape in parsed.tracks[0].shapes] == [0, 5_000, 10_000]
    assert peak < 1_000_000, peak


# --- hostile and wrong uploads -------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<annotations><image id="0" name="&lol4;" width="1" height="1"/></annotations>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE annotations [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotations><image id="0" name="a.jpg" width="1" height="1">
<tag label="&secret;"/></image></annotations>"""

VOC = b"""<annotation><folder>VOC2012</folder><filename>a.jpg</filename>
<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>
</bndbox></object></annotation>"""


def _image(shape: str) -> bytes:
    return (
        f'<annotations><image id="0" name="a.jpg" width="9" height="9">{shape}</image>'
        "</annotations>"
    ).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (BILLION_LAUGHS, r"a\.xml is not XML Tessera reads"),
        (EXTERNAL_ENTITY, r"a\.xml is not XML Tessera reads"),
        (DOCS_IMAGES[: len(DOCS_IMAGES) // 2], r"a\.xml is not XML Tessera reads"),
        (b"", r"a\.xml is not XML Tessera reads"),
        (VOC, r"not a CVAT 1\.1 upload: a\.xml has the root element <annotation>"),
        (
            _image('<polygon label="r" points="1,2;nan,4;5,6"/>'),
            r"a\.xml: image 'a\.jpg': <polygon> has points='nan', not a finite number",
        ),
        (
            _image('<box label="r" xtl="1" ytl="inf" xbr="2" ybr="2"/>'),
            r"<box> has ytl='inf', not a finite number",
        ),
        (_image('<box label="r" xtl="1" ytl="1" xbr="2"/>'), r"<box> has no 'ybr'"),
        (_image('<box xtl="1" ytl="1" xbr="2" ybr="2"/>'), r"<box> has no 'label'"),
        (_image('<points label="r" points="1,2;3"/>'), r"points='1,2;3', not 'x,y;x,y;...'"),
        (_image('<points label="r" points=""/>'), r"points='', not 'x,y;x,y;...'"),
        (_image('<points label="r" points="1e9,1"/>'), r"not a finite number"),
        (
            _image('<mask label="m" rle="1, 2" left="0" top="0" width="2" height="2"/>'),
            r"<mask> has runs that do not cover its 2 x 2 box",
        ),
        (
            _image('<mask label="m" rle="1, -1, 4" left="0" top="0" width="2" height="2"/>'),
            r"do not cover its 2 x 2 box",
        ),
        (
            _image('<mask label="m" rle="1, x" left="0" top="0" width="1" height="2"/>'),
            r"<mask> has rle='1, x', not whole numbers",
        ),
        (
            _image('<mask label="m" rle="1" left="0" top="0" width="0" height="1"/>'),
            r"<mask> has width='0', below 1",
        ),
        (
            _image('<mask label="m" rle="1" left="0" top="0" width="99999" height="99999"/>'),
            r"more pixels than Tessera takes",
        ),
        (_image('<box label="r" xtl="1" ytl="1" xbr="2" ybr="2" z_order="x"/>'), r"z_order='x'"),
        (
            _image('<box label="r" xtl="1" ytl="1" xbr="2" ybr="2" occluded="maybe"/>'),
            r"occluded='maybe', not 0 or 1",
        ),
        (_image('<tag label="t"><attribute>v</attribute></tag>'), r"<attribute> has no 'name'"),
        (
            _image('<skeleton label="s"><skeleton label="t"/></skeleton>'),
            r"has a <skeleton> inside a <skeleton>",
        ),
        (b'<annotations><image name="a.jpg"/></annotations>', r"a\.xml: <image> has no 'id'"),
        (b'<annotations><image id="-1" name="a"/></annotations>', r"id='-1', below 0"),
        (b'<annotations><image id="0" name=""/></annotations>', r"empty 'name'"),
        (b'<annotations><tag label="t"/></annotations>', r"a\.xml: <tag> has no 'frame'"),
        (
            b'<annotations><track id="4"><box frame="0"/></track></annotations>',
            r"track 4: <track> has no 'label'",
        ),
        (
            b'<annotations><track id="4" label="c"><box xtl="1"/></track></annotations>',
            r"track 4: <box> has no 'frame'",
        ),
        (
            b'<annotations><track id="4" label="c"><box frame="2" xtl="1" ytl="1" '
            b'xbr="2" ybr="2" keyframe="2"/></track></annotations>',
            r"track 4, frame 2: <box> has keyframe='2', not 0 or 1",
        ),
    ],
)
def test_hostile_or_wrong_xml_fails_with_a_clear_message(
    data: bytes, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ImportFailed, match=message):
        _read(data, "a.xml", tmp_path)


def test_an_upload_without_xml_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("images/a.jpg", b"jpeg")
        archive.writestr("__MACOSX/images/._annotations.xml", b"\x00\x05")
    with pytest.raises(ImportFailed, match=r"not a CVAT 1\.1 upload: no \.xml file found"):
        _read(buffer.getvalue(), "task.zip", tmp_path)
    with pytest.raises(ImportFailed, match=r"no \.xml file found"):
        _read(b"<annotations/>", "annotations.json", tmp_path)
