"""LabelMe 3.0: golden XML files as CVAT writes them (derived from CVAT's labelme.py and
bindings and its datumaro fork's `LabelMeConverter`, checked line by line by hand), the
mask PNGs' pixels, datumaro as an independent reader, and the writer's flat memory."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import datumaro as dm  # type: ignore[import-untyped]
import numpy as np
import pytest
from PIL import Image

from tessera.export.formats.labelme import image_path, image_paths, write_labelme
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

from .support import (
    GOLDEN,
    GeneratedDataset,
    export_files,
    label_and_type_counts,
    label_names,
    peak_memory,
    unpack,
)

CAR = Label(
    1,
    "car",
    "rectangle",
    "#ff0000",
    attributes=(
        AttributeSpec(1, "model", "select", False, ("sedan", "suv"), "sedan"),
        AttributeSpec(2, "parked", "checkbox", True, ("false",), "false"),
        AttributeSpec(3, "speed", "number", True, ("0", "200", "0.5"), "0"),
        AttributeSpec(4, "note", "text", True, (), ""),
        AttributeSpec(5, "code", "text", True, (), "7"),
    ),
)
ROAD = Label(2, "road & <lane>", "polygon", "#00ff00")
BLOB = Label(3, "blob", "mask", "#808080")
SIGN = Label(
    4, "sign", "ellipse", "#00ffff", (AttributeSpec(6, "kind", "text", False, (), "stop"),)
)
WALKER = Label(
    5, "walker", "rectangle", "#0000ff", (AttributeSpec(7, "username", "text", True, (), ""),)
)
LANE = Label(6, "lane", "polyline", "#ffff00")
WHEEL = Label(7, "wheel", "points", "#ff00ff")
HEAD = Label(9, "head", "points", "#aaaaaa", parent_id=8)
PERSON = Label(8, "person", "skeleton", "#123456", sublabels=(HEAD,))
WEATHER = Label(10, "weather", "tag", "#abcdef")

TASK = TaskInfo(
    id=5,
    name="streets",
    mode="annotation",
    dimension="2d",
    size=3,
    labels=(CAR, ROAD, BLOB, SIGN, WALKER, LANE, WHEEL, PERSON, WEATHER),
)

# a 3x2 mask at (10, 20): rows 011 / 110, runs 1 (0s), 4 (1s), 1 (0s)
MASK = (1, 4, 1, 10, 20, 12, 21)

FRAME_A = FrameAnnotations(
    FrameInfo(0, "street/a.jpg", 64, 48),
    shapes=(
        Shape(
            "rectangle",
            CAR.id,
            (10, 20, 30.333, 40.005),
            rotation=30.5,
            occluded=True,
            z_order=1,
            group=5,
            attributes={"model": "suv", "parked": "true", "speed": "42.5", "note": 'x,y="1"'},
        ),
        Shape("polygon", ROAD.id, (0, 0, 10, 0.004, 5, 8.125), group=5),
        Shape("polyline", LANE.id, (1, 2, 3, 4)),
        Shape("points", WHEEL.id, (5, 6)),
        Shape("ellipse", SIGN.id, (20, 15, 23, 13), attributes={"kind": "yield"}),
        Shape("mask", BLOB.id, MASK, group=5),
        Shape("rectangle", WALKER.id, (1.005, 2.5, 11.115, 12), attributes={"username": "bob"}),
        Shape("skeleton", PERSON.id, (), elements=(Shape("points", HEAD.id, (3, 4)),)),
    ),
    tags=(Tag(WEATHER.id),),
)
FRAME_B = FrameAnnotations(FrameInfo(1, "b.png", 64, 48))
FRAME_C = FrameAnnotations(
    FrameInfo(2, "c.jpg", 64, 48, subset="train"),
    shapes=(
        Shape("rectangle", CAR.id, (1, 1, 2, 2), track_id=4, keyframe=False),
        Shape("rectangle", CAR.id, (5, 5, 9, 9), track_id=1, outside=True),
        Shape("polygon", ROAD.id, (0, 0, 4, 0, 4, 4, 0, 4), track_id=2),
    ),
)
DATASET = InMemoryDataset(TASK, (FRAME_A, FRAME_B, FRAME_C))

EXPECTED_MEMBERS = [
    "default/Masks/street/a_mask_1.png",  # the ellipse, object 1
    "default/Masks/street/a_mask_2.png",  # the mask, object 2
    "default/street/a.xml",
    "default/b.xml",
    "train/c.xml",
]


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_labelme, dataset, options)


def _pixels(png: bytes) -> np.ndarray[Any, Any]:
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "RGBA"
        return np.asarray(image)


def test_xml_is_what_cvat_writes() -> None:
    files = asyncio.run(_export(DATASET))
    assert list(files) == EXPECTED_MEMBERS
    for member, golden in [
        ("default/street/a.xml", "labelme_default_street_a.xml"),
        ("default/b.xml", "labelme_default_b.xml"),
        ("train/c.xml", "labelme_train_c.xml"),
    ]:
        assert files[member].decode() == (GOLDEN / golden).read_text(encoding="utf-8"), member


def test_masks_are_painted_as_datumaro_paints_them() -> None:
    files = asyncio.run(_export(DATASET))
    blob = _pixels(files["default/Masks/street/a_mask_2.png"])
    assert blob.shape == (48, 64, 4)
    painted = np.argwhere(blob[:, :, 3])
    assert painted.tolist() == [[20, 11], [20, 12], [21, 10], [21, 11]]
    assert {tuple(blob[y, x]) for y, x in painted} == {(0, 203, 255, 153)}
    assert not blob[blob[:, :, 3] == 0].any()  # transparent black elsewhere
    # the ellipse (rx 3, ry 2 about 20, 15): the pixels whose centres lie inside, whose
    # box the XML gives as 17, 13 .. 23, 17 (one past the last column and row)
    sign = _pixels(files["default/Masks/street/a_mask_1.png"])
    ys, xs = np.nonzero(sign[:, :, 3])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (17, 22, 13, 16)


def _as_datumaro_1x(files: dict[str, bytes], root: Path) -> None:
    """Lay the files out for datumaro 1.x's reader, which looks for a mask under
    `Masks/<folder>/` at the dataset's root (CVAT's fork, as CVAT writes: beside the XML,
    `<subset>/Masks/`); the XML files stay where they are."""
    unpack(files, root)
    for name in files:
        if not name.endswith(".xml"):
            continue
        subset = name.split("/", 1)[0]
        tree = ET.parse(root / name)
        folder = tree.findtext("folder") or ""
        for mask in tree.iter("mask"):
            target = root / "Masks" / folder / (mask.text or "")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / subset / "Masks" / (mask.text or ""), target)


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    _as_datumaro_1x(asyncio.run(_export(DATASET)), tmp_path)
    dataset = dm.Dataset.import_from(str(tmp_path), "label_me")
    names = label_names(dataset)
    items = {item.id: item for item in dataset}
    assert set(items) == {"a", "b", "c"}
    counts = label_and_type_counts(dataset)
    assert counts == {
        ("car", "bbox"): 2,
        ("road & <lane>", "polygon"): 2,
        ("sign", "mask"): 1,
        ("blob", "mask"): 1,
        ("walker", "bbox"): 1,
    }
    first = {names[ann.label]: ann for ann in items["a"].annotations}
    car = first["car"]
    assert car.get_bbox() == pytest.approx([10, 20, 20.33, 20.01])
    assert car.attributes == {
        "model": "suv",
        "parked": True,
        "speed": 42.5,
        "note": 'x,y="1"',
        "code": "7",  # quoted, so it stays text
        "rotation": 30.5,
        "occluded": True,
        "username": "",
    }
    assert car.group == first["road & <lane>"].group == first["blob"].group != 0
    assert first["sign"].group == first["walker"].group == 0
    assert first["walker"].attributes["username"] == "bob"
    assert first["road & <lane>"].points == pytest.approx([0, 0, 10, 0, 5, 8.12])
    assert np.argwhere(first["blob"].image).tolist() == [[20, 11], [20, 12], [21, 10], [21, 11]]
    assert items["b"].annotations == []
    tracked = {names[ann.label]: ann.attributes for ann in items["c"].annotations}
    assert tracked["car"]["track_id"] == 4
    assert tracked["car"]["keyframe"] is False


def test_paths_subsets_annotated_only_and_video_names() -> None:
    assert image_path(FRAME_A.frame, "default") == "default/street/a.jpg"
    assert image_paths(FRAME_C, TASK) == ["train/c.jpg"]
    files = asyncio.run(_export(DATASET, ExportOptions(annotated_only=True)))
    assert "default/b.xml" not in files
    assert len(files) == len(EXPECTED_MEMBERS) - 1
    video = InMemoryDataset(
        dataclasses.replace(TASK, mode="interpolation", subset="val"),
        (FrameAnnotations(FrameInfo(0, "frame_000000", 64, 48)),),
    )
    xml = asyncio.run(_export(video))["val/frame_000000.xml"].decode()
    assert "<filename>frame_000000.PNG</filename>" in xml  # CVAT's video frame extension
    assert image_path(video.items[0].frame, "val") == "val/frame_000000.PNG"
    with pytest.raises(ValueError, match="2D format"):
        asyncio.run(_export(InMemoryDataset(dataclasses.replace(TASK, dimension="3d"), ())))


def test_frames_sharing_an_id_keep_both() -> None:
    frames = (
        FrameAnnotations(FrameInfo(0, "x.jpg", 8, 8), shapes=(Shape("mask", BLOB.id, MASK),)),
        FrameAnnotations(FrameInfo(1, "x.png", 8, 8), shapes=(Shape("mask", BLOB.id, MASK),)),
    )
    files = asyncio.run(_export(InMemoryDataset(TASK, frames)))
    assert list(files) == [
        "default/Masks/x_mask_0.png",
        "default/x.xml",
        "default/Masks/x.png_mask_0.png",
        "default/x.png.xml",
    ]


def _generated_frame(index: int) -> FrameAnnotations:
    return FrameAnnotations(
        FrameInfo(index, f"frame_{index:06d}.jpg", 160, 120),
        shapes=(
            Shape("rectangle", CAR.id, (index % 50, 10, 100, 120.5)),
            Shape("polygon", ROAD.id, (0, 0, 100, 0, 50, 80.25, 3, 4)),
            Shape("mask", BLOB.id, MASK),
        ),
    )


def _peak_memory(count: int) -> int:
    return peak_memory(write_labelme, GeneratedDataset(TASK, count, _generated_frame))


def test_memory_stays_flat_as_frames_grow() -> None:
    _peak_memory(3)
    small, large = _peak_memory(30), _peak_memory(300)
    # the zip's directory grows by a few hundred bytes a member; nothing else does
    assert large < small * 1.3 + (1 << 20), (small, large)
