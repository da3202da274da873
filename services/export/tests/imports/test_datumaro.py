"""Datumaro 1.0 import: a round trip through our writer (the dataset of the writer's test),
files as CVAT's datumaro fork and upstream datumaro write them, and hostile uploads."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from tessera.export.formats.datumaro import write_datumaro
from tessera.export.imports.files import ImportFailed, files_of
from tessera.export.imports.formats.datumaro import read_datumaro
from tessera.export.imports.model import ParsedAnnotations, ParsedShape
from tessera.geometry import cvat_mask_to_array, ellipse_to_mask, encode

from ..formats.support import export_files
from ..formats.test_datumaro import DATASET, MASK
from .support import zipped

CAR_DEFAULTS = {"model": "sedan", "parked": "false", "speed": "0.0"}


def read(data: bytes, filename: str, tmp_path: Path) -> ParsedAnnotations:
    """The upload `data` named `filename`, read as Datumaro."""
    with files_of(data, filename, tmp_path) as files:
        return read_datumaro(files)


def read_json(document: Any, tmp_path: Path, member: str = "annotations/default.json") -> Any:
    """One Datumaro document, uploaded in a zip as `member`."""
    return read(zipped({member: orjson.dumps(document)}), "dataset.zip", tmp_path)


def row(shape: ParsedShape) -> tuple[Any, ...]:
    """What a shape is, masks aside."""
    points = None if shape.type == "mask" else shape.points
    return (
        shape.frame, shape.type, shape.label, points, shape.group, shape.occluded,
        shape.z_order, shape.rotation, shape.attributes,
    )  # fmt: skip


def test_round_trip(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_datumaro, DATASET))
    parsed = read(zipped(files), "task.zip", tmp_path)
    # labels without a parent, in the file's order (by label id)
    assert parsed.labels == [
        "car", "road", "lane", "wheel", "sign", "crate", "blob", "person", "weather",
    ]  # fmt: skip
    # items are named by id (no image: CVAT writes none), numbered by attr.frame
    assert parsed.frame_names == {0: "dir/img0", 1: "img1", 2: "img2"}
    suv = {"model": "suv", "parked": "true", "speed": "42.5"}
    assert [row(shape) for shape in parsed.shapes] == [
        # the road and the car share group 5, numbered 1 on their frame
        ("dir/img0", "polygon", "road", [0, 0, 10, 0, 5, 8.12], 1, False, 0, 0.0, {}),
        ("dir/img0", "polyline", "lane", [1, 2, 3, 4], 0, False, 0, 0.0, {}),
        ("dir/img0", "points", "wheel", [5.5, 6.25, 7, 8], 0, False, 0, 0.0, {}),
        ("dir/img0", "mask", "sign", None, 0, False, 0, 0.0, {"kind": "yield"}),  # the ellipse
        ("dir/img0", "mask", "blob", None, 0, False, 0, 0.0, {}),
        ("dir/img0", "rectangle", "car", [10, 20, 30.33, 40.01], 1, True, 1, 30.5, suv),
        ("dir/img0", "skeleton", "person", [], 0, False, 0, 0.0, {}),
        ("img2", "rectangle", "car", [3, 3, 4, 4], 0, False, 0, 0.0, CAR_DEFAULTS),
    ]
    sign, blob = (shape for shape in parsed.shapes if shape.type == "mask")
    np.testing.assert_array_equal(
        cvat_mask_to_array(sign.points, 48, 64), ellipse_to_mask([20, 15, 23, 13], 48, 64)
    )
    assert blob.points == list(MASK)  # CVAT's layout, exactly as stored
    skeleton = parsed.shapes[6]
    assert [
        (e.label, e.points, e.occluded, e.outside, e.attributes) for e in skeleton.elements
    ] == [
        ("head", [30, 40], True, False, {"eye": "shut"}),
        ("hand", [50, 60], False, True, {}),
    ]
    # a tag keeps its group only when shapes of its frame share it (CVAT's numbering)
    assert [(t.frame, t.label, t.group, t.attributes) for t in parsed.tags] == [
        ("dir/img0", "weather", 0, {"sky": "sunny"}),
        ("dir/img0", "weather", 0, {"sky": "sunny"}),
    ]
    box, person = parsed.tracks
    assert [(s.frame, s.points, s.keyframe, s.attributes) for s in box.shapes] == [
        ("img2", [1, 1, 2, 2], False, CAR_DEFAULTS)
    ]
    assert (person.label, [(s.frame, s.type, s.keyframe) for s in person.shapes]) == (
        "person",
        [("img2", "skeleton", True)],
    )
    # the points' own track_id and keyframe are bookkeeping, not attributes
    assert [
        (e.label, [(s.frame, s.points, s.outside, s.keyframe, s.attributes) for s in e.shapes])
        for e in person.elements
    ] == [
        ("head", [("img2", [31, 41], False, True, {"eye": "open"})]),
        ("hand", [("img2", [0, 0], True, True, {})]),
    ]


# --- files made by CVAT's fork and upstream datumaro -----------------------------------------

CATEGORIES = {
    "label": {
        "labels": [
            {"name": "car", "parent": "", "attributes": []},
            {"name": "person", "parent": "", "attributes": []},
            {"name": "nose", "parent": "person", "attributes": []},
            {"name": "tail", "parent": "person", "attributes": []},
            {"name": "sky", "parent": "", "attributes": []},
        ],
        "attributes": ["occluded"],
    },
    "points": {"items": [{"label_id": 1, "labels": ["nose", "tail"], "joints": [[1, 2]]}]},
}


def ann(type_: str, label_id: int | None, **rest: Any) -> dict[str, Any]:
    return {"id": 0, "type": type_, "attributes": {}, "group": 0, "label_id": label_id, **rest}


def test_a_file_with_images_skeleton_points_and_upstream_types(tmp_path: Path) -> None:
    rle = encode(np.pad(np.ones((2, 3), np.uint8), ((4, 4), (5, 2))))
    document = {
        "info": {},
        "categories": CATEGORIES,
        "items": [
            {
                "id": "street/000001",
                "annotations": [
                    # CVAT's fork writes skeletons as x, y, v triplets in the category's order
                    ann(
                        "skeleton",
                        1,
                        points=[1, 2, 2, 0, 0, 0],
                        points_attributes=[{"side": "left"}, {}],
                        attributes={"occluded": True, "track_id": 5, "keyframe": True},
                    ),
                    ann("ellipse", 0, points=[10, 20, 30, 26], z_order=2),
                    ann("cuboid_3d", 0, position=[1, 2, 3], rotation=[0, 0, 1.5], scale=[4, 5, 6]),
                    ann("mask", 0, rle={"counts": rle["counts"].decode(), "size": [10, 10]}),
                    ann("caption", None, caption="a street"),
                    ann("points", 1, points=[1, 1, 2, 2], visibility=[2, 0]),
                ],
                "image": {"path": "street/000001.png", "size": [10, 10]},
                "attr": {"frame": 7},
            },
            {"id": "b", "annotations": [ann("label", 4)], "image": {"path": ""}},
            {"id": 12, "annotations": [], "media": {"path": "x"}},
        ],
    }
    parsed = read_json(document, tmp_path, "export/annotations/train.json")
    assert parsed.labels == ["car", "person", "sky"]
    # with an image the ref takes its path's extension (datumaro's ".jpg" for an empty path)
    assert parsed.frame_names == {7: "street/000001.png"}
    assert [(t.frame, t.label) for t in parsed.tags] == [("b.jpg", "sky")]
    ellipse, cuboid, mask, points = parsed.shapes
    assert (ellipse.type, ellipse.points, ellipse.z_order) == ("ellipse", [20, 23, 30, 20], 2)
    assert (cuboid.type, cuboid.points) == ("cuboid", [1, 2, 3, 0, 0, 1.5, 4, 5, 6] + [0] * 7)
    assert mask.points == [0, 6, 5, 4, 7, 5]
    assert points.points == [1, 1, 2, 2]  # every point, as CVAT keeps them
    [track] = parsed.tracks
    [skeleton] = track.shapes
    assert (skeleton.frame, skeleton.occluded, skeleton.keyframe) == (
        "street/000001.png",
        True,
        True,
    )
    assert [
        (e.label, [(s.points, s.outside, s.attributes) for s in e.shapes]) for e in track.elements
    ] == [
        ("nose", [([1, 2], False, {"side": "left"})]),
        ("tail", [([0, 0], True, {})]),
    ]


def test_groups_are_numbered_per_frame_in_group_order(tmp_path: Path) -> None:
    box = ann("bbox", 0, bbox=[0, 0, 1, 1])
    document = {
        "categories": CATEGORIES,
        "items": [
            {
                "id": "a",
                "annotations": [
                    {**box, "group": 7},
                    {**box, "group": 3},
                    {**box, "group": 7},
                    {**box, "group": 9},
                    {**box, "group": 3},
                    {**ann("label", 4), "group": 7},
                ],
            },
            {"id": "b", "annotations": [{**box, "group": 7}, {**box, "group": 7}]},
        ],
    }
    parsed = read_json(document, tmp_path)
    assert [(s.frame, s.group) for s in parsed.shapes] == [
        ("a", 2), ("a", 1), ("a", 2), ("a", 0), ("a", 1), ("b", 1), ("b", 1),
    ]  # fmt: skip
    assert [t.group for t in parsed.tags] == [2]


def test_tracks_span_subset_files(tmp_path: Path) -> None:
    def item(name: str, x: float, keyframe: bool) -> dict[str, Any]:
        attributes = {"track_id": 1, "keyframe": keyframe, "occluded": False}
        box = ann("bbox", 0, bbox=[x, 0, 1, 1], attributes=attributes)
        return {"id": name, "annotations": [box]}

    train = {"categories": CATEGORIES, "items": [item("f0", 0, True), item("f1", 1, False)]}
    test = {"categories": CATEGORIES, "items": [item("f2", 2, True)]}
    upload = zipped({
        "annotations/train.json": orjson.dumps(train),
        "annotations/test.json": orjson.dumps(test),
    })  # fmt: skip
    [track] = read(upload, "dataset.zip", tmp_path).tracks
    assert [(s.frame, s.points[0], s.keyframe) for s in track.shapes] == [
        ("f0", 0, True),
        ("f1", 1, False),
        ("f2", 2, True),
    ]


def test_a_bare_json_file(tmp_path: Path) -> None:
    document = {"categories": CATEGORIES, "items": [{"id": "a", "annotations": [ann("label", 0)]}]}
    parsed = read(orjson.dumps(document), "default.json", tmp_path)
    assert [(t.frame, t.label) for t in parsed.tags] == [("a", "car")]


# --- hostile and wrong uploads ---------------------------------------------------------------


def with_annotation(annotation: Any) -> dict[str, Any]:
    return {"categories": CATEGORIES, "items": [{"id": "a", "annotations": [annotation]}]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"items": []}, r"default\.json: has no 'categories'"),
        ({"categories": {}}, r"default\.json: has no 'items'"),
        ({"categories": [], "items": []}, r"'categories' must be an object, not an array"),
        ([], r"must hold a JSON object with categories, items, not an array"),
        (
            {"categories": {"label": {"labels": [{"parent": ""}]}}, "items": []},
            r"label 0: has no 'name'",
        ),
        (
            {"categories": {"points": {"items": [{"label_id": 0, "labels": [1]}]}}, "items": []},
            r"points category 0: a point's name must be a string",
        ),
        ({"categories": CATEGORIES, "items": [{"annotations": []}]}, r"item 0: has no 'id'"),
        ({"categories": CATEGORIES, "items": [{"id": ["a"]}]}, r"item 0: its id must be a string"),
        (with_annotation(ann("bbox", 9, bbox=[0, 0, 1, 1])), r"label_id 9 is not among the file's"),
        (with_annotation(ann("bbox", None, bbox=[0, 0, 1, 1])), r"label_id must be an integer"),
        (with_annotation(ann("bbox", 0, bbox=[0, "0", 1, 1])), r"bbox must hold numbers only"),
        (with_annotation(ann("bbox", 0)), r"item 0 \('a'\): annotation 0: has no 'bbox'"),
        (with_annotation(ann("polygon", 0, points=[0, 0, 1, 1])), r"at least 3 points, not 2"),
        (with_annotation(ann("polyline", 0, points=[0, 0, 1])), r"must hold x, y pairs"),
        (with_annotation(ann("circle", 0)), r"type 'circle' is not an annotation type"),
        (
            with_annotation(ann("mask", 0, rle={"counts": "0", "size": [4, 4]})),
            r"rle: rle\['counts'\]",
        ),
        (
            with_annotation(ann("mask", 0, rle={"counts": [3, 4], "size": [4, 4]})),
            r"cover 7 pixels, but size 4x4 has 16",
        ),
        (with_annotation(ann("skeleton", 1, points=[1, 2, 2, 3])), r"x, y, v triplets"),
        (
            with_annotation(ann("skeleton", 1, points=[1, 2, 2], points_attributes=[])),
            r"1 points but 0 points_attributes entries",
        ),
        (
            with_annotation(ann("skeleton", 0, points=[1, 2, 2], points_attributes=[{}])),
            r"skeleton 'car' has no points category",
        ),
        (
            with_annotation(ann("skeleton", 1, elements=[ann("bbox", 2, bbox=[0, 0, 1, 1])])),
            r"element 0 must be of type 'points'",
        ),
        (
            with_annotation(ann("skeleton", 1, elements=[ann("points", 2, points=[1, 1, 2, 2])])),
            r"element 0 must hold one point, not 2",
        ),
        (
            with_annotation(
                ann("skeleton", 1, elements=[ann("points", 2, points=[1, 1], visibility=[7])])
            ),
            r"point visibility must be 0, 1 or 2, not 7\.0",
        ),
        (with_annotation(ann("label", 0, attributes=[])), r"attributes must be an object"),
        (with_annotation(ann("cuboid_3d", 0, position=[1, 2])), r"position must hold 3 numbers"),
        (with_annotation(ann("ellipse", 0, points=[1, 2])), r"points must hold 4 numbers"),
        (with_annotation(ann("label", 0, group="1")), r"group must be an integer"),
    ],
)
def test_wrong_documents_fail_naming_file_and_problem(
    tmp_path: Path, document: Any, message: str
) -> None:
    with pytest.raises(ImportFailed, match=message) as failure:
        read_json(document, tmp_path)
    assert str(failure.value).startswith("annotations/default.json")


def test_malformed_json_fails(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match=r"annotations/default\.json is not valid JSON"):
        read(zipped({"annotations/default.json": b'{"items": [1e999]}'}), "d.zip", tmp_path)


def test_an_upload_without_datumaro_files_fails(tmp_path: Path) -> None:
    upload = zipped({"images/a.jpg": b"", "default.json": b"{}", "x/instances_a.json": b"{}"})
    with pytest.raises(ImportFailed, match=r"not a Datumaro 1\.0 upload: no annotations/<subset>"):
        read(upload, "dataset.zip", tmp_path)
