"""CVAT for images 1.1: a golden file written by hand from CVAT's dumper, datumaro as an
independent reader, and the writer's streaming (one frame held at a time, flat memory)."""

from __future__ import annotations

import dataclasses
import io
import re
import tracemalloc
import weakref
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

import datumaro as dm  # type: ignore[import-untyped]
import numpy as np
import pytest

from tessera.export.formats.cvat_images import write_cvat_images
from tessera.export.formats.cvat_xml import CvatSegment, CvatTaskMeta, attr, text
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

GOLDEN = Path(__file__).parent / "golden" / "cvat_images_annotations.xml"

SVG = (
    '<line x1="10" y1="20" x2="30" y2="40" data-type="edge" data-node-from="1" data-node-to="2">'
    '</line><circle r="1.5" cx="10" cy="20" data-type="element node" data-element-id="1" '
    'data-node-id="1" data-label-id="9"></circle><circle r="1.5" cx="30" cy="40" '
    'data-type="element node" data-element-id="2" data-node-id="2" data-label-id="10"></circle>'
)

CAR = Label(
    1,
    "car",
    "rectangle",
    "#ff0000",
    attributes=(
        AttributeSpec(1, "model", "select", False, ("sedan", "suv", "1"), "sedan"),
        AttributeSpec(2, "parked", "checkbox", True, ("false",), "false"),
        AttributeSpec(3, "speed", "number", True, ("0", "200", "0.5"), "0"),
        AttributeSpec(4, "color", "radio", False, ("red", "blue"), "red"),
        AttributeSpec(5, "plate", "text", True, (), ""),
    ),
)
ROAD = Label(2, "road", "polygon", "#00ff00")
LANE = Label(3, 'lane "a" & <b>', "polyline", "#0000ff")
WHEEL = Label(4, "wheel", "points", "#ffff00")
SIGN = Label(
    5, "sign", "ellipse", "#00ffff", (AttributeSpec(6, "kind", "text", False, (), "stop"),)
)
CRATE = Label(6, "crate", "cuboid", "#ff00ff")
BLOB = Label(7, "blob", "mask", "#808080")
HEAD = Label(9, "head", "points", "#aaaaaa", parent_id=8)
HAND = Label(10, "hand", "points", "#bbbbbb", parent_id=8)
PERSON = Label(8, "person", "skeleton", "#123456", sublabels=(HEAD, HAND), svg=SVG)
WEATHER = Label(
    11,
    "weather",
    "tag",
    "#abcdef",
    (AttributeSpec(7, "sky", "select", False, ("sunny", "rainy"), "sunny"),),
)

TASK = TaskInfo(
    id=7,
    name='Street & "scenes"',
    mode="annotation",
    dimension="2d",
    size=4,
    # not in id order: CVAT lists labels (sublabels included) by primary key
    labels=(CAR, ROAD, LANE, WHEEL, SIGN, CRATE, BLOB, WEATHER, PERSON),
    subset="train",
    owner="alice",
)

META = CvatTaskMeta(
    bugtracker="https://tracker.example/1",
    created=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    updated=datetime(2026, 1, 3, 4, 5, 6, 789012, tzinfo=UTC),
    segments=(CvatSegment(11, 0, 3, "http://localhost:8080/api/jobs/21"),),
    owner_email="alice@example.com",
)

CAR_ATTRS = {"model": "suv", "parked": "true", "speed": "42.5", "color": "blue"}


def _element(label: Label, x: float, y: float, *, outside: bool = False) -> Shape:
    return Shape("points", label.id, (x, y), outside=outside)


FRAME_0 = FrameAnnotations(
    FrameInfo(0, "img0.jpg", 640, 480, "train"),
    shapes=(
        Shape(
            "skeleton",
            PERSON.id,
            (),
            z_order=2,
            elements=(_element(HEAD, 30, 40), _element(HAND, 50, 60, outside=True)),
        ),
        Shape(
            "rectangle",
            CAR.id,
            (10, 20, 110, 220.555),
            rotation=30.5,
            occluded=True,
            z_order=1,
            group=5,
            attributes={**CAR_ATTRS, "plate": 'AB<12> & "x"'},
        ),
        Shape("polygon", ROAD.id, (0, 0, 100, 0.004, 50, 80.125, -0.001, 5), group=5),
        Shape("polyline", LANE.id, (1, 2, 3, 4), source="auto"),
        Shape("points", WHEEL.id, (5.5, 6.25, 7, 8)),
        Shape("ellipse", SIGN.id, (200, 150, 230, 130), attributes={"kind": "yield"}),
        Shape("cuboid", CRATE.id, tuple(float(v) for v in range(1, 17))),
        # a 3x2 mask at (10, 20): rows 011 / 110, runs 1 (0s), 4 (1s), 1 (0s)
        Shape("mask", BLOB.id, (1, 4, 1, 10, 20, 12, 21), source="semi-auto"),
    ),
    tags=(
        Tag(WEATHER.id, attributes={"sky": "rainy"}),
        Tag(WEATHER.id, group=3, source="auto", attributes={"sky": "sunny"}),
    ),
)
FRAME_1 = FrameAnnotations(FrameInfo(1, "img1.jpg", 640, 480, "train"))
FRAME_2 = FrameAnnotations(
    FrameInfo(2, "img2.jpg", 640, 480, "train"),
    shapes=(
        # an interpolated frame of track 0: written as a plain shape, after plain shapes
        Shape(
            "rectangle",
            CAR.id,
            (12.345, 20, 112.5, 200),
            source="semi-auto",
            track_id=0,
            keyframe=False,
            attributes={"model": "sedan", "parked": "false", "speed": "10", "color": "red"}
            | {"plate": ""},
        ),
        Shape(
            "rectangle",
            CAR.id,
            (1, 1, 2, 2),
            attributes={"model": "1", "parked": "false", "speed": "0", "color": "red"}
            | {"plate": "p"},
        ),
        Shape("rectangle", CAR.id, (5, 5, 9, 9), track_id=1, outside=True),
        Shape(
            "skeleton",
            PERSON.id,
            (),
            track_id=2,
            elements=(_element(HEAD, 1, 1, outside=True), _element(HAND, 2, 2, outside=True)),
        ),
        Shape(
            "skeleton",
            PERSON.id,
            (),
            track_id=3,
            keyframe=False,
            elements=(_element(HEAD, 31, 41), _element(HAND, 0, 0, outside=True)),
        ),
    ),
)
FRAME_3 = FrameAnnotations(
    FrameInfo(3, "img3.png", 320, 240, "train"),
    shapes=(Shape("rectangle", CAR.id, (5, 5, 9, 9), track_id=1, outside=True),),
)
DATASET = InMemoryDataset(TASK, (FRAME_0, FRAME_1, FRAME_2, FRAME_3))


async def _export(
    dataset: Any, options: ExportOptions | None = None, meta: CvatTaskMeta | None = META
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        await write_cvat_images(dataset, archive, options or ExportOptions(), meta=meta)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert archive.namelist() == ["annotations.xml"]
        return archive.read("annotations.xml")


def _normalised(xml: str) -> str:
    return re.sub(r"<dumped>[^<]*</dumped>", "<dumped>DUMPED</dumped>", xml)


async def test_matches_the_golden_file() -> None:
    written = (await _export(DATASET)).decode("utf-8")
    assert re.search(r"<dumped>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00</dumped>", written)
    assert _normalised(written) == _normalised(GOLDEN.read_text("utf-8"))


async def test_annotated_only_leaves_out_frames_with_nothing_written() -> None:
    written = (await _export(DATASET, ExportOptions(annotated_only=True))).decode("utf-8")
    assert re.findall(r'<image id="(\d+)"', written) == ["0", "2"]


async def test_meta_defaults_without_service_meta() -> None:
    task = dataclasses.replace(TASK, owner="", subset="", labels=(ROAD,))
    written = (await _export(InMemoryDataset(task, (FRAME_1,)), meta=None)).decode("utf-8")
    assert "<subset>default</subset>" in written
    assert "<stop_frame>3</stop_frame>" in written
    assert "<owner></owner>" in written
    assert "<segments>\n      </segments>" in written


async def test_point_clouds_are_refused() -> None:
    task = dataclasses.replace(TASK, dimension="3d")
    with pytest.raises(ValueError, match="2D"):
        await _export(InMemoryDataset(task, ()))


@pytest.mark.parametrize(
    "value", ["plain", 'dq " only', "sq ' only", "both \" and '", "a<b>&c", "tab\tnl\ncr\r", ""]
)
def test_escaping_is_xml_generators(value: str) -> None:
    """CVAT writes through XMLGenerator; hand-written text must escape exactly as it does."""
    out = io.StringIO()
    generator = XMLGenerator(out, "utf-8")
    generator.startElement("e", AttributesImpl({"name": value}))
    generator.characters(value)
    generator.endElement("e")
    assert out.getvalue() == f"<e{attr('name', value)}>{text(value)}</e>"


# -- datumaro, an independent reader ------------------------------------------------------


async def test_datumaro_reads_the_same_annotations(tmp_path: Path) -> None:
    (tmp_path / "annotations.xml").write_bytes(await _export(DATASET))
    (tmp_path / "images").mkdir()
    for item in DATASET.items:  # datumaro 1.13 insists on the image files
        (tmp_path / "images" / item.frame.name).write_bytes(b"")

    imported = dm.Dataset.import_from(str(tmp_path), "cvat")
    names = imported.categories()[dm.AnnotationType.label]
    items = {item.id: item for item in imported}
    assert sorted(items) == ["img0", "img1", "img2", "img3"]
    assert {k: (v.media.size, v.attributes["frame"]) for k, v in items.items()} == {
        "img0": ((480, 640), 0),
        "img1": ((480, 640), 1),
        "img2": ((480, 640), 2),
        "img3": ((240, 320), 3),
    }

    counts = Counter(
        (item.id, names[ann.label].name, ann.type.name)
        for item in imported
        for ann in item.annotations
    )
    assert counts == {
        # ellipse and cuboid are not read by datumaro 1.13; skeleton elements come as points
        ("img0", "road", "polygon"): 1,
        ("img0", 'lane "a" & <b>', "polyline"): 1,
        ("img0", "wheel", "points"): 1,
        ("img0", "blob", "mask"): 1,
        ("img0", "car", "rotated_bbox"): 1,
        ("img0", "head", "points"): 1,
        ("img0", "hand", "points"): 1,
        ("img0", "weather", "label"): 2,
        ("img2", "car", "bbox"): 2,
        ("img2", "head", "points"): 1,
        ("img2", "hand", "points"): 1,
    }

    frame0 = {(names[a.label].name, a.type.name): a for a in items["img0"].annotations}
    box = frame0["car", "rotated_bbox"]
    assert (box.cx, box.cy, box.w, box.h, box.r) == pytest.approx((60, 120.28, 100, 200.56, 30.5))
    assert box.group == 5
    assert frame0["road", "polygon"].group == 5
    assert box.attributes == {
        "model": "suv",
        "parked": True,
        "speed": 42.5,
        "color": "blue",
        "plate": 'AB<12> & "x"',
        "occluded": True,
    }
    assert frame0["road", "polygon"].points == pytest.approx([0, 0, 100, 0, 50, 80.12, 0, 5])
    assert frame0["wheel", "points"].points == pytest.approx([5.5, 6.25, 7, 8])
    assert frame0["wheel", "points"].attributes == {"occluded": False}
    mask = frame0["blob", "mask"].image
    assert mask.sum() == 4
    assert np.array_equal(mask[20:22, 10:13], [[0, 1, 1], [1, 1, 0]])
    tags = sorted(
        (a.group, a.attributes["sky"]) for a in items["img0"].annotations if a.type.name == "label"
    )
    assert tags == [(0, "rainy"), (3, "sunny")]

    boxes = [a for a in items["img2"].annotations if a.type.name == "bbox"]
    assert [v for b in boxes for v in (b.x, b.y, b.w, b.h)] == pytest.approx(
        [1, 1, 1, 1, 12.35, 20, 100.15, 180]
    )
    assert [b.attributes for b in boxes] == [
        {"model": 1.0, "parked": False, "speed": 0.0, "color": "red", "plate": "p"}
        | {"occluded": False},
        {"model": "sedan", "parked": False, "speed": 10.0, "color": "red", "plate": ""}
        | {"occluded": False},
    ]


# -- streaming ----------------------------------------------------------------------------


class _Tracked(FrameAnnotations):
    """A frame that a weak reference can watch."""

    __slots__ = ("__weakref__",)


class _OneAtATime:
    """A generated task that fails if the writer keeps an earlier frame alive."""

    def __init__(self, frames: int, *, light: bool = False) -> None:
        self.task = TASK
        self.count = frames
        self.light = light
        self.produced = 0
        self.alive = 0

    def _gone(self) -> None:
        self.alive -= 1

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        for index in range(self.count):
            # the writer's loop variable still holds the previous frame, nothing more
            assert self.alive <= 1, f"{self.alive} frames alive at frame {index}"
            box = Shape("rectangle", CAR.id, (index, 1, index + 10, 20), attributes=CAR_ATTRS)
            shapes = (box,) if self.light else (
                box,
                Shape("polygon", ROAD.id, tuple(float(v) for v in range(40))),
                Shape("mask", BLOB.id, (0, 5, 7, 3, 100, 100, 104, 102)),
                Shape("ellipse", SIGN.id, (50, 50, 60, 45), track_id=index % 7),
            )  # fmt: skip
            item = _Tracked(
                FrameInfo(index, f"frame_{index:06d}.jpg", 1920, 1080),
                shapes=shapes,
                tags=(Tag(WEATHER.id, attributes={"sky": "sunny"}),),
            )
            weakref.finalize(item, self._gone)
            self.alive += 1
            self.produced += 1
            yield item
            del item


class _Sink(io.RawIOBase):
    """An unseekable output that only counts bytes (as an S3 multipart stream would)."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = len(data)
        self.size += n
        return n


async def test_streams_frame_by_frame() -> None:
    dataset = _OneAtATime(500)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        await write_cvat_images(dataset, archive, ExportOptions())
    assert dataset.produced == 500
    xml = zipfile.ZipFile(io.BytesIO(buffer.getvalue())).read("annotations.xml").decode()
    assert xml.count("<image ") == 500
    assert xml.count("<ellipse ") == 500
    assert xml.endswith("</image>\n</annotations>\n")


async def test_memory_stays_flat_over_10k_frames() -> None:
    sink = _Sink()
    dataset = _OneAtATime(10_000, light=True)  # light: tracemalloc slows every allocation
    tracemalloc.start()
    try:
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
            await write_cvat_images(dataset, archive, ExportOptions())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dataset.produced == 10_000
    xml_size = archive.infolist()[0].file_size
    # the writer holds one frame and a bounded buffer of text, not the document
    assert xml_size > 4 * 2**20
    assert peak < 2 * 2**20, f"peak {peak / 2**20:.1f} MiB for {xml_size / 2**20:.1f} MiB of XML"
