"""COCO 1.0 and COCO Keypoints 1.0: golden files written by hand from CVAT's exporter
(cvat/apps/dataset_manager/bindings.py and the datumaro fork's coco_format/converter.py),
pycocotools and datumaro as independent readers, and the writer's streaming."""

from __future__ import annotations

import asyncio
import io
import json
import math
import tracemalloc
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datumaro as dm  # type: ignore[import-untyped]
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from tessera.export.formats import coco
from tessera.export.formats.coco import (
    ellipse_rle,
    mask_rle,
    round2,
    write_coco,
    write_coco_keypoints,
)
from tessera.export.model import (
    AttributeSpec,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    InMemoryDataset,
    Label,
    Shape,
    ShapeType,
    Source,
    Tag,
    TaskInfo,
)
from tessera.geometry import (
    array_to_cvat_mask,
    cvat_mask_to_array,
    decode,
    ellipse_to_mask,
    polygons_to_mask,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

H, W = 30, 40

SVG = (
    '<line x1="1" y1="1" x2="2" y2="2" data-type="edge" data-node-from="1" data-node-to="2">'
    '</line><line x1="1" y1="1" x2="3" y2="3" data-type="edge" data-node-from="1" '
    'data-node-to="3"></line><line x1="2" y1="2" x2="3" y2="3" data-type="edge" '
    'data-node-from="2" data-node-to="3"></line>'
    '<circle r="1" cx="1" cy="1" data-type="element node" data-element-id="1" '
    'data-node-id="1" data-label-id="5"></circle>'
    '<circle r="1" cx="2" cy="2" data-type="element node" data-element-id="2" '
    'data-node-id="2" data-label-id="7"></circle>'
    '<circle r="1" cx="3" cy="3" data-type="element node" data-element-id="3" '
    'data-node-id="3" data-label-id="6"></circle>'
)

CAR = Label(
    1,
    "car",
    "rectangle",
    "#ff0000",
    attributes=(
        AttributeSpec(11, "model", "select", False, ("sedan", "suv"), "sedan"),
        AttributeSpec(12, "parked", "checkbox", True, ("false",), "false"),
        AttributeSpec(13, "speed", "number", True, ("0", "200", "1"), "0"),
    ),
)
ROAD = Label(2, "road", "polygon", "#00ff00")
BLOB = Label(3, "blob", "mask", "#0000ff")
NOSE = Label(5, "nose", "points", "#111111", parent_id=4)
LEFT = Label(6, "left", "points", "#222222", parent_id=4)
RIGHT = Label(7, "right", "points", "#333333", parent_id=4)
PERSON = Label(4, "person", "skeleton", "#ffff00", sublabels=(NOSE, LEFT, RIGHT), svg=SVG)
TREE = Label(8, "tree", "ellipse", "#00ffff")
SIGN = Label(9, "sign", "tag", "#ff00ff")
LANE = Label(10, "lane", "polyline", "#888888")

# A blob: an 8 x 6 box at (22, 12) with its top-left pixel and a 3 x 2 hole left out.
BLOB_BOX = np.ones((6, 8), bool)
BLOB_BOX[0, 0] = False
BLOB_BOX[2:4, 2:5] = False
BLOB_POINTS = [1, 17, 3, 5, 3, 19, 22, 12, 29, 17]  # CVAT's layout of BLOB_BOX, by hand
SMALL_POINTS = [0, 9, 32, 20, 34, 22]  # a full 3 x 3 box at (32, 20)


def point(label: Label, x: float, y: float, **kwargs: Any) -> Shape:
    return Shape("points", label.id, [x, y], **kwargs)


def frames() -> list[FrameAnnotations]:
    return [
        FrameAnnotations(
            FrameInfo(0, "images/0.jpg", W, H),
            shapes=(
                Shape(
                    "rectangle",
                    1,
                    [2.5, 3.25, 12.75, 9.5],
                    attributes={"model": "suv", "speed": "42"},
                ),
                Shape("rectangle", 1, [20, 2, 30, 8], rotation=30.5, occluded=True),
                Shape("polygon", 2, [1.004, 12.996, 14.5, 13, 8, 24.125]),
                Shape("mask", 3, BLOB_POINTS),
                Shape("ellipse", 8, [32, 22, 37, 19]),
                Shape("polyline", 10, [0, 0, 10, 10, 20, 0]),
                Shape(
                    "skeleton",
                    4,
                    [],
                    elements=(
                        point(NOSE, 10, 5),
                        point(LEFT, 8, 7, occluded=True),
                        point(RIGHT, 12, 7, outside=True),
                    ),
                ),
            ),
            tags=(Tag(9),),
        ),
        FrameAnnotations(
            FrameInfo(1, "images/1.png", W, H),
            shapes=(
                Shape("polygon", 2, [2, 2, 10, 2, 6, 9], group=1),
                Shape("polygon", 2, [12, 2, 18, 2, 15, 6], group=1),
                Shape("polygon", 3, [20, 14, 30, 14, 30, 24, 20, 24], group=2),
                Shape("mask", 3, SMALL_POINTS, group=2),
                Shape("rectangle", 1, [1, 20, 6, 25], source="auto", score=0.87),
                Shape("rectangle", 1, [4, 10, 16, 19], group=3),
                Shape(
                    "skeleton",
                    4,
                    [],
                    group=3,
                    elements=(point(NOSE, 10, 12), point(LEFT, 6, 15), point(RIGHT, 14, 15)),
                ),
            ),
        ),
        FrameAnnotations(
            FrameInfo(2, "images/2.jpg", W, H),
            shapes=(
                Shape("polygon", 2, [30, 20, 38, 20, 34, 28], z_order=1),
                Shape("rectangle", 1, [5, 5, 15, 12], track_id=7, keyframe=False),
                Shape("rectangle", 1, [6, 6, 16, 13], track_id=8, outside=True),
                Shape("rectangle", 1, [0, 0, 4, 4]),
                Shape(
                    "skeleton",
                    4,
                    [],
                    track_id=9,
                    keyframe=False,
                    elements=(
                        point(NOSE, 20, 10, track_id=10, keyframe=True),
                        point(LEFT, 18, 12, track_id=11, keyframe=False, outside=True),
                        point(RIGHT, 22, 12, track_id=12, keyframe=False),
                    ),
                ),
            ),
        ),
        FrameAnnotations(FrameInfo(3, "images/3", W, H)),
    ]


TASK = TaskInfo(
    1, "coco", "annotation", "2d", 4, (TREE, CAR, ROAD, BLOB, PERSON, SIGN, LANE)
)  # labels out of id order: categories follow the ids


def dataset(items: list[FrameAnnotations] | None = None, task: TaskInfo = TASK) -> InMemoryDataset:
    return InMemoryDataset(task, frames() if items is None else items)


def export(
    ds: Any, options: ExportOptions | None = None, *, keypoints: bool = False
) -> zipfile.ZipFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        writer = write_coco_keypoints if keypoints else write_coco
        asyncio.run(writer(ds, archive, options or ExportOptions()))
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue()))


def member(archive: zipfile.ZipFile, name: str) -> Any:
    return json.loads(archive.read(name))


# --- golden files --------------------------------------------------------------------------

HEADER = {
    "licenses": [{"name": "", "id": 0, "url": ""}],
    "info": {
        "contributor": "",
        "date_created": "",
        "description": "",
        "url": "",
        "version": "",
        "year": "",
    },
}
IMAGES = [
    {
        "id": i + 1,
        "width": W,
        "height": H,
        "file_name": name,
        "license": 0,
        "flickr_url": "",
        "coco_url": "",
        "date_captured": 0,
    }
    for i, name in enumerate(["images/0.jpg", "images/1.png", "images/2.jpg", "images/3.jpg"])
]
CAR_ATTRS = {"model": "sedan", "parked": False, "speed": 0.0}

# Uncompressed counts computed with pycocotools from the pixels described (column-major
# runs over the 40 x 30 frame, starting with background).
BLOB_COUNTS = [
    673, 5, 24, 6, 24, 2, 2, 2, 24, 2, 2, 2, 24, 2, 2, 2, 24, 6, 24, 6, 24, 6, 312,
]  # fmt: skip
TREE_COUNTS = [
    831, 2, 27, 4, 25, 6, 24, 6, 24, 6, 24, 6, 24, 6, 24, 6, 25, 4, 27, 2, 97,
]  # fmt: skip
GROUP_COUNTS = [
    614, 10, 20, 10, 20, 10, 20, 10, 20, 10, 20, 10, 20, 10, 20, 10, 20, 10, 20, 10,
    86, 3, 27, 3, 27, 3, 157,
]  # fmt: skip
GOLDEN_INSTANCES = {
    **HEADER,
    "categories": [
        {"id": 1, "name": "car", "supercategory": ""},
        {"id": 2, "name": "road", "supercategory": ""},
        {"id": 3, "name": "blob", "supercategory": ""},
        {"id": 4, "name": "person", "supercategory": ""},
        {"id": 5, "name": "nose", "supercategory": "person"},
        {"id": 6, "name": "left", "supercategory": "person"},
        {"id": 7, "name": "right", "supercategory": "person"},
        {"id": 8, "name": "tree", "supercategory": ""},
        {"id": 9, "name": "sign", "supercategory": ""},
        {"id": 10, "name": "lane", "supercategory": ""},
    ],
    "images": IMAGES,
    "annotations": [
        # frame 0: a box (coordinates as given), a rotated box (unrotated, with its angle)
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "segmentation": [],
            "area": 64.0625,
            "bbox": [2.5, 3.25, 10.25, 6.25],
            "iscrowd": 0,
            "attributes": {
                "model": "suv",
                "parked": False,
                "speed": 42.0,
                "occluded": False,
                "rotation": 0.0,
            },
        },
        {
            "id": 2,
            "image_id": 1,
            "category_id": 1,
            "segmentation": [],
            "area": 60.0,
            "bbox": [20.0, 2.0, 10.0, 6.0],
            "iscrowd": 0,
            "attributes": {**CAR_ATTRS, "occluded": True, "rotation": 30.5},
        },
        # a polygon, rounded to 2 decimals (24.125 rounds half to even: 24.12)
        {
            "id": 3,
            "image_id": 1,
            "category_id": 2,
            "segmentation": [[1.0, 13.0, 14.5, 13.0, 8.0, 24.12]],
            "area": 74.0,
            "bbox": [1.0, 13.0, 13.5, 11.12],
            "iscrowd": 0,
            "attributes": {"occluded": False},
        },
        # a mask: an uncompressed RLE of the frame
        {
            "id": 4,
            "image_id": 1,
            "category_id": 3,
            "segmentation": {
                "counts": BLOB_COUNTS,
                "size": [H, W],
            },
            "area": 41.0,
            "bbox": [22.0, 12.0, 8.0, 6.0],
            "iscrowd": 1,
            "attributes": {"occluded": False},
        },
        # an ellipse becomes a mask (its pixels: centres inside, not CVAT's cv2 pixels)
        {
            "id": 5,
            "image_id": 1,
            "category_id": 8,
            "segmentation": {
                "counts": TREE_COUNTS,
                "size": [H, W],
            },
            "area": 48.0,
            "bbox": [27.0, 19.0, 10.0, 6.0],
            "iscrowd": 1,
            "attributes": {"occluded": False},
        },
        # frame 1: ungrouped first (the auto box keeps its score), then the groups
        {
            "id": 6,
            "image_id": 2,
            "category_id": 1,
            "segmentation": [],
            "area": 25.0,
            "bbox": [1.0, 20.0, 5.0, 5.0],
            "iscrowd": 0,
            "score": 0.87,
            "attributes": {**CAR_ATTRS, "occluded": False, "rotation": 0.0},
        },
        {
            "id": 7,
            "image_id": 2,
            "category_id": 2,
            "segmentation": [[2.0, 2.0, 10.0, 2.0, 6.0, 9.0], [12.0, 2.0, 18.0, 2.0, 15.0, 6.0]],
            "area": 40.0,
            "bbox": [2.0, 2.0, 16.0, 7.0],
            "iscrowd": 0,
            "attributes": {"occluded": False},
        },
        # a polygon (the larger part, so the leader) and a mask of its label: one RLE
        {
            "id": 8,
            "image_id": 2,
            "category_id": 3,
            "segmentation": {
                "counts": GROUP_COUNTS,
                "size": [H, W],
            },
            "area": 109.0,
            "bbox": [20.0, 14.0, 15.0, 10.0],
            "iscrowd": 1,
            "attributes": {"occluded": False},
        },
        {
            "id": 9,
            "image_id": 2,
            "category_id": 1,
            "segmentation": [],
            "area": 108.0,
            "bbox": [4.0, 10.0, 12.0, 9.0],
            "iscrowd": 0,
            "attributes": {**CAR_ATTRS, "occluded": False, "rotation": 0.0},
        },
        # frame 2: z_order first, then plain shapes before tracks; outside frames left out
        {
            "id": 10,
            "image_id": 3,
            "category_id": 1,
            "segmentation": [],
            "area": 16.0,
            "bbox": [0.0, 0.0, 4.0, 4.0],
            "iscrowd": 0,
            "attributes": {**CAR_ATTRS, "occluded": False, "rotation": 0.0},
        },
        {
            "id": 11,
            "image_id": 3,
            "category_id": 1,
            "segmentation": [],
            "area": 70.0,
            "bbox": [5.0, 5.0, 10.0, 7.0],
            "iscrowd": 0,
            "attributes": {
                **CAR_ATTRS,
                "occluded": False,
                "rotation": 0.0,
                "track_id": 7,
                "keyframe": False,
            },
        },
        {
            "id": 12,
            "image_id": 3,
            "category_id": 2,
            "segmentation": [[30.0, 20.0, 38.0, 20.0, 34.0, 28.0]],
            "area": 32.0,
            "bbox": [30.0, 20.0, 8.0, 8.0],
            "iscrowd": 0,
            "attributes": {"occluded": False},
        },
    ],
}

GOLDEN_KEYPOINTS = {
    **HEADER,
    "categories": [
        {"id": 1, "name": "car", "supercategory": "", "keypoints": [], "skeleton": []},
        {"id": 2, "name": "road", "supercategory": "", "keypoints": [], "skeleton": []},
        {"id": 3, "name": "blob", "supercategory": "", "keypoints": [], "skeleton": []},
        {
            "id": 4,
            "name": "person",
            "supercategory": "",
            "keypoints": ["nose", "right", "left"],  # the svg's circle order
            "skeleton": [[2, 3], [1, 2], [1, 3]],  # the order of datumaro's set of pairs
        },
        {"id": 8, "name": "tree", "supercategory": "", "keypoints": [], "skeleton": []},
        {"id": 9, "name": "sign", "supercategory": "", "keypoints": [], "skeleton": []},
        {"id": 10, "name": "lane", "supercategory": "", "keypoints": [], "skeleton": []},
    ],
    "images": IMAGES,
    "annotations": [
        # a skeleton alone: bbox of its points that are not outside; an outside point
        # keeps its coordinates with v = 0, an occluded one has v = 1
        {
            "id": 1,
            "image_id": 1,
            "category_id": 4,
            "segmentation": [],
            "area": 4.0,
            "bbox": [8.0, 5.0, 2.0, 2.0],
            "iscrowd": 0,
            "attributes": {"occluded": False, "keyframe": False},
            "keypoints": [10.0, 5.0, 2, 12.0, 7.0, 0, 8.0, 7.0, 1],
            "num_keypoints": 2,
        },
        # a skeleton grouped with a box: the box's label, bbox and attributes
        {
            "id": 2,
            "image_id": 2,
            "category_id": 1,
            "segmentation": [],
            "area": 108.0,
            "bbox": [4.0, 10.0, 12.0, 9.0],
            "iscrowd": 0,
            "attributes": {**CAR_ATTRS, "occluded": False, "rotation": 0.0},
            "keypoints": [10.0, 12.0, 2, 14.0, 15.0, 2, 6.0, 15.0, 2],
            "num_keypoints": 3,
        },
        # a track's skeleton: keyframe when one of its points is a keyframe
        {
            "id": 3,
            "image_id": 3,
            "category_id": 4,
            "segmentation": [],
            "area": 4.0,
            "bbox": [20.0, 10.0, 2.0, 2.0],
            "iscrowd": 0,
            "attributes": {"occluded": False, "track_id": 9, "keyframe": True},
            "keypoints": [20.0, 10.0, 2, 22.0, 12.0, 2, 18.0, 12.0, 0],
            "num_keypoints": 2,
        },
    ],
}


def test_instances_match_the_golden_file() -> None:
    archive = export(dataset())
    assert archive.namelist() == ["annotations/instances_default.json"]
    assert member(archive, "annotations/instances_default.json") == GOLDEN_INSTANCES


def test_keypoints_match_the_golden_file() -> None:
    archive = export(dataset(), keypoints=True)
    assert archive.namelist() == ["annotations/person_keypoints_default.json"]
    assert member(archive, "annotations/person_keypoints_default.json") == GOLDEN_KEYPOINTS


def test_keys_are_in_datumaro_order() -> None:
    data = member(export(dataset()), "annotations/instances_default.json")
    assert list(data) == ["licenses", "info", "categories", "images", "annotations"]
    assert list(data["annotations"][5]) == [
        "id",
        "image_id",
        "category_id",
        "segmentation",
        "area",
        "bbox",
        "iscrowd",
        "score",
        "attributes",
    ]


# --- pycocotools ---------------------------------------------------------------------------


def expected_masks() -> dict[int, np.ndarray]:
    """Our own rasterisation of the source shapes of each segmented annotation."""

    def polygons(*rings: list[float]) -> np.ndarray:
        return polygons_to_mask(list(rings), H, W)

    return {
        3: polygons([1.0, 13.0, 14.5, 13.0, 8.0, 24.12]),
        4: cvat_mask_to_array(BLOB_POINTS, H, W),
        5: ellipse_to_mask([32, 22, 37, 19], H, W),
        7: polygons([2, 2, 10, 2, 6, 9], [12, 2, 18, 2, 15, 6]),
        8: polygons([20, 14, 30, 14, 30, 24, 20, 24]) | cvat_mask_to_array(SMALL_POINTS, H, W),
        12: polygons([30, 20, 38, 20, 34, 28]),
    }


def load_coco(archive: zipfile.ZipFile, name: str, tmp_path: Path) -> COCO:
    path = tmp_path / "coco.json"
    path.write_bytes(archive.read(name))
    return COCO(str(path))


def test_pycocotools_masks_equal_our_rasterisation(tmp_path: Path) -> None:
    coco = load_coco(export(dataset()), "annotations/instances_default.json", tmp_path)
    expected = expected_masks()
    assert len(coco.getImgIds()) == 4
    segmented = [a for a in coco.loadAnns(coco.getAnnIds()) if a["segmentation"]]
    assert sorted(a["id"] for a in segmented) == sorted(expected)
    for ann in segmented:
        mask = coco.annToMask(ann).astype(bool)
        np.testing.assert_array_equal(mask, expected[ann["id"]], err_msg=f"annotation {ann['id']}")
        assert ann["area"] == mask.sum()
        if ann["iscrowd"] and ann["id"] != 8:  # a group's bbox spans its parts' boxes
            assert ann["bbox"] == mask_utils.toBbox(coco.annToRLE(ann)).tolist()


def test_polygons_as_masks(tmp_path: Path) -> None:
    options = ExportOptions(polygons_as_masks=True)
    archive = export(dataset(), options)
    coco = load_coco(archive, "annotations/instances_default.json", tmp_path)
    expected = expected_masks()
    for ann in coco.loadAnns(coco.getAnnIds()):
        if ann["id"] in expected:
            assert isinstance(ann["segmentation"], dict)
            assert isinstance(ann["segmentation"]["counts"], list)
            assert ann["iscrowd"] == 1
            np.testing.assert_array_equal(
                coco.annToMask(ann).astype(bool), expected[ann["id"]], err_msg=str(ann["id"])
            )
            assert ann["area"] == expected[ann["id"]].sum()
        else:  # boxes stay boxes
            assert ann["segmentation"] == []
            assert ann["iscrowd"] == 0


def test_groups_take_the_leaders_label_and_masks_of_another_label_become_polygons(
    tmp_path: Path,
) -> None:
    mask = np.zeros((H, W), bool)
    mask[5:9, 20:26] = True
    items = [
        FrameAnnotations(
            FrameInfo(0, "a.jpg", W, H),
            shapes=(
                Shape("mask", 3, array_to_cvat_mask(mask), group=4),
                Shape("polygon", 2, [0, 0, 12, 0, 12, 12, 0, 12], group=4),
                Shape("rectangle", 1, [1, 1, 3, 3], group=4),
            ),
        )
    ]
    archive = export(dataset(items))
    [ann] = member(archive, "annotations/instances_default.json")["annotations"]
    assert ann["category_id"] == 2  # the polygon is the largest part
    assert ann["iscrowd"] == 0
    assert ann["bbox"] == [0.0, 0.0, 26.0, 12.0]
    assert ann["segmentation"][0] == [0.0, 0.0, 12.0, 0.0, 12.0, 12.0, 0.0, 12.0]
    coco = load_coco(archive, "annotations/instances_default.json", tmp_path)
    expected = polygons_to_mask([[0, 0, 12, 0, 12, 12, 0, 12]], H, W) | mask
    np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), expected)
    assert ann["area"] == expected.sum()


def test_is_crowd_attribute_steers_the_segmentation() -> None:
    crowd = Label(
        2,
        "road",
        "polygon",
        "#00ff00",
        attributes=(AttributeSpec(21, "is_crowd", "checkbox", False, ("false",), "false"),),
    )
    task = TaskInfo(1, "t", "annotation", "2d", 1, (crowd,))
    items = [
        FrameAnnotations(
            FrameInfo(0, "a.jpg", W, H),
            shapes=(
                Shape("polygon", 2, [0, 0, 5, 0, 5, 5], attributes={"is_crowd": "true"}),
                Shape("polygon", 2, [10, 10, 15, 10, 15, 15]),
            ),
        )
    ]
    first, second = member(export(dataset(items, task)), "annotations/instances_default.json")[
        "annotations"
    ]
    assert first["iscrowd"] == 1
    assert isinstance(first["segmentation"], dict)
    assert "is_crowd" not in first["attributes"]
    assert second["iscrowd"] == 0
    assert second["segmentation"] == [[10.0, 10.0, 15.0, 10.0, 15.0, 15.0]]


def test_a_mask_leaving_the_frame_is_clipped() -> None:
    box = np.ones((4, 6), bool)  # at (36, 28): 2 rows and 4 columns lie outside
    points = [*array_to_cvat_mask(box)[:-4], 36, 28, 41, 31]
    items = [FrameAnnotations(FrameInfo(0, "a.jpg", W, H), shapes=(Shape("mask", 3, points),))]
    [ann] = member(export(dataset(items)), "annotations/instances_default.json")["annotations"]
    assert ann["area"] == 8.0
    assert ann["bbox"] == [36.0, 28.0, 4.0, 2.0]


# --- datumaro ------------------------------------------------------------------------------


def datumaro_import(archive: zipfile.ZipFile, tmp_path: Path, fmt: str) -> Any:
    archive.extractall(tmp_path)
    # An export without images has no images/ folder (neither has CVAT's); datumaro's
    # importer insists on one.
    (tmp_path / "images").mkdir()
    return dm.Dataset.import_from(str(tmp_path), fmt)


def per_label(ds: Any) -> Counter[tuple[str, str]]:
    names = ds.categories()[dm.AnnotationType.label]
    return Counter(
        (names[ann.label].name, ann.type.name) for item in ds for ann in item.annotations
    )


def test_datumaro_imports_instances(tmp_path: Path) -> None:
    ds = datumaro_import(export(dataset()), tmp_path, "coco_instances")
    assert len(ds) == 4
    # datumaro reads each COCO annotation as its bbox plus one polygon per ring or a mask
    assert per_label(ds) == {
        ("car", "bbox"): 6,
        ("road", "bbox"): 3,
        ("road", "polygon"): 4,
        ("blob", "bbox"): 2,
        ("blob", "mask"): 2,
        ("tree", "bbox"): 1,
        ("tree", "mask"): 1,
    }


def test_datumaro_imports_keypoints(tmp_path: Path) -> None:
    ds = datumaro_import(export(dataset(), keypoints=True), tmp_path, "coco_person_keypoints")
    assert len(ds) == 4
    assert per_label(ds) == {
        ("person", "points"): 2,
        ("person", "bbox"): 2,
        ("car", "points"): 1,
        ("car", "bbox"): 1,
    }


# --- subsets, options, streaming -----------------------------------------------------------


@pytest.mark.parametrize("spool", [4 << 20, 1], ids=["in memory", "on disk"])
def test_subsets_get_their_own_files_with_ids_as_cvat_numbers_them(
    monkeypatch: pytest.MonkeyPatch, spool: int
) -> None:
    monkeypatch.setattr(coco, "_SPOOL_BYTES", spool)
    items = [
        FrameAnnotations(
            FrameInfo(i, f"{i}.jpg", W, H, subset=subset),
            shapes=(Shape("rectangle", 1, [i, i, i + 2, i + 3]),),
        )
        for i, subset in enumerate(["train", "val", "train", "val", "train"])
    ]
    archive = export(dataset(items))
    assert archive.namelist() == [
        "annotations/instances_train.json",
        "annotations/instances_val.json",
    ]
    train = member(archive, "annotations/instances_train.json")
    val = member(archive, "annotations/instances_val.json")
    # each subset's images are numbered in one run, the subsets one after another
    assert [(i["id"], i["file_name"]) for i in train["images"]] == [
        (1, "0.jpg"),
        (2, "2.jpg"),
        (3, "4.jpg"),
    ]
    assert [(i["id"], i["file_name"]) for i in val["images"]] == [(4, "1.jpg"), (5, "3.jpg")]
    # annotation ids start at 1 in each file
    assert [(a["id"], a["image_id"], a["bbox"][0]) for a in train["annotations"]] == [
        (1, 1, 0.0),
        (2, 2, 2.0),
        (3, 3, 4.0),
    ]
    assert [(a["id"], a["image_id"], a["bbox"][0]) for a in val["annotations"]] == [
        (1, 4, 1.0),
        (2, 5, 3.0),
    ]


def test_task_subset_names_the_file() -> None:
    task = TaskInfo(1, "t", "annotation", "2d", 1, (CAR,), subset="Train")
    archive = export(dataset([FrameAnnotations(FrameInfo(0, "a.jpg", W, H))], task))
    assert archive.namelist() == ["annotations/instances_Train.json"]
    assert member(archive, "annotations/instances_Train.json")["annotations"] == []


def test_annotated_only_leaves_out_empty_frames() -> None:
    archive = export(dataset(), ExportOptions(annotated_only=True))
    data = member(archive, "annotations/instances_default.json")
    assert [i["file_name"] for i in data["images"]] == [
        "images/0.jpg",
        "images/1.png",
        "images/2.jpg",
    ]


def test_an_empty_dataset_still_writes_the_subset_file() -> None:
    archive = export(dataset([]))
    data = member(archive, "annotations/instances_default.json")
    assert data["images"] == []
    assert data["annotations"] == []
    assert len(data["categories"]) == 10


def test_point_clouds_are_refused() -> None:
    task = TaskInfo(1, "t", "annotation", "3d", 1, (CAR,))
    with pytest.raises(ValueError, match="2D"):
        export(dataset([], task))


@given(st.floats(min_value=-1e7, max_value=1e7, allow_nan=False))
def test_round2_is_numpys_around(value: float) -> None:
    expected = float(np.around(value, 2))
    assert math.copysign(1.0, round2(value)) == math.copysign(1.0, expected)
    assert round2(value) == expected


@given(
    cx=st.floats(-10, 50),
    cy=st.floats(-10, 40),
    rx=st.floats(0.1, 30),
    ry=st.floats(0.1, 30),
    rotation=st.floats(-360, 360),
)
def test_ellipse_pixels_are_those_of_the_whole_frame_rasteriser(
    cx: float, cy: float, rx: float, ry: float, rotation: float
) -> None:
    points = [cx, cy, cx + rx, cy - ry]
    np.testing.assert_array_equal(
        decode(ellipse_rle(points, rotation, H, W)).astype(bool),
        ellipse_to_mask(points, H, W, rotation),
    )


def test_mask_pixels_are_cvats() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        bh, bw = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        top, left = int(rng.integers(0, H - bh)), int(rng.integers(0, W - bw))
        expected = np.zeros((H, W), bool)
        expected[top : top + bh, left : left + bw] = rng.random((bh, bw)) < 0.5
        expected[top, left] = True
        points = array_to_cvat_mask(expected)  # CVAT's layout: runs over the tight box
        np.testing.assert_array_equal(decode(mask_rle(points, H, W)).astype(bool), expected)


@dataclass(frozen=True)
class _Generated:
    """Frames made on the fly, each with a polygon and a mask: nothing kept."""

    task: TaskInfo
    count: int

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        for i in range(self.count):
            yield FrameAnnotations(
                FrameInfo(i, f"frame_{i:06d}.jpg", 640, 480),
                shapes=(
                    Shape("polygon", 2, [10 + i % 50, 10, 200, 30, 120, 300]),
                    Shape("mask", 3, [0, 400, 100, 100, 119, 119]),
                    Shape("rectangle", 1, [5, 5, 50, 60]),
                ),
            )


def peak_memory(count: int) -> int:
    task = TaskInfo(1, "t", "annotation", "2d", count, (CAR, ROAD, BLOB))
    tracemalloc.start()
    try:
        sink = zipfile.ZipFile(_Discard(), "w", zipfile.ZIP_DEFLATED)
        asyncio.run(write_coco(_Generated(task, count), sink, ExportOptions()))
        sink.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class _Discard(io.RawIOBase):
    """A write-only, unseekable sink, like a multipart upload."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def test_memory_stays_flat_as_frames_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    # Entries spool to disk past a threshold and are copied out in chunks: make both small
    # so that 300 frames already reach them.
    monkeypatch.setattr(coco, "_SPOOL_BYTES", 64 << 10)
    monkeypatch.setattr(coco, "_COPY_BYTES", 16 << 10)
    peak_memory(20)  # compile the kernels first
    small, large = peak_memory(300), peak_memory(3000)
    assert large < small * 1.3 + (1 << 20), (small, large)


_coordinate = st.floats(-60, 80, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def _ungrouped_shape(draw: st.DrawFn) -> Shape:
    """A box, polygon, mask or ellipse of the writer's fast path, at times off the frame."""
    kind: ShapeType = draw(st.sampled_from(["rectangle", "polygon", "mask", "ellipse"]))
    attributes = draw(st.sampled_from([{}, {"model": "suv", "speed": "12.5"}, {"parked": "true"}]))
    label = {"rectangle": CAR, "polygon": ROAD, "mask": BLOB, "ellipse": TREE}[kind]
    if kind == "rectangle":
        x0, y0, x1, y1 = (draw(_coordinate) for _ in range(4))
        points: list[float] = [x0, y0, x1, y1]
    elif kind == "polygon":
        points = [draw(_coordinate) for _ in range(2 * draw(st.integers(3, 8)))]
    elif kind == "ellipse":
        cx, cy = draw(_coordinate), draw(_coordinate)
        points = [cx, cy, cx + draw(st.floats(0.5, 20)), cy - draw(st.floats(0.5, 20))]
    else:
        bits = draw(st.integers(1, 2**30 - 1))
        pixels = ((bits >> np.arange(30)) & 1).astype(bool).reshape(5, 6)
        runs = array_to_cvat_mask(pixels)
        left, top = draw(st.integers(-2, W - 4)), draw(st.integers(-2, H - 3))
        points = [*runs[:-4], runs[-4] + left, runs[-3] + top, runs[-2] + left, runs[-1] + top]
    source: Source = draw(st.sampled_from(["manual", "auto"]))
    return Shape(
        kind, label.id, points, rotation=draw(st.sampled_from([0.0, 30.0])), source=source,
        attributes=attributes, score=0.75 if source == "auto" else None,
        occluded=draw(st.booleans()),
    )  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ungrouped_shape(), max_size=8), st.booleans())
def test_the_fast_path_writes_what_the_general_path_writes(
    shapes: list[Shape], polygons_as_masks: bool
) -> None:
    writer = coco._Writer(coco._Labels(TASK.labels), mask_mode=polygons_as_masks, keypoints=False)
    frame = FrameInfo(0, "a.jpg", W, H)
    general = [
        writer._instance(group, frame, 1) for group in coco._instances(writer._parts(shapes, frame))
    ]
    fast = writer._fast_instances(shapes, frame, 1)
    event("fast path" if fast is not None else "general path")
    if fast is not None:  # else the frame takes the general path
        assert json.loads(orjson.dumps(fast)) == json.loads(orjson.dumps(general))
