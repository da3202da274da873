"""What a dataset import makes of an upload (`tessera.export.datasets.layout`), for the
formats whose readers list their items and subsets: the tasks, their images' names and
where each annotation goes. No services: the readers and the planning only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tessera.export.datasets.layout import ImageIndex, SubsetPlan, number_frames, plan
from tessera.export.imports.files import ImportFailed
from tessera.export.imports.registry import ReadContext, importer_named
from tessera.ingest.testing import png_bytes

from .imports.support import upload

W, H = 40, 20


def planned(format_name: str, members: dict[str, bytes | str], tmp_path: Path) -> list[SubsetPlan]:
    importer = importer_named(format_name)
    assert importer is not None
    files = upload(members, tmp_path)
    images = ImageIndex(files)
    context = ReadContext(images.size)
    parsed = importer.read(files, context)
    assert context.missing == []
    return plan(parsed, images, files)


def summary(plans: list[SubsetPlan]) -> dict[str, Any]:
    """Per task: its images (name -> member) and its shapes and tags (frame, label)."""
    out = {}
    for found in plans:
        numbers = {name: number for number, name in enumerate(sorted(found.media))}
        number_frames(found.annotations, numbers)
        out[found.name] = {
            "media": found.media,
            "shapes": sorted((s.frame, s.label, s.type) for s in found.annotations.shapes),
            "tags": sorted((t.frame, t.label) for t in found.annotations.tags),
        }
    return out


def image(seed: int) -> bytes:
    return png_bytes(seed, (W, H))


def test_yolo_subsets_with_the_same_image_names(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "obj.data": "classes = 2\ntrain = data/train.txt\nvalid = data/valid.txt\n"
        "names = data/obj.names\nbackup = backup/\n",
        "obj.names": "car\nperson\n",
        "train.txt": "data/obj_train_data/a.png\ndata/obj_train_data/b.png\n",
        "valid.txt": "data/obj_valid_data/a.png\n",
        "obj_train_data/a.png": image(1),
        "obj_train_data/a.txt": "0 0.5 0.5 0.5 0.5\n",
        "obj_train_data/b.png": image(2),
        "obj_valid_data/a.png": image(3),
        "obj_valid_data/a.txt": "1 0.5 0.5 1 1\n",
    }
    found = summary(planned("YOLO 1.1", members, tmp_path))
    assert found == {
        "train": {
            "media": {"a.png": "obj_train_data/a.png", "b.png": "obj_train_data/b.png"},
            "shapes": [(0, "car", "rectangle")],
            "tags": [],
        },
        "valid": {
            "media": {"a.png": "obj_valid_data/a.png"},
            "shapes": [(0, "person", "rectangle")],
            "tags": [],
        },
    }


def test_ultralytics_detection_images_and_labels_by_subset(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "data.yaml": "names:\n  0: car\n",
        "images/train/x/a.png": image(1),
        "labels/train/x/a.txt": "0 0.5 0.5 0.2 0.2\n",
        "images/val/b.png": image(2),
    }
    found = summary(planned("Ultralytics YOLO Detection 1.0", members, tmp_path))
    assert found == {
        "train": {
            "media": {"x/a.png": "images/train/x/a.png"},
            "shapes": [(0, "car", "rectangle")],
            "tags": [],
        },
        "val": {"media": {"b.png": "images/val/b.png"}, "shapes": [], "tags": []},
    }


def test_datumaro_items_by_subset_file(tmp_path: Path) -> None:
    def subset(items: list[dict[str, Any]]) -> bytes:
        categories = {"label": {"labels": [{"name": "car", "parent": ""}]}}
        return orjson.dumps({"categories": categories, "items": items})

    box = {"type": "bbox", "label_id": 0, "bbox": [1, 1, 2, 2], "group": 0}
    members: dict[str, bytes | str] = {
        "annotations/train.json": subset([
            {"id": "a", "annotations": [box], "image": {"path": "a.png"}},
            {"id": "b", "annotations": [], "image": {"path": "b.png"}},
        ]),
        "annotations/test.json": subset([
            {"id": "a", "annotations": [{"type": "label", "label_id": 0}],
             "image": {"path": "a.png"}},
        ]),
        "images/train/a.png": image(1),
        "images/train/b.png": image(2),
        "images/test/a.png": image(3),
    }  # fmt: skip
    found = summary(planned("Datumaro 1.0", members, tmp_path))
    assert found == {
        "train": {
            "media": {"a.png": "images/train/a.png", "b.png": "images/train/b.png"},
            "shapes": [(0, "car", "rectangle")],
            "tags": [],
        },
        "test": {"media": {"a.png": "images/test/a.png"}, "shapes": [], "tags": [(0, "car")]},
    }


def test_cvat_xml_images_by_their_subset_attribute(tmp_path: Path) -> None:
    xml = """<annotations><version>1.1</version>
      <image id="0" name="a.png" subset="Train" width="40" height="20">
        <box label="car" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>
      </image>
      <image id="1" name="b.png" subset="Validation" width="40" height="20">
        <tag label="car"/>
      </image>
      <image id="2" name="c.png" width="40" height="20"/>
    </annotations>"""
    members: dict[str, bytes | str] = {
        "annotations.xml": xml,
        "images/Train/a.png": image(1),
        "images/Validation/b.png": image(2),
        "images/c.png": image(3),
    }
    found = summary(planned("CVAT 1.1", members, tmp_path))
    assert found == {
        "Train": {
            "media": {"a.png": "images/Train/a.png"},
            "shapes": [(0, "car", "rectangle")],
            "tags": [],
        },
        "Validation": {"media": {"b.png": "images/Validation/b.png"}, "shapes": [],
                       "tags": [(0, "car")]},
        "default": {"media": {"c.png": "images/c.png"}, "shapes": [], "tags": []},
    }  # fmt: skip


def test_voc_items_with_their_jpeg_images(tmp_path: Path) -> None:
    xml = """<annotation><filename>a.png</filename>
      <size><width>40</width><height>20</height><depth>3</depth></size>
      <object><name>car</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax>
      <ymax>4</ymax></bndbox></object></annotation>"""
    members: dict[str, bytes | str] = {
        "labelmap.txt": "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar:10,10,10::\n",
        "ImageSets/Main/train.txt": "a\n",
        "ImageSets/Main/val.txt": "b\n",
        "Annotations/a.xml": xml,
        "JPEGImages/a.png": image(1),
        "JPEGImages/b.png": image(2),
    }
    found = summary(planned("PASCAL VOC 1.1", members, tmp_path))
    assert found == {
        "train": {
            "media": {"a.png": "JPEGImages/a.png"},
            "shapes": [(0, "car", "rectangle")],
            "tags": [],
        },
        "val": {"media": {"b.png": "JPEGImages/b.png"}, "shapes": [], "tags": []},
    }


def test_an_item_without_its_image_fails(tmp_path: Path) -> None:
    members: dict[str, bytes | str] = {
        "annotations/train.json": orjson.dumps({
            "categories": {"label": {"labels": []}},
            "items": [{"id": "a", "annotations": [], "image": {"path": "a.png"}}],
        }),
    }  # fmt: skip
    with pytest.raises(ImportFailed, match=r"no image .* for 1 items of the dataset: 'a\.png'"):
        planned("Datumaro 1.0", members, tmp_path)
