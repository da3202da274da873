"""Segmentation mask 1.1 import: our writer's archives read back (against the instance
maps its tests derive by hand from CVAT), masks as other tools write them, and hostile or
malformed uploads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tessera.export.formats.segmentation_mask import write_segmentation_mask
from tessera.export.imports.files import ImportFailed
from tessera.export.imports.formats.segmentation_mask import read_segmentation_mask

from ..formats.test_segmentation_mask import (
    _CLASS_OF_INSTANCE,
    CLASSES,
    DATASET,
    FAR_OBJECTS,
    STREET_OBJECTS,
    _grid,
)
from .test_voc import VOC_PALETTE, bomb_png, export, pixels, png, read


def test_our_export_reads_back(tmp_path: Path) -> None:
    parsed = read(read_segmentation_mask, export(write_segmentation_mask, DATASET), tmp_path)
    assert parsed.labels == [name for name in CLASSES if name != "background"]
    assert parsed.tags == []
    assert parsed.tracks == []
    street = [shape for shape in parsed.shapes if shape.frame == "street_0"]
    objects = _grid(STREET_OBJECTS)
    # one mask per instance of SegmentationObject, labelled by SegmentationClass
    assert [shape.label for shape in street] == [
        CLASSES[_CLASS_OF_INSTANCE[instance]] for instance in range(1, 7)
    ]
    for instance, shape in enumerate(street, 1):
        assert np.array_equal(pixels(shape, 8, 12), objects == instance), instance
        assert shape.group == 0  # a group was merged into one mask on export
    (far,) = [shape for shape in parsed.shapes if shape.frame == "dir/far"]
    assert far.label == "car"
    assert np.array_equal(pixels(far, 8, 12), _grid(FAR_OBJECTS) == 1)


def test_class_only_gray_masks_and_rgb_instances(tmp_path: Path) -> None:
    # a grayscale class PNG holds the class indices; without SegmentationObject each class
    # but the background is one mask
    classes = np.array([[0, 2, 2, 0], [1, 1, 0, 0]], np.uint8)
    members = {
        "labelmap.txt": b"background:0,0,0::\nsky:10,20,30::\ntree:40,50,60::\n",
        "ImageSets/Segmentation/train.txt": b"# a comment\n\nimg 7\n",
        "SegmentationClass/img 7.png": png(classes),
        "JPEGImages/img 7.jpeg": b"not read",
    }
    parsed = read(read_segmentation_mask, members, tmp_path)
    assert parsed.labels == ["sky", "tree"]
    assert [(shape.label, shape.frame) for shape in parsed.shapes] == [
        ("sky", "img 7.jpeg"),
        ("tree", "img 7.jpeg"),
    ]
    assert np.array_equal(pixels(parsed.shapes[1], 2, 4), classes == 2)
    # RGB PNGs, as tools that write no palettes do: colours of labelmap.txt, VOC's instances
    rgb_classes = np.array([(0, 0, 0), (10, 20, 30), (40, 50, 60)], np.uint8)[classes]
    instances = np.array([[0, 1, 1, 0], [2, 2, 0, 0]])
    members["SegmentationClass/img 7.png"] = png(rgb_classes)
    members["SegmentationObject/img 7.png"] = png(np.array(VOC_PALETTE, np.uint8)[instances])
    parsed = read(read_segmentation_mask, members, tmp_path)
    assert [shape.label for shape in parsed.shapes] == ["tree", "sky"]
    assert np.array_equal(pixels(parsed.shapes[0], 2, 4), instances == 1)


def test_no_labelmap_takes_vocs_classes(tmp_path: Path) -> None:
    classes = np.array([[0, 15], [12, 0]], np.uint8)
    members = {
        "ImageSets/Segmentation/default.txt": b"a\n",
        "SegmentationClass/a.png": png(classes, VOC_PALETTE),
    }
    parsed = read(read_segmentation_mask, members, tmp_path)
    assert parsed.labels == []
    assert [shape.label for shape in parsed.shapes] == ["dog", "person"]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"a.xml": b"<annotation/>"}, "this is not a Segmentation mask 1.1 upload"),
        (
            {
                "ImageSets/Segmentation/default.txt": b"a\n",
                "SegmentationClass/a.png": png(np.zeros((2, 2), np.uint8)),
                "SegmentationObject/a.png": bomb_png(),
            },
            "SegmentationObject/a.png declares 100000 x 100000 pixels",
        ),
        (
            {
                "labelmap.txt": b"background:0,0,0::\nsky:10,20::\n",
                "ImageSets/Segmentation/default.txt": b"a\n",
            },
            "labelmap.txt, line 2: the colour '10,20' is not three numbers 0-255",
        ),
        (
            {
                "labelmap.txt": b"background:0,0,0::\n",
                "ImageSets/Segmentation/default.txt": b"a\n",
                "SegmentationClass/a.png": png(np.full((2, 2, 3), 9, np.uint8)),
            },
            "SegmentationClass/a.png has pixels coloured (9, 9, 9), a colour of no class",
        ),
        (
            {
                "ImageSets/Segmentation/default.txt": b"a\n",
                "SegmentationClass/a.png": png(np.zeros((2, 2), np.uint8)),
                "SegmentationObject/a.png": png(np.zeros((3, 2), np.uint8)),
            },
            "SegmentationObject/a.png is 2 x 3 pixels but SegmentationClass/a.png is 2 x 2",
        ),
        (
            {
                "ImageSets/Segmentation/default.txt": b"a\n",
                "SegmentationClass/a.png": png(np.zeros((2, 2, 2), np.uint8)),
            },
            "SegmentationClass/a.png is a LA PNG",
        ),
    ],
)
def test_hostile_and_malformed(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    with pytest.raises(ImportFailed) as failed:
        read(read_segmentation_mask, members, tmp_path)
    assert message in str(failed.value)
