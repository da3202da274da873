"""COCO 1.0 and COCO Keypoints 1.0 import: round trips through our writers (the datasets of
the writers' tests), files as pycocotools and detectors make them, and hostile uploads."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from pycocotools import mask as mask_utils

from tessera.export.formats.coco import write_coco, write_coco_keypoints
from tessera.export.imports.files import ImportFailed, files_of
from tessera.export.imports.formats.coco import read_coco, read_coco_keypoints
from tessera.export.imports.model import ParsedAnnotations, ParsedShape
from tessera.geometry import cvat_mask_to_array, ellipse_to_mask, polygons_to_mask

from ..formats.support import export_files
from ..formats.test_coco import BLOB_POINTS, SMALL_POINTS, H, W, dataset
from .support import zipped

CAR_DEFAULTS = {"model": "sedan", "parked": "false", "speed": "0.0"}


def read(
    data: bytes, filename: str, tmp_path: Path, *, keypoints: bool = False
) -> ParsedAnnotations:
    """The upload `data` named `filename`, read as COCO (Keypoints)."""
    with files_of(data, filename, tmp_path) as files:
        return read_coco_keypoints(files) if keypoints else read_coco(files)


def read_json(document: Any, tmp_path: Path, **kwargs: Any) -> ParsedAnnotations:
    """One COCO document, uploaded as a zip's `annotations/instances_default.json`."""
    member = (
        "annotations/person_keypoints_default.json"
        if kwargs.get("keypoints")
        else ("annotations/instances_default.json")
    )
    return read(zipped({member: orjson.dumps(document)}), "coco.zip", tmp_path, **kwargs)


def row(shape: ParsedShape) -> tuple[Any, ...]:
    """What a shape is, masks aside: frame, type, label, points, group, flags, attributes."""
    points = None if shape.type == "mask" else shape.points
    return (
        shape.frame, shape.type, shape.label, points, shape.group, shape.occluded,
        shape.rotation, shape.attributes, shape.score,
    )  # fmt: skip


def pixels(shape: ParsedShape, h: int = H, w: int = W) -> np.ndarray:
    """A mask shape's pixels on an h x w frame."""
    assert shape.type == "mask"
    return cvat_mask_to_array(shape.points, h, w)


# --- round trips -----------------------------------------------------------------------------


def test_instances_round_trip(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_coco, dataset()))
    parsed = read(zipped(files), "task.zip", tmp_path)
    # categories by id; the skeleton's points (supercategory "person") are not labels
    assert parsed.labels == ["car", "road", "blob", "person", "tree", "sign", "lane"]
    suv = {"model": "suv", "parked": "false", "speed": "42.0"}
    polygon_a, polygon_b = [2.0, 2.0, 10.0, 2.0, 6.0, 9.0], [12.0, 2.0, 18.0, 2.0, 15.0, 6.0]
    assert [row(shape) for shape in parsed.shapes] == [
        ("images/0.jpg", "rectangle", "car", [2.5, 3.25, 12.75, 9.5], 0, False, 0.0, suv, None),
        ("images/0.jpg", "rectangle", "car", [20, 2, 30, 8], 0, True, 30.5, CAR_DEFAULTS, None),
        # the writer rounds polygons to 2 decimals, as datumaro does
        ("images/0.jpg", "polygon", "road", [1, 13, 14.5, 13, 8, 24.12], 0, False, 0.0, {}, None),
        ("images/0.jpg", "mask", "blob", None, 0, False, 0.0, {}, None),
        ("images/0.jpg", "mask", "tree", None, 0, False, 0.0, {}, None),  # the ellipse
        ("images/1.png", "rectangle", "car", [1, 20, 6, 25], 0, False, 0.0, CAR_DEFAULTS, 0.87),
        # the parts of one instance share a group
        ("images/1.png", "polygon", "road", polygon_a, 1, False, 0.0, {}, None),
        ("images/1.png", "polygon", "road", polygon_b, 1, False, 0.0, {}, None),
        ("images/1.png", "mask", "blob", None, 0, False, 0.0, {}, None),
        # the box grouped with a skeleton: alone in COCO, so no group
        ("images/1.png", "rectangle", "car", [4, 10, 16, 19], 0, False, 0.0, CAR_DEFAULTS, None),
        ("images/2.jpg", "rectangle", "car", [0, 0, 4, 4], 0, False, 0.0, CAR_DEFAULTS, None),
        ("images/2.jpg", "polygon", "road", [30, 20, 38, 20, 34, 28], 0, False, 0.0, {}, None),
    ]
    blob, tree, merged = (shape for shape in parsed.shapes if shape.type == "mask")
    assert blob.points == BLOB_POINTS  # CVAT's layout, exactly as stored
    np.testing.assert_array_equal(pixels(tree), ellipse_to_mask([32, 22, 37, 19], H, W))
    square = polygons_to_mask([[20, 14, 30, 14, 30, 24, 20, 24]], H, W)
    np.testing.assert_array_equal(pixels(merged), square | cvat_mask_to_array(SMALL_POINTS, H, W))
    # a frame of a track (CVAT writes track_id and keyframe) comes back as a track
    [track] = parsed.tracks
    assert (track.label, track.group, track.elements) == ("car", 0, [])
    [frame] = track.shapes
    assert (frame.frame, frame.type, frame.points) == ("images/2.jpg", "rectangle", [5, 5, 15, 12])
    assert (frame.keyframe, frame.outside, frame.attributes) == (False, False, CAR_DEFAULTS)
    assert parsed.tags == []
    assert parsed.frame_names == {}


def test_keypoints_round_trip(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_coco_keypoints, dataset()))
    parsed = read(zipped(files), "task.zip", tmp_path, keypoints=True)
    assert parsed.labels == ["car", "road", "blob", "person", "tree", "sign", "lane"]
    first, grouped = parsed.shapes
    assert (first.frame, first.type, first.label, first.points) == (
        "images/0.jpg",
        "skeleton",
        "person",
        [],
    )
    # the category's keypoint order (the svg's), v 0 outside and 1 occluded
    assert [(e.label, e.points, e.outside, e.occluded) for e in first.elements] == [
        ("nose", [10, 5], False, False),
        ("right", [12, 7], True, False),
        ("left", [8, 7], False, True),
    ]
    assert all(e.frame == "images/0.jpg" and e.group == 0 for e in first.elements)
    # a skeleton grouped with a box is written under the box's category, which names no
    # keypoints: its points cannot be named (CVAT fails here), the matcher reports the rest
    assert (grouped.frame, grouped.type, grouped.label, grouped.elements) == (
        "images/1.png",
        "skeleton",
        "car",
        [],
    )
    [track] = parsed.tracks
    assert (track.label, [(s.frame, s.type, s.keyframe) for s in track.shapes]) == (
        "person",
        [("images/2.jpg", "skeleton", True)],
    )
    # each point of a skeleton track is a track of its own, keyframe as the skeleton's
    assert [
        (e.label, [(s.frame, s.points, s.outside, s.keyframe) for s in e.shapes])
        for e in track.elements
    ] == [
        ("nose", [("images/2.jpg", [20, 10], False, True)]),
        ("right", [("images/2.jpg", [22, 12], False, True)]),
        ("left", [("images/2.jpg", [18, 12], True, True)]),
    ]


def test_a_keypoints_export_is_not_a_coco_upload(tmp_path: Path) -> None:
    files = asyncio.run(export_files(write_coco_keypoints, dataset()))
    with pytest.raises(ImportFailed, match=r"not a COCO 1\.0 upload: no annotations/instances_"):
        read(zipped(files), "task.zip", tmp_path)


# --- files made by other tools ---------------------------------------------------------------

IMAGES = [
    {"id": 10, "file_name": "street/a.png", "width": 30, "height": 20},
    {"id": 11, "file_name": "b.png", "width": 30, "height": 20},
]
CATEGORIES = [
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 1, "name": "person", "supercategory": "person"},
]


def crowd_mask() -> np.ndarray:
    mask = np.zeros((20, 30), np.uint8)
    mask[5:9, 10:16] = 1
    mask[12, 3] = 1
    return mask


def pycocotools_document() -> dict[str, Any]:
    """Detections (boxes with scores, no ids: a results file wrapped with its images and
    categories) and ground truth with a compressed RLE from pycocotools and a polygon of two
    parts."""
    rle = mask_utils.encode(np.asfortranarray(crowd_mask()))
    return {
        "images": IMAGES,
        "categories": CATEGORIES,
        "annotations": [
            {"image_id": 10, "category_id": 3, "bbox": [1.5, 2.25, 10, 5], "score": 0.913},
            {"image_id": 10, "category_id": 1, "bbox": [0, 0, 3, 4.5], "score": 0.2},
            {
                "id": 7,
                "image_id": 11,
                "category_id": 1,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                "area": float(mask_utils.area(rle)),
                "bbox": mask_utils.toBbox(rle).tolist(),
                "iscrowd": 1,
            },
            {
                "id": 8,
                "image_id": 11,
                "category_id": 3,
                "segmentation": [[1, 1, 5, 1, 3, 4], [10.5, 10, 14, 10, 12, 13.25]],
                "area": 20.0,
                "bbox": [1, 1, 13, 12.25],
                "iscrowd": 0,
            },
        ],
    }


def test_a_pycocotools_file(tmp_path: Path) -> None:
    parsed = read_json(pycocotools_document(), tmp_path)
    assert parsed.labels == ["person", "car"]  # by category id; supercategories are no labels
    assert [row(shape) for shape in parsed.shapes] == [
        ("street/a.png", "rectangle", "car", [1.5, 2.25, 11.5, 7.25], 0, False, 0.0, {}, 0.913),
        ("street/a.png", "rectangle", "person", [0, 0, 3, 4.5], 0, False, 0.0, {}, 0.2),
        ("b.png", "mask", "person", None, 0, False, 0.0, {}, None),
        ("b.png", "polygon", "car", [1, 1, 5, 1, 3, 4], 1, False, 0.0, {}, None),
        ("b.png", "polygon", "car", [10.5, 10, 14, 10, 12, 13.25], 1, False, 0.0, {}, None),
    ]
    assert all(shape.source == "file" for shape in parsed.shapes)  # a score alone is no model
    np.testing.assert_array_equal(pixels(parsed.shapes[2], 20, 30), crowd_mask().astype(bool))
    assert parsed.tracks == []


def test_a_bare_json_file(tmp_path: Path) -> None:
    parsed = read(orjson.dumps(pycocotools_document()), "detections.json", tmp_path)
    assert len(parsed.shapes) == 5
    assert parsed.shapes[0].frame == "street/a.png"


def test_every_subset_file_is_read(tmp_path: Path) -> None:
    def document(image: dict[str, Any], box: list[float]) -> bytes:
        annotation = {"id": 1, "image_id": image["id"], "category_id": 3, "bbox": box}
        return orjson.dumps(
            {"images": [image], "categories": CATEGORIES, "annotations": [annotation]}
        )

    upload = zipped({
        "annotations/instances_train.json": document(IMAGES[0], [0, 0, 1, 1]),
        "annotations/instances_val.json": document(IMAGES[1], [2, 2, 1, 1]),
        "annotations/person_keypoints_val.json": b"not read",
        "images/train/a.png": b"",
    })  # fmt: skip
    parsed = read(upload, "coco.zip", tmp_path)
    assert [(s.frame, s.points) for s in parsed.shapes] == [
        ("street/a.png", [0, 0, 1, 1]),
        ("b.png", [2, 2, 3, 3]),
    ]
    assert parsed.labels == ["person", "car"]


def test_keypoints_with_a_segmentation(tmp_path: Path) -> None:
    document = {
        "images": IMAGES,
        "categories": [
            {"id": 1, "name": "person", "keypoints": ["nose", "eye"], "skeleton": [[1, 2]]},
        ],
        "annotations": [
            {
                "id": 4,
                "image_id": 10,
                "category_id": 1,
                "keypoints": [5, 6, 2, 7.5, 8, 1],
                "num_keypoints": 2,
                "segmentation": [[0, 0, 10, 0, 10, 10]],
                "bbox": [0, 0, 10, 10],
                "iscrowd": 0,
                "attributes": {"occluded": True, "pose": "standing"},
            },
            {  # a box and nothing else: CVAT drops every box of a keypoints file
                "id": 5,
                "image_id": 11,
                "category_id": 1,
                "keypoints": [],
                "bbox": [0, 0, 10, 10],
            },
        ],
    }
    parsed = read_json(document, tmp_path, keypoints=True)
    skeleton, polygon = parsed.shapes
    assert (skeleton.type, skeleton.group, skeleton.occluded, skeleton.attributes) == (
        "skeleton",
        1,
        True,
        {"pose": "standing"},
    )
    assert [(e.label, e.points, e.occluded, e.group) for e in skeleton.elements] == [
        ("nose", [5, 6], False, 1),
        ("eye", [7.5, 8], True, 1),
    ]
    assert (polygon.type, polygon.label, polygon.points, polygon.group) == (
        "polygon",
        "person",
        [0, 0, 10, 0, 10, 10],
        1,
    )


def test_attributes_fill_the_shape_fields(tmp_path: Path) -> None:
    def box(**attributes: Any) -> dict[str, Any]:
        return {"image_id": 10, "category_id": 3, "bbox": [0, 0, 2, 2], "attributes": attributes}

    document = {
        "images": IMAGES,
        "categories": CATEGORIES,
        "annotations": [
            box(occluded="True", rotation="45", source="auto", color="red", n=3, f=0.5, b=False),
            box(track_id=3, outside=True),  # no keyframe: not a track (CVAT's rule)
            box(track_id=3, keyframe=True, outside=True, empty=None),
        ],
    }
    parsed = read_json(document, tmp_path)
    first, untracked = parsed.shapes
    assert (first.occluded, first.rotation, first.source) == (True, 45.0, "auto")
    assert first.attributes == {"color": "red", "n": "3", "f": "0.5", "b": "false"}
    assert (untracked.outside, untracked.attributes) == (False, {})
    [track] = parsed.tracks
    assert [(s.outside, s.keyframe, s.attributes) for s in track.shapes] == [(True, True, {})]


def test_tracks_gather_their_frames_in_image_order(tmp_path: Path) -> None:
    images = [{"id": i, "file_name": f"{i}.jpg"} for i in (5, 2, 9)]

    def frame(image_id: int, x: float, keyframe: bool) -> dict[str, Any]:
        return {
            "image_id": image_id,
            "category_id": 3,
            "bbox": [x, 0, 1, 1],
            "attributes": {"track_id": 1, "keyframe": keyframe},
        }

    document = {
        "images": images,
        "categories": CATEGORIES,
        "annotations": [frame(9, 3, True), frame(5, 1, True), frame(2, 2, False)],
    }
    [track] = read_json(document, tmp_path).tracks
    assert [(s.frame, s.points[0], s.keyframe) for s in track.shapes] == [
        ("5.jpg", 1, True),
        ("2.jpg", 2, False),
        ("9.jpg", 3, True),
    ]


def test_an_empty_mask_is_skipped(tmp_path: Path) -> None:
    document = {
        "images": IMAGES,
        "categories": CATEGORIES,
        "annotations": [
            {"image_id": 10, "category_id": 3, "segmentation": {"size": [20, 30], "counts": [600]}}
        ],
    }
    assert read_json(document, tmp_path).shapes == []


def test_a_mask_on_a_huge_frame_is_not_decoded(tmp_path: Path) -> None:
    side = 60_000  # 3.6e9 pixels: a decoded frame would take gigabytes
    counts = [side * 100 + 40, 3, side - 3, 3, side * side - side * 101 - 43]
    document = {
        "images": [{"id": 1, "file_name": "big.tif", "width": side, "height": side}],
        "categories": CATEGORIES,
        "annotations": [
            {
                "image_id": 1,
                "category_id": 3,
                "segmentation": {"size": [side, side], "counts": counts},
            }
        ],
    }
    data = zipped({"annotations/instances_default.json": orjson.dumps(document)})
    read(data, "warm.zip", tmp_path)  # compile the kernels first
    tracemalloc.start()
    try:
        [mask] = read(data, "big.zip", tmp_path).shapes
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak
    assert mask.points == [0, 6, 100, 40, 101, 42]  # a 3 x 2 box at column 100, row 40


# --- hostile and wrong uploads ---------------------------------------------------------------


def annotation(**fields: Any) -> dict[str, Any]:
    return {"id": 1, "image_id": 10, "category_id": 3, "bbox": [0, 0, 1, 1], **fields}


def with_annotation(**fields: Any) -> dict[str, Any]:
    return {"images": IMAGES, "categories": CATEGORIES, "annotations": [annotation(**fields)]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            with_annotation(bbox=[0, "1", 2, 3]),
            r"annotation 0 \(id 1\): bbox must hold numbers only",
        ),
        (with_annotation(bbox=[0, True, 2, 3]), r"bbox must hold numbers only, not a boolean"),
        (with_annotation(bbox=[0, 1, 2]), r"bbox must be \[x, y, w, h\], not 3 numbers"),
        (with_annotation(bbox=None), r"bbox must be an array, not null"),
        (with_annotation(image_id=99), r"image id 99 is not among the file's images"),
        (with_annotation(category_id=0), r"category id 0 is not among the file's categories"),
        (with_annotation(image_id="10"), r"image_id must be an integer, not a string"),
        (with_annotation(segmentation=[[0, 0, 5, 0, 5]]), r"polygon 0 must hold x, y pairs"),
        (with_annotation(segmentation=[[0, 0, 5, 0]]), r"polygon 0 must hold at least 3 points"),
        (with_annotation(segmentation="x"), r"segmentation must be an array or an object"),
        (
            with_annotation(segmentation={"size": [20, 30], "counts": [1, 2, 3]}),
            r"counts'\] cover 6 pixels, but size 20x30 has 600",
        ),
        (
            with_annotation(segmentation={"size": [20, 30], "counts": "Z1{"}),
            r"segmentation RLE: rle\['counts'\]",
        ),
        (
            with_annotation(segmentation={"size": [10, 60], "counts": [600]}),
            r"segmentation RLE is 10x60 \(h x w\) but its image is 20x30",
        ),
        (with_annotation(segmentation={"counts": [600]}), r"has no 'size'"),
        (with_annotation(attributes=["occluded"]), r"attributes must be an object, not an array"),
        (with_annotation(attributes={"a": [1]}), r"attribute 'a' must be a string, number or"),
        (with_annotation(attributes={"rotation": "left"}), r"'rotation' must be a number"),
        (with_annotation(score="high"), r"score must be a number, not a string"),
        ({"categories": CATEGORIES, "annotations": []}, r"has no 'images' list: it is not a COCO"),
        ({"images": IMAGES, "categories": CATEGORIES}, r"has no 'annotations' list"),
        ({"images": {}, "categories": [], "annotations": []}, r"'images' must be an array"),
        ([annotation()], r"must hold a JSON object with categories, images, annotations, not an"),
        (
            {"images": [*IMAGES, IMAGES[0]], "categories": CATEGORIES, "annotations": []},
            r"image id 10 is listed twice",
        ),
        (
            {"images": IMAGES, "categories": [*CATEGORIES, CATEGORIES[0]], "annotations": []},
            r"category id 3 is declared twice",
        ),
        (
            {"images": [{"id": 1}], "categories": [], "annotations": []},
            r"image 0: has no 'file_name'",
        ),
        (
            {"images": [], "categories": [{"id": 1}], "annotations": []},
            r"category 0: has no 'name'",
        ),
    ],
)
def test_wrong_documents_fail_naming_file_and_problem(
    tmp_path: Path, document: Any, message: str
) -> None:
    with pytest.raises(ImportFailed, match=message) as failure:
        read_json(document, tmp_path)
    assert str(failure.value).startswith("annotations/instances_default.json")


@pytest.mark.parametrize(
    ("keypoints", "message"),
    [
        ([1, 2, 2, 3], r"keypoints must be x, y, v triplets, not 4 numbers"),
        ([1, 2, 3], r"point visibility must be 0, 1 or 2, not 3\.0"),
        ([1, "2", 2], r"keypoints must hold numbers only"),
        ({"x": 1}, r"keypoints must be an array, not an object"),
    ],
)
def test_wrong_keypoints_fail(tmp_path: Path, keypoints: Any, message: str) -> None:
    document = {
        "images": IMAGES,
        "categories": [{"id": 3, "name": "person", "keypoints": ["nose", "eye"]}],
        "annotations": [annotation(keypoints=keypoints)],
    }
    with pytest.raises(ImportFailed, match=message):
        read_json(document, tmp_path, keypoints=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"images": [', r"instances_default\.json is not valid JSON"),
        (b'{"images": [], "annotations": [{"bbox": [1e999, 0, 1, 1]}]}', r"is not valid JSON"),
        (b'{"images": [], "annotations": [{"bbox": [NaN, 0, 1, 1]}]}', r"is not valid JSON"),
    ],
)
def test_malformed_json_fails(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(ImportFailed, match=message):
        read(zipped({"annotations/instances_default.json": data}), "coco.zip", tmp_path)


def test_an_upload_without_coco_files_fails(tmp_path: Path) -> None:
    upload = zipped({"images/a.jpg": b"", "labels/a.txt": b"0 0.5 0.5 1 1"})
    with pytest.raises(ImportFailed, match=r"not a COCO 1\.0 upload: no annotations/instances_"):
        read(upload, "yolo.zip", tmp_path)
    with pytest.raises(ImportFailed, match=r"not a COCO Keypoints 1\.0 upload: no annotations/"):
        read(upload, "yolo.zip", tmp_path, keypoints=True)
    with pytest.raises(ImportFailed, match=r"not a COCO 1\.0 upload"):
        read(b"<annotations/>", "annotations.xml", tmp_path)
