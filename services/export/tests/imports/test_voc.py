"""PASCAL VOC 1.1 import: our writer's archives read back, VOC files as PASCAL VOC and
LabelImg lay them out, and hostile or malformed uploads (plus the PNG helpers the other
mask readers share)."""

from __future__ import annotations

import asyncio
import io
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tessera.export.formats.paint import voc_colormap
from tessera.export.formats.voc import write_voc
from tessera.export.imports.files import ImportFailed, files_of
from tessera.export.imports.formats.voc import MAX_PNG_PIXELS, read_voc
from tessera.export.imports.model import ParsedAnnotations, ParsedShape
from tessera.export.model import FrameAnnotations, FrameInfo, InMemoryDataset, Shape
from tessera.geometry import array_to_cvat_mask, cvat_mask_to_array

from ..formats.support import export_files
from ..formats.test_voc import CAR, DATASET, STREET_OBJECTS, TASK

# --- helpers the other mask readers' tests share --------------------------------------------


def archive(members: dict[str, bytes]) -> bytes:
    """A zip of the members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in members.items():
            out.writestr(name, data)
    return buffer.getvalue()


def read(reader: Any, members: dict[str, bytes], tmp_path: Path) -> ParsedAnnotations:
    """The members zipped and read by `reader`."""
    with files_of(archive(members), "upload.zip", tmp_path) as files:
        parsed: ParsedAnnotations = reader(files)
    return parsed


def export(writer: Any, dataset: Any) -> dict[str, bytes]:
    """Our writer's archive of the dataset, by member."""
    return asyncio.run(export_files(writer, dataset))


def png(pixels: npt.NDArray[Any], palette: list[tuple[int, int, int]] | None = None) -> bytes:
    """A PNG of the array (gray 8 or 16 bits, RGB, RGBA), or a palette PNG of its indices."""
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if palette is not None:
        image.putpalette(bytes(c for colour in palette for c in colour))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares width x height 8-bit gray pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def pixels(shape: ParsedShape, height: int, width: int) -> npt.NDArray[np.bool_]:
    """A mask shape's pixels on a frame."""
    assert shape.type == "mask"
    return cvat_mask_to_array(shape.points, height, width)


def grid(rows: list[str]) -> npt.NDArray[np.int64]:
    """Digits as an array of ints."""
    return np.array([[int(c) for c in row] for row in rows])


def mask_points(mask: npt.NDArray[Any]) -> list[float]:
    """CVAT mask points of a boolean array."""
    return [float(v) for v in array_to_cvat_mask(mask.astype(bool))]


VOC_PALETTE = voc_colormap()

# --- round trip ------------------------------------------------------------------------------


def test_our_export_reads_back(tmp_path: Path) -> None:
    parsed = read(read_voc, export(write_voc, DATASET), tmp_path)
    assert parsed.labels == ["car", "road", "blob", "sign", "lane", "Weather", "person", "head",
                             "hand"]  # fmt: skip
    boxes = [shape for shape in parsed.shapes if shape.type == "rectangle"]
    assert [(box.label, box.points, box.frame) for box in boxes] == [
        ("sign", [5.5, 5.8, 9.5, 6.8], "street_0.jpg"),
        ("car", [1.0, 1.0, 5.0, 4.0], "street_0.jpg"),
        ("car", [0.0, 6.0, 2.0, 8.0], "street_0.jpg"),
    ]
    sign, car, grouped = boxes
    assert sign.rotation == 90.0
    assert sign.attributes == {"difficult": "false", "truncated": "false", "kind": "stop"}
    assert car.occluded
    assert car.attributes == {
        "difficult": "true",  # 1.9 written as int 1, read as a VOC flag
        "truncated": "true",
        "pose": "Left",
        "model": "suv",
    }
    assert grouped.attributes["pose"] == "Unspecified"
    # masks: instance 1 (the sign's ellipse) and 2 (the blob) of SegmentationObject
    masks = [shape for shape in parsed.shapes if shape.type == "mask"]
    objects = grid(STREET_OBJECTS)
    assert [(mask.label, mask.points) for mask in masks] == [
        ("sign", mask_points(objects == 1)),
        ("blob", [1.0, 4.0, 1.0, 10.0, 5.0, 11.0, 7.0]),  # the blob shape itself
    ]
    # CVAT's bindings: box k and mask instance k share group k; groups of one are dropped
    assert [shape.group for shape in parsed.shapes] == [1, 2, 0, 1, 2]
    assert [(tag.label, tag.frame) for tag in parsed.tags] == [
        ("Weather", "street_0.jpg"),
        ("road", "tagged.jpg"),
        ("Weather", "tagged.jpg"),
    ]
    # the frame of a track: track_id and keyframe make it a track (VOC is a track format)
    (track,) = parsed.tracks
    assert track.label == "car"
    (frame,) = track.shapes
    assert (frame.frame, frame.points, frame.keyframe) == ("dir/far.jpg", [0.7, 0.0, 2.9, 2.0],
                                                           False)  # fmt: skip
    assert frame.attributes["model"] == "x<y&z>\"'"
    assert frame.attributes["keyframe"] == "False"  # kept as an attribute, as CVAT does


def test_track_frames_become_one_track(tmp_path: Path) -> None:
    frames = tuple(
        FrameAnnotations(
            FrameInfo(index, f"f{index}.png", 20, 10),
            shapes=(
                Shape(
                    "rectangle",
                    CAR.id,
                    (index, 1, index + 4.25, 5),
                    track_id=3,
                    keyframe=index != 1,
                    occluded=index == 2,
                ),
            ),
        )
        for index in range(3)
    )
    parsed = read(read_voc, export(write_voc, InMemoryDataset(TASK, frames)), tmp_path)
    assert parsed.shapes == []
    (track,) = parsed.tracks
    assert [(s.frame, s.points, s.keyframe, s.occluded) for s in track.shapes] == [
        ("f0.png", [0.0, 1.0, 4.25, 5.0], True, False),
        ("f1.png", [1.0, 1.0, 5.25, 5.0], False, False),
        ("f2.png", [2.0, 1.0, 6.25, 5.0], True, True),
    ]


# --- files made by other tools ------------------------------------------------------------

VOC2012_XML = b"""<annotation>
\t<folder>VOC2012</folder>
\t<filename>2007_000032.jpg</filename>
\t<source>
\t\t<database>The VOC2007 Database</database>
\t\t<annotation>PASCAL VOC2007</annotation>
\t\t<image>flickr</image>
\t</source>
\t<size>
\t\t<width>6</width>
\t\t<height>4</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>1</segmented>
\t<object>
\t\t<name>aeroplane</name>
\t\t<pose>Frontal</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>0</difficult>
\t\t<bndbox>
\t\t\t<xmin>1</xmin>
\t\t\t<ymin>0</ymin>
\t\t\t<xmax>3</xmax>
\t\t\t<ymax>2</ymax>
\t\t</bndbox>
\t</object>
\t<object>
\t\t<name>person</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>1</truncated>
\t\t<difficult>0</difficult>
\t\t<bndbox>
\t\t\t<xmin>3.5</xmin>
\t\t\t<ymin>1</ymin>
\t\t\t<xmax>6</xmax>
\t\t\t<ymax>4</ymax>
\t\t</bndbox>
\t\t<part>
\t\t\t<name>head</name>
\t\t\t<bndbox>
\t\t\t\t<xmin>4</xmin>
\t\t\t\t<ymin>1</ymin>
\t\t\t\t<xmax>5</xmax>
\t\t\t\t<ymax>2</ymax>
\t\t\t</bndbox>
\t\t</part>
\t\t<actions>
\t\t\t<jumping>1</jumping>
\t\t</actions>
\t</object>
</annotation>
"""
# instance 1: an aeroplane, 2: a person, 255: VOC's "void" outline
VOC_OBJECTS = np.array(
    [
        [0, 1, 1, 255, 0, 0],
        [0, 1, 1, 255, 2, 2],
        [0, 0, 255, 2, 2, 2],
        [0, 0, 0, 2, 2, 2],
    ],
    np.uint8,
)
VOC_CLASSES = np.choose(np.searchsorted([0, 1, 2, 255], VOC_OBJECTS), [0, 1, 15, 255]).astype(
    np.uint8
)


def voc2012_members() -> dict[str, bytes]:
    """One image of PASCAL VOC 2012 as its devkit lays it out (no labelmap.txt)."""
    return {
        "VOC2012/Annotations/2007_000032.xml": VOC2012_XML,
        "VOC2012/ImageSets/Main/train.txt": b"2007_000032\n",
        "VOC2012/ImageSets/Main/aeroplane_train.txt": b"2007_000032  1\n",
        "VOC2012/ImageSets/Main/person_train.txt": b"2007_000032  1\n",
        "VOC2012/ImageSets/Main/dog_train.txt": b"2007_000032 -1\n",
        "VOC2012/ImageSets/Segmentation/train.txt": b"2007_000032\n",
        "VOC2012/ImageSets/Layout/train.txt": b"2007_000032 2\n",
        "VOC2012/ImageSets/Action/train.txt": b"2007_000032 2\n",
        "VOC2012/SegmentationClass/2007_000032.png": png(VOC_CLASSES, VOC_PALETTE),
        "VOC2012/SegmentationObject/2007_000032.png": png(VOC_OBJECTS, VOC_PALETTE),
        "VOC2012/JPEGImages/2007_000032.jpg": b"not read",
    }


def test_a_voc_devkit_folder(tmp_path: Path) -> None:
    parsed = read(read_voc, voc2012_members(), tmp_path)
    assert parsed.labels == []  # no labelmap.txt: VOC's own classes, declared by no file
    assert {shape.frame for shape in parsed.shapes} == {"2007_000032.jpg"}
    summary = [(s.type, s.label, s.group) for s in parsed.shapes]
    assert summary == [
        ("rectangle", "aeroplane", 1),
        ("rectangle", "head", 2),  # a part, on an item of a Layout list
        ("rectangle", "person", 2),
        ("mask", "aeroplane", 1),
        ("mask", "person", 2),
        ("mask", "ignored", 0),  # the void outline, as datumaro reads it
    ]
    aeroplane, head, person = parsed.shapes[:3]
    assert aeroplane.points == [1.0, 0.0, 3.0, 2.0]
    assert aeroplane.attributes == {"difficult": "false", "truncated": "false", "pose": "Frontal"}
    assert head.points == [4.0, 1.0, 5.0, 2.0]
    assert person.attributes["jumping"] == "true"
    assert person.attributes["running"] == "false"  # VOC's actions of a person default false
    assert np.array_equal(pixels(parsed.shapes[3], 4, 6), VOC_OBJECTS == 1)
    assert np.array_equal(pixels(parsed.shapes[4], 4, 6), VOC_OBJECTS == 2)
    assert [(tag.label, tag.frame) for tag in parsed.tags] == [
        ("aeroplane", "2007_000032.jpg"),
        ("person", "2007_000032.jpg"),
    ]


LABELIMG_XML = b"""<annotation>
\t<folder>images</folder>
\t<filename>dog 1.png</filename>
\t<path>/home/me/images/dog 1.png</path>
\t<source>
\t\t<database>Unknown</database>
\t</source>
\t<size>
\t\t<width>640</width>
\t\t<height>480</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>dog</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>1</difficult>
\t\t<bndbox>
\t\t\t<xmin>48</xmin>
\t\t\t<ymin>240</ymin>
\t\t\t<xmax>195.5</xmax>
\t\t\t<ymax>371</ymax>
\t\t</bndbox>
\t</object>
</annotation>
"""


def test_a_single_labelimg_xml_is_a_flat_upload(tmp_path: Path) -> None:
    with files_of(LABELIMG_XML, "dog 1.xml", tmp_path) as files:
        parsed = read_voc(files)
    (dog,) = parsed.shapes
    assert (dog.label, dog.frame, dog.points) == ("dog", "dog 1.png", [48.0, 240.0, 195.5, 371.0])
    assert dog.attributes == {"difficult": "true", "truncated": "false", "pose": "Unspecified"}
    # a zip of XMLs without Annotations/: every XML is an item of subset "train"
    other = LABELIMG_XML.replace(b"dog 1.png", b"cat.jpg")
    parsed = read(read_voc, {"a/dog 1.xml": LABELIMG_XML, "b/cat.xml": other}, tmp_path)
    assert [shape.frame for shape in parsed.shapes] == ["dog 1.png", "cat.jpg"]


def test_labelmap_without_colours_and_rgb_masks(tmp_path: Path) -> None:
    # no colour in labelmap.txt: class k takes VOC's colour k; an RGB class PNG reads so
    classes = np.array([[0, 1, 1], [2, 2, 0]])
    rgb = np.array(VOC_PALETTE, np.uint8)[classes]
    members = {
        "labelmap.txt": b"# label:color_rgb:parts:actions\nbackground:::\ncat:::\ndog:::\n",
        "ImageSets/Segmentation/default.txt": b"a\n",
        "SegmentationClass/a.png": png(rgb),
    }
    parsed = read(read_voc, members, tmp_path)
    assert parsed.labels == ["cat", "dog"]
    assert [(s.label, s.frame) for s in parsed.shapes] == [("cat", "a"), ("dog", "a")]
    assert np.array_equal(pixels(parsed.shapes[1], 2, 3), classes == 2)


# --- hostile and malformed uploads -----------------------------------------------------------


def _street(**overrides: bytes) -> dict[str, bytes]:
    members = {
        "labelmap.txt": b"background:0,0,0::\ncar:128,0,0::\n",
        "ImageSets/Main/default.txt": b"a\n",
        "ImageSets/Segmentation/default.txt": b"a\n",
        "Annotations/a.xml": b"<annotation><filename>a.png</filename><size><width>3</width>"
        b"<height>2</height></size><object><name>car</name><bndbox><xmin>0</xmin>"
        b"<ymin>0</ymin><xmax>1</xmax><ymax>1</ymax></bndbox></object></annotation>",
        "SegmentationClass/a.png": png(np.array([[0, 1, 1], [0, 0, 0]], np.uint8), VOC_PALETTE),
        "SegmentationObject/a.png": png(np.array([[0, 1, 1], [0, 0, 0]], np.uint8), VOC_PALETTE),
    }
    members.update(overrides)
    return members


def test_the_street_reads(tmp_path: Path) -> None:
    parsed = read(read_voc, _street(), tmp_path)
    assert [(s.type, s.label, s.frame) for s in parsed.shapes] == [
        ("rectangle", "car", "a.png"),
        ("mask", "car", "a.png"),
    ]


BOMB_XML = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><object><name>&lol2;</name></object></annotation>"""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Annotations/a.xml": BOMB_XML}, "a.xml is not XML Tessera reads"),
        ({"Annotations/a.xml": b"<annotation><object>"}, "a.xml is not XML Tessera reads"),
        ({"Annotations/a.xml": b"<annotations/>"}, "its root is <annotations>"),
        (
            {"Annotations/a.xml": b"<annotation><object><bndbox/></object></annotation>"},
            "Annotations/a.xml, object 1 has no <name>",
        ),
        (
            {"Annotations/a.xml": b"<annotation><object><name>car</name></object></annotation>"},
            "object 1 has no <bndbox>",
        ),
        (
            {
                "Annotations/a.xml": b"<annotation><object><name>car</name><bndbox><xmin>NaN"
                b"</xmin><ymin>0</ymin><xmax>1</xmax><ymax>1</ymax></bndbox></object>"
                b"</annotation>"
            },
            "<bndbox>/<xmin> is not a finite number: 'NaN'",
        ),
        (
            {
                "Annotations/a.xml": b"<annotation><object><name>car</name><bndbox><xmin>0"
                b"</xmin><ymin>0</ymin><xmax>one</xmax></bndbox></object></annotation>"
            },
            "<bndbox>/<xmax> is not a finite number",
        ),
        (
            {
                "Annotations/a.xml": b"<annotation><object><name>car</name><difficult>2"
                b"</difficult><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>1</xmax><ymax>1</ymax>"
                b"</bndbox></object></annotation>"
            },
            "<difficult> is '2', not 0 or 1",
        ),
        ({"SegmentationObject/a.png": bomb_png()}, "refused as a decompression bomb"),
        ({"SegmentationClass/a.png": b"\x89PNG\r\n\x1a\nrubbish"}, "is not a PNG image"),
        (
            {"SegmentationClass/a.png": png(np.full((2, 3, 3), 7, np.uint8))},
            "SegmentationClass/a.png has pixels coloured (7, 7, 7), a colour of no class",
        ),
        (
            {"SegmentationObject/a.png": png(np.zeros((3, 3), np.uint8), VOC_PALETTE)},
            "SegmentationObject/a.png is 3 x 3 pixels, but Annotations/a.xml gives the image "
            "as 3 x 2",
        ),
        ({"labelmap.txt": b"car:1,2::\n"}, "labelmap.txt, line 1: the colour '1,2' is not three"),
        ({"labelmap.txt": b"car:a,b,c::\n"}, "the colour 'a,b,c' is not three numbers 0-255"),
        ({"labelmap.txt": b"car:0,0,300::\n"}, "is not three numbers 0-255"),
        ({"labelmap.txt": b"car:1,2,3\n"}, "2 ':'-separated fields where 4"),
        ({"labelmap.txt": b"car:::\ncar:::\n"}, "the label 'car' is defined twice"),
        ({"ImageSets/Main/car_default.txt": b"a yes\n"}, "expected '<id> <1|0|-1>'"),
        (
            {"SegmentationClass/a.png": png(np.full((2, 3), 9, np.uint8))},
            "has pixels of class 9, past the 2 classes",
        ),
    ],
)
def test_hostile_and_malformed(tmp_path: Path, overrides: dict[str, bytes], message: str) -> None:
    with pytest.raises(ImportFailed) as failed:
        read(read_voc, _street(**overrides), tmp_path)
    assert message in str(failed.value)


def test_objects_without_classes_and_no_voc(tmp_path: Path) -> None:
    members = _street()
    del members["SegmentationClass/a.png"]
    with pytest.raises(ImportFailed, match=r"has no SegmentationClass/a\.png"):
        read(read_voc, members, tmp_path)
    with pytest.raises(ImportFailed, match=r"this is not a PASCAL VOC 1\.1 upload"):
        read(read_voc, {"notes.txt": b"hello"}, tmp_path)


def test_png_limit_is_pillows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_PNG_PIXELS == 89_478_485
    # the header check holds whatever Pillow's setting; a lower setting of Pillow's also
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ImportFailed, match="refused as a decompression bomb"):
        read(read_voc, _street(**{"SegmentationClass/a.png": bomb_png(9460, 9460)}), tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2)
    with pytest.raises(ImportFailed, match="refused as a decompression bomb"):
        read(read_voc, _street(), tmp_path)


def _segmented(frames: int) -> dict[str, bytes]:
    """`frames` 480 x 640 items of SegmentationClass and SegmentationObject PNGs, two
    instances each."""
    objects = np.zeros((480, 640), np.uint8)
    objects[10:200, 20:300] = 1
    objects[250:400, 100:600] = 2
    classes = np.where(objects == 2, 15, objects).astype(np.uint8)
    ids = "".join(f"{index}\n" for index in range(frames))
    members = {"ImageSets/Segmentation/default.txt": ids.encode()}
    for index in range(frames):
        members[f"SegmentationClass/{index}.png"] = png(classes, VOC_PALETTE)
        members[f"SegmentationObject/{index}.png"] = png(objects, VOC_PALETTE)
    return members


def _peak(frames: int, tmp_path: Path) -> int:
    with files_of(archive(_segmented(frames)), "upload.zip", tmp_path) as files:
        tracemalloc.start()
        try:
            parsed = read_voc(files)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert len(parsed.shapes) == 2 * frames
    return peak


def test_memory_holds_one_frame_of_pixels(tmp_path: Path) -> None:
    _peak(2, tmp_path)
    small, large = _peak(4, tmp_path), _peak(24, tmp_path)
    # a frame's pixels take over 1 MiB as int32; 20 more frames add only their masks' runs
    assert large < small + (1 << 20), (small, large)
