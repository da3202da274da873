"""Datumaro 1.0: the JSON CVAT writes (expected values written by hand from CVAT's bindings
and its datumaro fork's converter), datumaro as an independent reader, and flat memory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import datumaro as dm  # type: ignore[import-untyped]
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tessera.export.formats import datumaro as writer
from tessera.export.formats.datumaro import write_datumaro
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
    GeneratedDataset,
    export_files,
    import_with_datumaro,
    label_and_type_counts,
    label_names,
    peak_memory,
)

SVG = (
    '<line x1="10" y1="20" x2="30" y2="40" data-type="edge" data-node-from="1" data-node-to="2">'
    '</line><circle r="1.5" cx="10" cy="20" data-type="element node" data-element-id="1" '
    'data-node-id="1" data-label-id="9" data-label-name="head"></circle><circle r="1.5" '
    'cx="30" cy="40" data-type="element node" data-element-id="2" data-node-id="2" '
    'data-label-id="10" data-label-name="hand"></circle>'
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
    ),
)
ROAD = Label(2, "road", "polygon", "#00ff00")
LANE = Label(3, "lane", "polyline", "#0000ff")
WHEEL = Label(4, "wheel", "points", "#ffff00")
SIGN = Label(
    5, "sign", "ellipse", "#00ffff", (AttributeSpec(6, "kind", "text", False, (), "stop"),)
)
CRATE = Label(6, "crate", "cuboid", "#ff00ff")
BLOB = Label(7, "blob", "mask", "#808080")
HEAD = Label(
    9,
    "head",
    "points",
    "#aaaaaa",
    (AttributeSpec(8, "eye", "radio", False, ("open", "shut"), "open"),),
    parent_id=8,
)
HAND = Label(10, "hand", "points", "#bbbbbb", parent_id=8)
PERSON = Label(8, "person", "skeleton", "#123456", sublabels=(HEAD, HAND), svg=SVG)
WEATHER = Label(
    11,
    "weather",
    "tag",
    "#abcdef",
    (AttributeSpec(7, "sky", "select", False, ("sunny",), "sunny"),),
)

TASK = TaskInfo(
    id=7,
    name="streets",
    mode="annotation",
    dimension="2d",
    size=4,
    labels=(CAR, ROAD, LANE, WHEEL, SIGN, CRATE, BLOB, WEATHER, PERSON),
)

# a 3x2 mask at (10, 20): rows 011 / 110, runs 1 (0s), 4 (1s), 1 (0s)
MASK = (1, 4, 1, 10, 20, 12, 21)

FRAME_0 = FrameAnnotations(
    FrameInfo(0, "dir/img0.jpg", 64, 48),
    shapes=(
        Shape(
            "skeleton",
            PERSON.id,
            (),
            z_order=2,
            elements=(
                Shape("points", HEAD.id, (30, 40), occluded=True, attributes={"eye": "shut"}),
                Shape("points", HAND.id, (50, 60), outside=True),
            ),
        ),
        Shape(
            "rectangle",
            CAR.id,
            (10, 20, 30.333, 40.005),
            rotation=30.5,
            occluded=True,
            z_order=1,
            group=5,
            attributes={"model": "suv", "parked": "true", "speed": "42.5"},
        ),
        Shape("polygon", ROAD.id, (0, 0, 10, 0.004, 5, 8.125), group=5),
        Shape("polyline", LANE.id, (1, 2, 3, 4)),
        Shape("points", WHEEL.id, (5.5, 6.25, 7, 8)),
        Shape("ellipse", SIGN.id, (20, 15, 23, 13), attributes={"kind": "yield"}),
        Shape("cuboid", CRATE.id, tuple(float(v) for v in range(1, 17))),
        Shape("mask", BLOB.id, MASK),
    ),
    tags=(Tag(WEATHER.id), Tag(WEATHER.id, group=3, attributes={"sky": "sunny"})),
)
FRAME_1 = FrameAnnotations(FrameInfo(1, "img1.png", 64, 48))
FRAME_2 = FrameAnnotations(
    FrameInfo(2, "img2.jpg", 64, 48),
    shapes=(
        Shape("rectangle", CAR.id, (1, 1, 2, 2), track_id=4, keyframe=False),
        Shape("rectangle", CAR.id, (5, 5, 9, 9), track_id=1, outside=True),
        Shape("rectangle", CAR.id, (3, 3, 4, 4)),
        Shape(
            "skeleton",
            PERSON.id,
            (),
            track_id=3,
            keyframe=False,
            elements=(
                Shape("points", HEAD.id, (31, 41), track_id=3, keyframe=True),
                Shape("points", HAND.id, (0, 0), track_id=3, keyframe=False, outside=True),
            ),
        ),
    ),
)
DATASET = InMemoryDataset(TASK, (FRAME_0, FRAME_1, FRAME_2))


def _ann(type_: str, label_id: int, attributes: dict[str, Any], **rest: Any) -> dict[str, Any]:
    group = rest.pop("group", 0)
    return {
        "id": 0,
        "type": type_,
        "attributes": attributes,
        "group": group,
        "label_id": label_id,
        **rest,
    }


CAR_DEFAULTS = {"model": "sedan", "parked": False, "speed": 0.0}
MASK_RLE = mask_utils.encode(
    np.asfortranarray(
        np.pad(np.array([[0, 1, 1], [1, 1, 0]], np.uint8), ((20, 48 - 22), (10, 64 - 13)))
    )
)
# label indices by label id: car 0, road 1, lane 2, wheel 3, sign 4, crate 5, blob 6,
# person 7, head 8, hand 9, weather 10
EXPECTED: dict[str, Any] = {
    "info": {},
    "categories": {
        "label": {
            "labels": [
                {"name": name, "parent": parent, "attributes": []}
                for name, parent in [
                    ("car", ""),
                    ("road", ""),
                    ("lane", ""),
                    ("wheel", ""),
                    ("sign", ""),
                    ("crate", ""),
                    ("blob", ""),
                    ("person", ""),
                    ("head", "person"),
                    ("hand", "person"),
                    ("weather", ""),
                ]
            ],
            "attributes": ["eye", "kind", "model", "occluded", "parked", "sky", "speed"],
        },
        "points": {"items": [{"label_id": 7, "labels": ["head", "hand"], "joints": [[1, 2]]}]},
    },
    "items": [
        {
            "id": "dir/img0",
            "annotations": [
                _ann("label", 10, {"sky": "sunny"}),
                _ann("label", 10, {"sky": "sunny"}, group=3),
                _ann(
                    "polygon",
                    1,
                    {"occluded": False},
                    group=5,
                    points=[0.0, 0.0, 10.0, 0.0, 5.0, 8.12],
                    z_order=0,
                ),
                _ann("polyline", 2, {"occluded": False}, points=[1.0, 2.0, 3.0, 4.0], z_order=0),
                _ann(
                    "points",
                    3,
                    {"occluded": False},
                    points=[5.5, 6.25, 7.0, 8.0],
                    z_order=0,
                    visibility=[2, 2],
                ),
                "ELLIPSE",
                _ann(
                    "mask",
                    6,
                    {"occluded": False},
                    rle={"counts": MASK_RLE["counts"].decode(), "size": [48, 64]},
                    z_order=0,
                ),
                _ann(
                    "bbox",
                    0,
                    {"model": "suv", "parked": True, "speed": 42.5}
                    | {"occluded": True, "rotation": 30.5},
                    group=5,
                    z_order=1,
                    # datumaro stores [x, y, x + w, y + h] rounded: 20 + 20.005... is 40.01
                    bbox=[10.0, 20.0, 30.33 - 10.0, 40.01 - 20.0],
                ),
                _ann(
                    "skeleton",
                    7,
                    {"occluded": False, "keyframe": False},
                    elements=[
                        _ann(
                            "points",
                            8,
                            {"eye": "shut"},
                            points=[30.0, 40.0],
                            z_order=0,
                            visibility=[1],
                        ),
                        _ann("points", 9, {}, points=[50.0, 60.0], z_order=0, visibility=[0]),
                    ],
                ),
            ],
            "attr": {"frame": 0},
            "point_cloud": {"path": ""},
        },
        {"id": "img1", "annotations": [], "attr": {"frame": 1}, "point_cloud": {"path": ""}},
        {
            "id": "img2",
            "annotations": [
                _ann(
                    "bbox",
                    0,
                    CAR_DEFAULTS | {"occluded": False, "rotation": 0.0},
                    z_order=0,
                    bbox=[3.0, 3.0, 1.0, 1.0],
                ),
                _ann(
                    "bbox",
                    0,
                    CAR_DEFAULTS
                    | {"occluded": False, "rotation": 0.0, "track_id": 4, "keyframe": False},
                    z_order=0,
                    bbox=[1.0, 1.0, 1.0, 1.0],
                ),
                _ann(
                    "skeleton",
                    7,
                    {"occluded": False, "track_id": 3, "keyframe": True},
                    elements=[
                        _ann(
                            "points",
                            8,
                            {"eye": "open", "track_id": 3, "keyframe": True},
                            points=[31.0, 41.0],
                            z_order=0,
                            visibility=[2],
                        ),
                        _ann(
                            "points",
                            9,
                            {"track_id": 3, "keyframe": False},
                            points=[0.0, 0.0],
                            z_order=0,
                            visibility=[0],
                        ),
                    ],
                ),
            ],
            "attr": {"frame": 2},
            "point_cloud": {"path": ""},
        },
    ],
}


async def _export(dataset: Any, options: ExportOptions | None = None) -> dict[str, bytes]:
    return await export_files(write_datumaro, dataset, options)


def test_json_is_what_cvat_writes() -> None:
    files = asyncio.run(_export(DATASET))
    assert list(files) == ["annotations/default.json"]
    raw = files["annotations/default.json"]
    data = json.loads(raw)
    assert list(data) == ["info", "categories", "items"]
    ellipse = data["items"][0]["annotations"][5]
    # the ellipse is a mask of the pixels whose centres lie in it (rx 3, ry 2 about 20, 15)
    assert {k: v for k, v in ellipse.items() if k != "rle"} == {
        "id": 0,
        "type": "mask",
        "attributes": {"kind": "yield", "occluded": False},
        "group": 0,
        "label_id": 4,
        "z_order": 0,
    }
    pixels = mask_utils.decode({"size": ellipse["rle"]["size"], "counts": ellipse["rle"]["counts"]})
    ys, xs = np.nonzero(pixels)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (17, 22, 13, 16)
    expected = json.loads(json.dumps(EXPECTED))
    expected["items"][0]["annotations"][5] = ellipse
    assert data == expected
    # key order is datumaro's too
    assert raw == json.dumps(expected, separators=(",", ":")).encode()


def _without_skeletons(content: bytes) -> tuple[bytes, list[dict[str, Any]]]:
    """The file without its skeleton annotations, and those: `skeleton` is a type of CVAT's
    datumaro fork only, which datumaro 1.13 cannot read."""
    data = json.loads(content)
    skeletons = []
    for item in data["items"]:
        skeletons += [ann for ann in item["annotations"] if ann["type"] == "skeleton"]
        item["annotations"] = [ann for ann in item["annotations"] if ann["type"] != "skeleton"]
    return json.dumps(data).encode(), skeletons


def test_datumaro_reads_it_back(tmp_path: Path) -> None:
    files = asyncio.run(_export(DATASET))
    content, skeletons = _without_skeletons(files["annotations/default.json"])
    dataset = import_with_datumaro({"annotations/default.json": content}, tmp_path, "datumaro")
    labels = dataset.categories()[dm.AnnotationType.label]
    names = label_names(dataset)
    assert names == [
        "car", "road", "lane", "wheel", "sign", "crate", "blob", "person", "head", "hand",
        "weather",
    ]  # fmt: skip
    assert labels.items[8].parent == "person"
    points = dataset.categories()[dm.AnnotationType.points]
    assert points[7].labels == ["head", "hand"]
    assert points[7].joints == {(1, 2)}
    items = {item.id: item for item in dataset}
    assert set(items) == {"dir/img0", "img1", "img2"}
    assert {item.attributes["frame"] for item in dataset} == {0, 1, 2}
    counts = label_and_type_counts(dataset)
    assert counts == {
        ("weather", "label"): 2,
        ("road", "polygon"): 1,
        ("lane", "polyline"): 1,
        ("wheel", "points"): 1,
        ("sign", "mask"): 1,
        ("blob", "mask"): 1,
        ("car", "bbox"): 3,
    }
    assert [(names[s["label_id"]], len(s["elements"])) for s in skeletons] == [("person", 2)] * 2
    assert items["img1"].annotations == []
    first = {ann.type.name + names[ann.label]: ann for ann in items["dir/img0"].annotations}
    box = first["bboxcar"]
    assert box.get_bbox() == pytest.approx([10, 20, 20.33, 20.01])
    assert box.attributes == {
        "model": "suv",
        "parked": True,
        "speed": 42.5,
        "occluded": True,
        "rotation": 30.5,
    }
    assert box.group == first["polygonroad"].group == 5
    assert box.z_order == 1
    assert first["polygonroad"].points == pytest.approx([0, 0, 10, 0, 5, 8.12])
    assert first["polylinelane"].points == pytest.approx([1, 2, 3, 4])
    assert first["pointswheel"].points == pytest.approx([5.5, 6.25, 7, 8])
    assert first["masksign"].attributes == {"kind": "yield", "occluded": False}
    blob = first["maskblob"].image
    assert blob.shape == (48, 64)
    assert np.array_equal(np.argwhere(blob), [[20, 11], [20, 12], [21, 10], [21, 11]])
    tracked = [ann for ann in items["img2"].annotations if "track_id" in ann.attributes]
    assert [(ann.attributes["track_id"], ann.attributes["keyframe"]) for ann in tracked] == [
        (4, False)
    ]


def test_subsets_annotated_only_and_empty() -> None:
    frames = (
        FrameAnnotations(FrameInfo(0, "a.jpg", 8, 8, "train"), tags=(Tag(WEATHER.id),)),
        FrameAnnotations(FrameInfo(1, "b.jpg", 8, 8, "test"), tags=(Tag(WEATHER.id),)),
        FrameAnnotations(FrameInfo(2, "c.jpg", 8, 8, "train")),
    )
    files = asyncio.run(_export(InMemoryDataset(TASK, frames), ExportOptions(annotated_only=True)))
    assert list(files) == ["annotations/train.json", "annotations/test.json"]
    assert [item["id"] for item in json.loads(files["annotations/train.json"])["items"]] == ["a"]
    empty = asyncio.run(_export(InMemoryDataset(TASK, ())))
    assert list(empty) == ["annotations/default.json"]
    assert json.loads(empty["annotations/default.json"])["items"] == []


def _generated_frame(index: int) -> FrameAnnotations:
    return FrameAnnotations(
        FrameInfo(index, f"frame_{index:06d}.jpg", 640, 480),
        shapes=(
            Shape("rectangle", CAR.id, (index % 50, 10, 100, 120.5)),
            Shape("polygon", ROAD.id, (0, 0, 100, 0, 50, 80.25, 3, 4)),
            Shape("mask", BLOB.id, MASK),
        ),
    )


def _peak_memory(count: int) -> int:
    return peak_memory(write_datumaro, GeneratedDataset(TASK, count, _generated_frame))


def test_memory_stays_flat_as_frames_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "_SPOOL_BYTES", 64 << 10)
    monkeypatch.setattr(writer, "_COPY_BYTES", 16 << 10)
    _peak_memory(20)
    small, large = _peak_memory(300), _peak_memory(3000)
    assert large < small * 1.3 + (1 << 20), (small, large)
