"""KITTI 1.0 import: our writer's archives read back (against the class maps its tests
derive by hand from CVAT), label files as the KITTI devkit and detectors write them, and
hostile or malformed uploads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tessera.export.formats.kitti import write_kitti
from tessera.export.imports.files import ImportFailed
from tessera.export.imports.formats.kitti import read_kitti

from ..formats.test_kitti import CLASSES, DATASET, _classes
from .test_voc import bomb_png, export, pixels, png, read


def test_our_export_reads_back(tmp_path: Path) -> None:
    parsed = read(read_kitti, export(write_kitti, DATASET), tmp_path)
    assert parsed.labels == CLASSES[1:]  # all but the background, class 0
    boxes = [shape for shape in parsed.shapes if shape.type == "rectangle"]
    assert [(b.label, b.frame, b.points, b.occluded, b.score) for b in boxes] == [
        ("car", "street_0", [1.0, 1.0, 5.0, 4.0], True, 0.75),
        ("car", "street_0", [0.0, 6.0, 2.0, 8.0], False, 1.0),
        ("car", "dir/far", [0.7, 0.0, 2.9, 2.0], False, 1.0),
    ]
    # truncated is a number in KITTI and a flag in datumaro; the score stays an attribute
    assert [b.attributes for b in boxes[:2]] == [
        {"truncated": "true", "score": "0.75"},
        {"truncated": "false", "score": "1.0"},
    ]
    # instance/: class << 8 for every mask of a class, so one mask per class, all crowds
    masks = [shape for shape in parsed.shapes if shape.type == "mask"]
    classes = _classes()
    assert [(m.label, m.attributes) for m in masks] == [
        (CLASSES[index], {"is_crowd": "true"}) for index in (2, 8, 9)
    ]
    for index, mask in zip((2, 8, 9), masks, strict=True):
        assert np.array_equal(pixels(mask, 8, 12), classes == index)


DEVKIT_LABELS = (
    b"Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01\n"
    b"Car 0.88 3 -0.69 0.00 192.37 402.31 374.00 1.60 1.57 3.23 -2.70 1.74 3.68 -1.29\n"
    b"DontCare -1 -1 -10 800.38 163.67 825.45 184.07 -1 -1 -1 -1000 -1000 -1000 -10\n"
)
DETECTIONS = b"Car -1 -1 -10 10.5 20.25 30 40 -1 -1 -1 -1000 -1000 -1000 -10 0.9123\n"


def test_devkit_labels_and_detections(tmp_path: Path) -> None:
    members = {
        "training/label_2/000000.txt": DEVKIT_LABELS,
        "training/image_2/000000.png": b"not read",
        "results/label_2/000000.txt": DETECTIONS,
    }
    parsed = read(read_kitti, members, tmp_path)
    assert parsed.labels == []
    assert [(s.label, s.frame, s.points, s.occluded) for s in parsed.shapes] == [
        ("Pedestrian", "000000.png", [712.4, 143.0, 810.73, 307.92], False),
        ("Car", "000000.png", [0.0, 192.37, 402.31, 374.0], True),
        ("DontCare", "000000.png", [800.38, 163.67, 825.45, 184.07], True),  # -1 is not 0
        ("Car", "000000", [10.5, 20.25, 30.0, 40.0], True),
    ]
    assert parsed.shapes[1].attributes == {"truncated": "true"}
    assert parsed.shapes[2].attributes == {"truncated": "true"}  # -1 is not 0
    assert (parsed.shapes[3].score, parsed.shapes[3].attributes["score"]) == (0.9123, "0.9123")


def test_semantic_instance_pngs(tmp_path: Path) -> None:
    # KITTI's semantics: value = id * 256 + instance, ids of Cityscapes without a label map
    values = np.array([[0, 26 * 256 + 1, 26 * 256 + 1], [7 * 256, 7 * 256, 26 * 256 + 2]])
    members = {"training/instance/000010_10.png": png(values.astype(np.uint16))}
    parsed = read(read_kitti, members, tmp_path)
    assert [(s.label, s.frame, s.attributes["is_crowd"]) for s in parsed.shapes] == [
        ("road", "000010_10", "true"),
        ("car", "000010_10", "false"),
        ("car", "000010_10", "false"),
    ]
    assert np.array_equal(pixels(parsed.shapes[2], 2, 3), values == 26 * 256 + 2)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"training/velodyne/0.bin": b""}, "this is not a KITTI 1.0 upload"),
        (
            {"d/label_2/a.txt": b"Car 0 0 0 1 2 3\n"},
            "d/label_2/a.txt, line 1: 7 fields where KITTI's 15 (16 with a score)",
        ),
        (
            {"d/label_2/a.txt": b"\nCar 0 0 0 1 2 x 4 0 0 0 0 0 0 0\n"},
            "d/label_2/a.txt, line 2: the box's right is not a finite number: 'x'",
        ),
        (
            {"d/label_2/a.txt": b"Car 0 0 0 1 2 inf 4 0 0 0 0 0 0 0\n"},
            "the box's right is not a finite number: 'inf'",
        ),
        (
            {"d/label_2/a.txt": b"Car 0 0.5 0 1 2 3 4 0 0 0 0 0 0 0\n"},
            "occluded is not an integer: '0.5'",
        ),
        (
            {"d/label_2/a.txt": b"Car no 0 0 1 2 3 4 0 0 0 0 0 0 0\n"},
            "truncated is not a finite number: 'no'",
        ),
        (
            {"d/label_2/a.txt": b"Car 0 0 0 1 2 3 4 0 0 0 0 0 0 0 nan\n"},
            "the score is not a finite number: 'nan'",
        ),
        ({"d/instance/a.png": bomb_png()}, "d/instance/a.png declares 100000 x 100000 pixels"),
        (
            {
                "label_colors.txt": b"0 0 0 background\n",
                "d/instance/a.png": png(np.full((2, 2), 3 * 256, np.uint16)),
            },
            "d/instance/a.png has pixels of class 3, past the 1 classes",
        ),
        (
            {"label_colors.txt": b"0 0 car\n", "d/label_2/a.txt": b""},
            "label_colors.txt, line 1: expected 'r g b name'",
        ),
    ],
)
def test_hostile_and_malformed(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    with pytest.raises(ImportFailed) as failed:
        read(read_kitti, members, tmp_path)
    assert message in str(failed.value)
