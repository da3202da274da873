"""Cityscapes 1.0 import: our writer's archives read back (against the instance maps its
tests derive by hand from CVAT), files laid out as the Cityscapes dataset ships them, and
hostile or malformed uploads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tessera.export.formats.cityscapes import write_cityscapes
from tessera.export.imports.files import ImportFailed
from tessera.export.imports.formats.cityscapes import read_cityscapes

from ..formats.test_cityscapes import CLASSES, DATASET, INSTANCE_OF, STREET_SHOWN, _grid
from .test_voc import bomb_png, export, pixels, png, read


def test_our_export_reads_back(tmp_path: Path) -> None:
    parsed = read(read_cityscapes, export(write_cityscapes, DATASET), tmp_path)
    assert parsed.labels == CLASSES[1:]  # all but the background, class 0
    assert parsed.tags == []
    assert parsed.tracks == []
    instances = _grid(STREET_SHOWN, INSTANCE_OF)
    street = [shape for shape in parsed.shapes if shape.frame == "street_0"]
    values = sorted(set(INSTANCE_OF.values()) - {0})  # one mask per value, in value order
    assert [(shape.label, shape.attributes["is_crowd"]) for shape in street] == [
        (CLASSES[value if value < 1000 else value // 1000], "true" if value < 1000 else "false")
        for value in values
    ]
    for value, shape in zip(values, street, strict=True):
        assert np.array_equal(pixels(shape, 8, 12), instances == value), value
    (far,) = [shape for shape in parsed.shapes if shape.frame == "dir/far"]
    assert far.label == "car"
    expected = np.zeros((8, 12), bool)
    expected[0:2, 0:2] = True
    assert np.array_equal(pixels(far, 8, 12), expected)


# aachen_000000_000019, shrunk: 0 unlabeled, 7 road (stuff), 26001/26002 cars, 24000 a person
AACHEN = np.array(
    [
        [0, 0, 26001, 26001, 0, 24000],
        [7, 7, 26001, 26001, 26002, 24000],
        [7, 7, 7, 7, 26002, 7],
    ],
    np.uint16,
)


def test_the_cityscapes_dataset_layout(tmp_path: Path) -> None:
    members = {
        "cityscapes/gtFine/train/aachen/aachen_000000_000019_gtFine_instanceIds.png": png(AACHEN),
        "cityscapes/gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png": png(
            np.where(AACHEN < 1000, AACHEN, AACHEN // 1000).astype(np.uint8)
        ),
        "cityscapes/gtFine/train/aachen/aachen_000000_000019_gtFine_polygons.json": b"{}",
        "cityscapes/imgsFine/leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png": (
            b"not read"
        ),
    }
    parsed = read(read_cityscapes, members, tmp_path)
    assert parsed.labels == []  # no label_colors.txt: Cityscapes' ids, declared by no file
    assert {shape.frame for shape in parsed.shapes} == {"aachen/aachen_000000_000019.png"}
    assert [(s.label, s.attributes["is_crowd"]) for s in parsed.shapes] == [
        ("road", "true"),
        ("person", "false"),
        ("car", "false"),
        ("car", "false"),
    ]
    for shape, value in zip(parsed.shapes, (7, 24000, 26001, 26002), strict=True):
        assert np.array_equal(pixels(shape, 3, 6), value == AACHEN)


def test_train_ids_and_label_colors(tmp_path: Path) -> None:
    train_ids = np.array([[0, 0, 255], [13, 13, 255]], np.uint8)
    members = {
        "gtFine/val/a_gtFine_labelTrainIds.png": png(train_ids),
        "gtFine/val/a_gtFine_instanceIds.png": png(np.zeros((2, 3), np.uint16)),
    }
    parsed = read(read_cityscapes, members, tmp_path)
    # train ids (255 is Cityscapes' "ignore"), and labelTrainIds win over instanceIds
    assert [(s.label, s.frame) for s in parsed.shapes] == [("road", "a"), ("car", "a")]
    # label_colors.txt names the classes; a name may hold spaces
    colors = b"0 0 0 background\n255 0 0 traffic light\n# a comment\n\n0 255 0 tree\n"
    members = {
        "label_colors.txt": colors,
        "gtFine/default/b_gtFine_instanceIds.png": png(
            np.array([[0, 1001, 2], [0, 1002, 2]], np.uint16)
        ),
    }
    parsed = read(read_cityscapes, members, tmp_path)
    assert parsed.labels == ["traffic light", "tree"]
    assert [(s.label, s.attributes["is_crowd"]) for s in parsed.shapes] == [
        ("tree", "true"),
        ("traffic light", "false"),
        ("traffic light", "false"),
    ]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"gtFine/readme.txt": b"hi"}, "this is not a Cityscapes 1.0 upload: no gtFine/"),
        ({"gtFine/x/a_gtFine_instanceIds.png": bomb_png()}, "refused as a decompression bomb"),
        (
            {"gtFine/x/a_gtFine_instanceIds.png": png(np.zeros((2, 2, 3), np.uint8))},
            "a_gtFine_instanceIds.png is a RGB PNG where a grayscale PNG was expected",
        ),
        (
            {
                "label_colors.txt": b"0 0 0 background\n1 2 car\n",
                "gtFine/x/a_gtFine_instanceIds.png": png(np.zeros((2, 2), np.uint16)),
            },
            "label_colors.txt, line 2: expected 'r g b name'",
        ),
        (
            {
                "label_colors.txt": b"0 0 0 background\nred 0 0 car\n",
                "gtFine/x/a_gtFine_instanceIds.png": png(np.zeros((2, 2), np.uint16)),
            },
            "label_colors.txt, line 2: the colour 'red 0 0' is not three numbers 0-255",
        ),
        (
            {
                "label_colors.txt": b"0 0 0 background\n0 0 256 car\n",
                "gtFine/x/a_gtFine_instanceIds.png": png(np.zeros((2, 2), np.uint16)),
            },
            "is not three numbers 0-255",
        ),
        (
            {
                "label_colors.txt": b"0 0 0 background\n1 1 1 car\n",
                "gtFine/x/a_gtFine_instanceIds.png": png(np.full((2, 2), 5001, np.uint16)),
            },
            "a_gtFine_instanceIds.png has pixels of class 5, past the 2 classes",
        ),
        (
            {
                "label_colors.txt": b"0 0 0 background\n1 1 1 car\n2 2 2 car\n",
                "gtFine/x/a_gtFine_instanceIds.png": png(np.zeros((2, 2), np.uint16)),
            },
            "the label 'car' is defined twice",
        ),
    ],
)
def test_hostile_and_malformed(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    with pytest.raises(ImportFailed) as failed:
        read(read_cityscapes, members, tmp_path)
    assert message in str(failed.value)
