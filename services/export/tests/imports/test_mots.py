"""MOTS PNG 1.0 import: our writer's archives read back as tracks (against the instance
maps its tests derive by hand from CVAT), PNGs laid out as KITTI MOTS ships them, and
hostile or malformed uploads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tessera.export.formats.mots import write_mots
from tessera.export.imports.files import ImportFailed
from tessera.export.imports.formats.mots import read_mots
from tessera.export.model import FrameAnnotations, FrameInfo, InMemoryDataset, Shape

from ..formats.test_mots import CAR, DATASET, F0_VALUES, F1_VALUES, PEDESTRIAN, TASK, _grid
from .test_voc import bomb_png, export, pixels, png, read


def test_our_export_reads_back(tmp_path: Path) -> None:
    parsed = read(read_mots, export(write_mots, DATASET), tmp_path)
    assert parsed.labels == ["car", "pedestrian", "tree", "Weather", "body", "nose"]
    assert parsed.shapes == []
    assert parsed.tags == []
    f0, f1 = _grid(F0_VALUES), _grid(F1_VALUES)
    summary = [
        (t.label, [(s.frame, s.keyframe, s.outside) for s in t.shapes]) for t in parsed.tracks
    ]
    assert summary == [
        ("car", [("f0", True, False), ("f1", True, False)]),  # value 1001 on f0 and f1
        ("pedestrian", [("f0", True, False)]),  # 2002: outside on f1, so not painted
        ("tree", [("f0", True, False)]),  # 3003
        ("pedestrian", [("x/f3", True, False)]),  # 2002 of the subset "train": another track
    ]
    car, pedestrian, tree, _ = parsed.tracks
    assert np.array_equal(pixels(car.shapes[0], 6, 10), f0 == 1001)
    assert np.array_equal(pixels(car.shapes[1], 6, 10), f1 == 1001)
    assert np.array_equal(pixels(pedestrian.shapes[0], 6, 10), f0 == 2002)
    assert np.array_equal(pixels(tree.shapes[0], 6, 10), f0 == 3003)


def test_frames_come_in_natural_order(tmp_path: Path) -> None:
    frames = tuple(
        FrameAnnotations(
            FrameInfo(index, f"{index}.jpg", 8, 4),
            shapes=(Shape("rectangle", CAR.id, (index % 4, 0, index % 4 + 2, 2), track_id=1),),
        )
        for index in (2, 10, 1)
    )
    parsed = read(read_mots, export(write_mots, InMemoryDataset(TASK, frames)), tmp_path)
    (track,) = parsed.tracks
    assert [shape.frame for shape in track.shapes] == ["1", "2", "10"]


# KITTI MOTS: instances/<sequence>/<frame>.png, 1000 * class + instance, 10000 ignore regions
SEQUENCE = np.array([[0, 1002, 1002, 10000], [2005, 2005, 0, 10000]], np.uint16)


def test_kitti_mots_layout(tmp_path: Path) -> None:
    members = {
        "instances/0002/000000.png": png(SEQUENCE),
        "instances/0002/000001.png": png(np.where(SEQUENCE == 2005, 0, SEQUENCE)),
        "images/0002/000000.png": b"not read",
    }
    parsed = read(read_mots, members, tmp_path)
    assert parsed.labels == []  # no labels.txt: MOTS' own classes
    summary = [(t.label, [(s.frame, s.z_order) for s in t.shapes]) for t in parsed.tracks]
    assert summary == [
        ("car", [("0002/000000.png", 0), ("0002/000001", 0)]),
        ("pedestrian", [("0002/000000.png", 0)]),
        ("ignored", [("0002/000000.png", 1), ("0002/000001", 1)]),
    ]
    assert np.array_equal(pixels(parsed.tracks[1].shapes[0], 2, 4), SEQUENCE == 2005)
    # with labels.txt of fewer than 10 labels, class 10 is still the ignored region
    members["instances/labels.txt"] = b"vehicle\nwalker\n"
    parsed = read(read_mots, members, tmp_path)
    assert parsed.labels == ["vehicle", "walker"]
    assert [track.label for track in parsed.tracks] == ["vehicle", "walker", "ignored"]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"images/1.jpg": b""}, "this is not a MOTS PNG 1.0 upload"),
        ({"train/instances/1.png": bomb_png()}, "train/instances/1.png declares 100000 x 100000"),
        (
            {"train/instances/1.png": png(np.zeros((2, 2, 4), np.uint8))},
            "train/instances/1.png is a RGBA PNG where a grayscale PNG was expected",
        ),
        (
            {
                "train/instances/labels.txt": b"car\n",
                "train/instances/1.png": png(np.full((2, 2), 2001, np.uint16)),
            },
            "train/instances/1.png has pixels of class 2, past the 1 labels of its labels.txt",
        ),
        (
            {"train/instances/1.png": png(np.full((2, 2), 3001, np.uint16))},
            "has pixels of class 3; without instances/labels.txt, MOTS' classes are",
        ),
    ],
)
def test_hostile_and_malformed(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    with pytest.raises(ImportFailed) as failed:
        read(read_mots, members, tmp_path)
    assert message in str(failed.value)


def test_plain_shapes_are_not_in_the_format(tmp_path: Path) -> None:
    frame = FrameAnnotations(
        FrameInfo(0, "a.jpg", 4, 4),
        shapes=(Shape("polygon", PEDESTRIAN.id, (0, 0, 3, 0, 3, 3)),),
    )
    parsed = read(read_mots, export(write_mots, InMemoryDataset(TASK, (frame,))), tmp_path)
    assert parsed.tracks == []
    assert parsed.labels == ["car", "pedestrian", "tree", "Weather", "body", "nose"]
