"""LabelMe 3.0 import: our writer's archives read back, annotations as the LabelMe web tool
writes them (part trees, masks, flags), and hostile or malformed uploads."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tessera.export.formats.labelme import write_labelme
from tessera.export.imports.files import ImportFailed, files_of
from tessera.export.imports.formats.labelme import read_labelme

from ..formats.test_labelme import DATASET
from .test_voc import BOMB_XML, bomb_png, export, pixels, png, read


def test_our_export_reads_back(tmp_path: Path) -> None:
    files = export(write_labelme, DATASET)
    parsed = read(read_labelme, files, tmp_path)
    assert parsed.labels == []
    assert parsed.tags == []
    assert parsed.tracks == []  # LabelMe is no track format for CVAT: frames of tracks
    summary = [(s.type, s.label, s.frame, s.group) for s in parsed.shapes]
    assert summary == [
        ("polygon", "road & <lane>", "street/a.jpg", 1),
        ("mask", "sign", "street/a.jpg", 0),
        ("mask", "blob", "street/a.jpg", 1),
        ("rectangle", "walker", "street/a.jpg", 0),
        ("rectangle", "car", "street/a.jpg", 1),
        ("rectangle", "car", "c.jpg", 0),
        ("polygon", "road & <lane>", "c.jpg", 0),
    ]
    road, sign, blob, walker, car, track_car, track_road = parsed.shapes
    assert road.points == [0.0, 0.0, 10.0, 0.0, 5.0, 8.12]  # 2 decimals, as datumaro keeps
    assert blob.points == [1.0, 4.0, 1.0, 10.0, 20.0, 12.0, 21.0]  # the mask shape itself
    painted = np.asarray(Image.open(io.BytesIO(files["default/Masks/street/a_mask_1.png"])))
    assert np.array_equal(pixels(sign, 48, 64), painted[:, :, 3] > 0)
    assert sign.attributes == {"kind": "yield", "username": ""}
    assert walker.points == [1.0, 2.5, 11.11, 12.0]
    assert walker.attributes == {"username": "bob"}
    assert (car.points, car.rotation, car.occluded) == ([10.0, 20.0, 30.33, 40.01], 30.5, True)
    assert car.attributes == {
        "model": "suv",
        "parked": "true",
        "speed": "42.5",
        "note": 'x,y="1"',
        "code": "7",
        "username": "",
    }
    assert track_car.attributes["keyframe"] == "false"  # kept, as CVAT keeps it
    assert "track_id" not in track_car.attributes
    assert track_road.points == [0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0]


# the LabelMe web tool's XML, one line; objects 2 (with parts 3 and 4) and 5 (part 6) are
# part trees; object 7 is deleted
WEBTOOL_XML = (
    b"<annotation><filename>img1.png</filename><folder>example_folder</folder><source>"
    b"<sourceImage>The MIT-CSAIL database of objects and scenes</sourceImage>"
    b"<sourceAnnotation>LabelMe Webtool</sourceAnnotation></source>"
    b"<object><name>window</name><deleted>0</deleted><verified>0</verified>"
    b"<date>25-May-2012 00:09:48</date><id>0</id><polygon><username>admin</username>"
    b"<pt><x>43</x><y>34</y></pt><pt><x>45</x><y>34</y></pt><pt><x>45.555</x><y>37</y></pt>"
    b"</polygon><parts><hasparts/><ispartof/></parts></object>"
    b"<imagesize><nrows>40</nrows><ncols>50</ncols></imagesize>"
    b"<object><name>license plate</name><deleted>0</deleted><occluded>no</occluded>"
    b"<attributes/><parts><hasparts/><ispartof/></parts><id>1</id><segm>"
    b"<username>brussell</username><box><xmin>8</xmin><ymin>6</ymin><xmax>12</xmax>"
    b"<ymax>8</ymax></box><mask>img1_mask_1.png</mask></segm></object>"
    b"<object><name>o1</name><deleted>0</deleted><occluded>yes</occluded>"
    b'<attributes>a1, colour=dark\\, red, n="12", t=TRUE, 5=x\\=y</attributes>'
    b"<parts><hasparts>3,4</hasparts><ispartof></ispartof></parts><id>2</id><polygon>"
    b"<username>anonymous</username><pt><x>30</x><y>12</y></pt><pt><x>42</x><y>21</y></pt>"
    b"<pt><x>24</x><y>26</y></pt></polygon></object>"
    b"<object><name>q1</name><deleted>0</deleted><occluded>no</occluded>"
    b"<parts><hasparts></hasparts><ispartof>2</ispartof></parts><id>3</id><polygon>"
    b"<pt><x>35</x><y>21</y></pt><pt><x>43</x><y>22</y></pt><pt><x>40</x><y>28</y></pt>"
    b"</polygon></object>"
    b"<object><name>b1</name><deleted>0</deleted><occluded>yes</occluded>"
    b"<parts><hasparts></hasparts><ispartof>2</ispartof></parts><id>4</id>"
    b"<type>bounding_box</type><polygon><username>anonymous</username>"
    b"<pt><x>13</x><y>19</y></pt><pt><x>23</x><y>19</y></pt><pt><x>23</x><y>30</y></pt>"
    b"<pt><x>13</x><y>30</y></pt></polygon></object>"
    b"<object><name>m1</name><deleted>0</deleted><attributes>rotation=15</attributes>"
    b"<parts><hasparts>6</hasparts><ispartof></ispartof></parts><id>5</id>"
    b"<segm><username>anonymous</username><mask>img1_mask_5.png</mask></segm></object>"
    b"<object><name>hg</name><deleted>0</deleted>"
    b"<parts><hasparts></hasparts><ispartof>5</ispartof></parts><id>6</id><polygon>"
    b"<pt><x>4</x><y>2</y></pt><pt><x>7</x><y>2</y></pt><pt><x>7</x><y>3</y></pt></polygon>"
    b"</object>"
    b"<object><name>gone</name><deleted>1</deleted><id>7</id><polygon>"
    b"<pt><x>1</x><y>1</y></pt></polygon></object>"
    b"</annotation>"
)
PLATE = np.zeros((40, 50), bool)
PLATE[6:8, 8:12] = True
M1 = np.zeros((40, 50), bool)
M1[13:20, 30:45] = True
M1[15, 33] = False


def test_webtool_annotation(tmp_path: Path) -> None:
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[PLATE] = (255, 255, 255)
    members = {
        "img1.xml": WEBTOOL_XML,
        "Masks/img1_mask_1.png": png(rgb),  # an RGB mask
        "Masks/img1_mask_5.png": png((M1 * 255).astype(np.uint8)),  # a grayscale one
        "img1.png": b"not read",
    }
    parsed = read(read_labelme, members, tmp_path)
    summary = [(s.type, s.label, s.group, s.occluded) for s in parsed.shapes]
    assert summary == [
        ("polygon", "window", 0, False),
        ("mask", "license plate", 0, False),
        ("polygon", "o1", 2, True),  # the tree of 2, numbered after 5's, as datumaro does
        ("polygon", "q1", 2, False),
        ("rectangle", "b1", 2, True),
        ("mask", "m1", 1, False),
        ("polygon", "hg", 1, False),
    ]
    assert {shape.frame for shape in parsed.shapes} == {"example_folder/img1.png"}
    window, plate, o1, _, b1, m1, _ = parsed.shapes
    assert window.points == [43.0, 34.0, 45.0, 34.0, 45.56, 37.0]
    assert window.attributes == {"username": "admin"}
    assert np.array_equal(pixels(plate, 40, 50), PLATE)
    assert np.array_equal(pixels(m1, 40, 50), M1)
    assert m1.rotation == 15.0
    assert o1.attributes == {
        "a1": "true",
        "colour": "dark, red",
        "n": "12",
        "t": "true",
        "5": "x=y",
        "username": "anonymous",
    }
    assert b1.points == [13.0, 19.0, 23.0, 30.0]


def test_a_single_xml_and_subsets(tmp_path: Path) -> None:
    xml = (
        b"<annotation><filename>a.jpg</filename><object><name>car</name><id>0</id>"
        b"<polygon><pt><x>1</x><y>1</y></pt><pt><x>5</x><y>1</y></pt><pt><x>5</x><y>4</y></pt>"
        b"</polygon></object><object><name>bare</name></object></annotation>"
    )
    with files_of(xml, "a.xml", tmp_path) as files:
        parsed = read_labelme(files)
    assert [(s.label, s.frame, s.points) for s in parsed.shapes] == [
        ("car", "a.jpg", [1.0, 1.0, 5.0, 1.0, 5.0, 4.0]),  # an object without geometry: none
    ]
    parsed = read(read_labelme, {"train/x/b.xml": xml.replace(b"a.jpg", b"b.jpg")}, tmp_path)
    assert parsed.shapes[0].frame == "b.jpg"


def _xml(
    objects: str, size: str = "<imagesize><nrows>4</nrows><ncols>5</ncols></imagesize>"
) -> bytes:
    return f"<annotation><filename>a.png</filename>{size}{objects}</annotation>".encode()


TRIANGLE = "<pt><x>0</x><y>0</y></pt><pt><x>3</x><y>0</y></pt><pt><x>3</x><y>3</y></pt>"
ONE_POINT = "<pt><x>1</x><y>1</y></pt>"
POLYGON = f"<polygon>{TRIANGLE}</polygon>"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"notes.txt": b"hello"}, "this is not a LabelMe 3.0 upload: no *.xml"),
        ({"a.xml": BOMB_XML}, "a.xml is not XML Tessera reads"),
        ({"a.xml": b"<annotation><object>"}, "a.xml is not XML Tessera reads"),
        ({"a.xml": b"<annotations/>"}, "a.xml is not a LabelMe annotation"),
        (
            {"a.xml": _xml(f"<object><polygon>{TRIANGLE}</polygon></object>")},
            "a.xml, object 1 has no <name>",
        ),
        (
            {
                "a.xml": _xml(
                    "<object><name>x</name><polygon><pt><x>1</x><y>1</y></pt></polygon></object>"
                )
            },
            "a.xml, object 1 is a polygon of 1 points, not 3",
        ),
        (
            {
                "a.xml": _xml(
                    "<object><name>x</name><polygon><pt><x>a</x><y>1</y></pt></polygon></object>"
                )
            },
            "a.xml, object 1: point 1's <x> is not a finite number: 'a'",
        ),
        (
            {"a.xml": _xml("<object><name>x</name><type>bounding_box</type><polygon/></object>")},
            "a.xml, object 1 is a bounding box without points",
        ),
        (
            {"a.xml": _xml("<object><name>x</name><segm><mask>m.png</mask></segm></object>")},
            "a.xml, object 1: its mask Masks/m.png is not in the upload",
        ),
        (
            {
                "a.xml": _xml("<object><name>x</name><segm><mask>m.png</mask></segm></object>"),
                "Masks/m.png": bomb_png(),
            },
            "Masks/m.png declares 100000 x 100000 pixels",
        ),
        (
            {
                "a.xml": _xml("<object><name>x</name><segm><mask>m.png</mask></segm></object>"),
                "Masks/m.png": png(np.ones((5, 5), np.uint8)),
            },
            "Masks/m.png is 5 x 5 pixels, but its XML's <imagesize> gives the image as 5 x 4",
        ),
        (
            {
                "a.xml": _xml(
                    f"<object><name>x</name><id>one</id><polygon>{TRIANGLE}</polygon></object>"
                )
            },
            "a.xml, object 1: <id> is not a whole number: 'one'",
        ),
        (
            {
                "a.xml": _xml(
                    f"<object><name>x</name><parts><hasparts>9</hasparts></parts>"
                    f"<polygon>{TRIANGLE}</polygon></object>"
                )
            },
            "a.xml: a part tree names object 9, which is not there",
        ),
        (
            {
                "a.xml": _xml(
                    f"<object><name>x</name><parts><hasparts>1;2</hasparts></parts>"
                    f"<polygon>{TRIANGLE}</polygon></object>"
                )
            },
            "<hasparts> is not a list of object ids: '1;2'",
        ),
        (
            {"a.xml": _xml("", "<imagesize><nrows>x</nrows><ncols>5</ncols></imagesize>")},
            "a.xml: <imagesize>/<nrows> is not a number: 'x'",
        ),
        (
            {
                "a.xml": _xml(
                    f"<object><name>x</name><attributes>rotation=up</attributes>"
                    f"<polygon>{TRIANGLE}</polygon></object>"
                )
            },
            "a.xml, object 1: the rotation is not a finite number: 'up'",
        ),
    ],
)
def test_hostile_and_malformed(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    with pytest.raises(ImportFailed) as failed:
        read(read_labelme, members, tmp_path)
    assert message in str(failed.value)
