"""Datumaro 1.0, as CVAT 2.80 writes it, streamed one frame at a time.

CVAT exports it through its datumaro fork (cvat/apps/dataset_manager/formats/datumaro.py:
`GetCVATDataExtractor`, then, without images, the `DeleteImagePath` transform, then
`dataset.export(dir, "datumaro")`), after cvat/apps/dataset_manager/bindings.py
(`CvatToDmAnnotationConverter`, `CVATDataExtractorMixin._load_categories`,
`CvatTaskOrJobDataExtractor`) has turned each frame into a datumaro item. The fork's
datumaro/plugins/datumaro_format/converter.py (`_SubsetWriter`) writes the JSON, and
datumaro/components/annotation.py fixes the values (coordinates rounded to 2 decimals,
default point visibility, empty parents). The rules, and so this writer:

- one member per subset, `annotations/<subset>.json` (the frame's subset, else the task's,
  else `default`), compact JSON (orjson) with the keys `info` ({}), `categories`, `items`;
  no `dm_format_version` (the fork writes none). With no frame at all the subset's file is
  still written, with no items.
- categories: `label` {`labels`: every label and skeleton point ordered by label id, each
  `{name, parent, attributes: []}` (`parent` is the skeleton's name for its points, else
  ""), `attributes`: the sorted names of every attribute of every label, plus `occluded`};
  `points` {`items`: one `{label_id, labels, joints}` per skeleton: the point names in the
  order of the svg's circles, the svg lines' `data-node-from`/`data-node-to` pairs in the
  order a Python set of them iterates, as datumaro writes them}. No mask colormap.
- items: every frame (only annotated ones with `annotated_only`) in frame order:
  `{id: the file name without its extension, annotations, attr: {frame},
  point_cloud: {path: ""}}`, `frame` being the frame's number in the media
  (`CommonData.Frame.frame`: `start_frame + index * step`, as the `frame_000010` of a
  video frame's id; not its number in the task). The `point_cloud` is what
  `DeleteImagePath` leaves: its `item.wrap(image=None, point_cloud="",
  related_images=[])` turns the image into an empty point cloud, so no `image` path or
  size is written (a known CVAT bug, cvat#5924, cvat#8700, still unfixed there; datumaro
  reads an empty `point_cloud` path as no media).
- annotations: the tags first, then the shapes in CVAT's order (by `z_order`, plain shapes
  before track shapes; a track's outside frames are left out). Every one has `id` 0,
  `type`, `attributes`, `group`, `label_id` (the index in the label list), then:
  rectangle `z_order`, `bbox` [x, y, w, h]; polygon, polyline `points`, `z_order`;
  points `points`, `z_order`, `visibility` (2 for each point); mask and ellipse (CVAT
  rasterises ellipses) `rle` {`counts`: COCO's compressed string, `size` [h, w]},
  `z_order`; skeleton `elements` (each a points annotation with its own sublabel,
  attributes, `z_order` 0, group 0 and `visibility` [2 visible, 1 occluded, 0 outside]),
  no `z_order`; tag nothing more. 2D cuboids are not written (the bindings make nothing
  of them outside 3D tasks).
- attributes: every attribute of the label's spec (missing values take the default;
  numbers as floats, checkboxes as booleans, the rest as text), then `occluded` (not on
  tags or skeleton points), `rotation` (rectangles only, a float), and on frames of tracks
  `track_id` and `keyframe`. A skeleton gets `keyframe` last: true when one of its points
  is a keyframe of a track, else false. A skeleton's point of a track gets `track_id` and
  `keyframe` after its own attributes (its skeleton's, when the point carries none).
- coordinates are rounded to 2 decimals as datumaro does (`numpy.around`); a box's
  `bbox` is `[x0, y0, x1 - x0, y1 - y0]` of the rounded corners, in float arithmetic.

Where this writer differs from CVAT (as the COCO writer does): ellipse pixels are those
whose centres lie inside the ellipse (CVAT draws with cv2); `track_id` is the track
number the dataset carries (the snapshot reader's, by first frame; CVAT's by id); a
number attribute that is not a number is kept as text, a mask whose box leaves the frame
is clipped, a polygon with fewer than 3 points is skipped (CVAT would fail the export).

Nothing is held beyond one frame: items are spooled per subset (in memory up to a few MiB,
on disk past that), and each subset's member is written from its spool at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os.path
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

import orjson

from tessera.export.formats.coco import (
    attribute_value,
    ellipse_rle,
    mask_rle,
    round2,
    skeleton_graph,
)
from tessera.export.model import (
    AttributeSpec,
    Dataset,
    ExportOptions,
    FrameAnnotations,
    Label,
    Shape,
    Tag,
    labels_by_id,
    shapes_as_cvat_writes_them,
)
from tessera.geometry import CompressedRLE

MEMBER: Final = "annotations/{subset}.json"
DEFAULT_SUBSET: Final = "default"

_SPOOL_BYTES = 4 << 20
_COPY_BYTES = 1 << 20
_YIELD_EVERY = 8
_VISIBLE, _HIDDEN, _ABSENT = 2, 1, 0

Element = dict[str, Any]


async def write_datumaro(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write Datumaro 1.0: `annotations/<subset>.json`, one member per subset."""
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("this writer makes Datumaro 1.0 of 2D tasks; Datumaro 3D is another")
    labels = _Labels(task.labels)
    header = orjson.dumps({"info": {}, "categories": labels.categories()})[:-1] + b',"items":['
    spools: dict[str, _Spool] = {}
    with contextlib.ExitStack() as stack:
        frames = 0
        async for item in dataset.frames():
            shapes = shapes_as_cvat_writes_them(item.shapes)
            if options.annotated_only and not shapes and not item.tags:
                continue
            name = item.frame.subset or task.subset or DEFAULT_SUBSET
            spool = spools.get(name)
            if spool is None:
                file = stack.enter_context(tempfile.SpooledTemporaryFile(_SPOOL_BYTES))
                spool = spools[name] = _Spool(file)
            spool.add(orjson.dumps(_item(item, shapes, labels)))
            frames += 1
            if frames % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the CPU work of a long stream must not starve the loop
        if not spools:
            file = stack.enter_context(tempfile.SpooledTemporaryFile(_SPOOL_BYTES))
            spools[task.subset or DEFAULT_SUBSET] = _Spool(file)
        for name, spool in spools.items():
            with archive.open(MEMBER.format(subset=name), "w", force_zip64=True) as member:
                member.write(header)
                spool.copy_to(member)
                member.write(b"]}")
                await asyncio.sleep(0)


@dataclass
class _Spool:
    """A subset's items, comma-separated, in a spooled temporary file."""

    file: IO[bytes]
    count: int = 0

    def add(self, entry: bytes) -> None:
        if self.count:
            self.file.write(b",")
        self.file.write(entry)
        self.count += 1

    def copy_to(self, member: IO[bytes]) -> None:
        self.file.seek(0)
        while chunk := self.file.read(_COPY_BYTES):
            member.write(chunk)


@dataclass(frozen=True, slots=True)
class _LabelInfo:
    index: int
    specs: tuple[AttributeSpec, ...]


class _Labels:
    """The label list as CVAT gives it to datumaro: every label and point, by label id."""

    def __init__(self, labels: Sequence[Label]) -> None:
        by_id = labels_by_id(labels)
        ordered = sorted(by_id.values(), key=lambda label: label.id)
        self.info = {
            label.id: _LabelInfo(index, label.attributes) for index, label in enumerate(ordered)
        }
        names = {"occluded"}
        entries: list[Element] = []
        points: list[Element] = []
        for index, label in enumerate(ordered):
            parent = by_id.get(label.parent_id) if label.parent_id is not None else None
            entries.append(
                {"name": label.name, "parent": parent.name if parent else "", "attributes": []}
            )
            names.update(spec.name for spec in label.attributes)
            if label.type == "skeleton":
                point_names, joints = skeleton_graph(label)
                points.append(
                    {
                        "label_id": index,
                        "labels": list(point_names),
                        "joints": [list(joint) for joint in joints],
                    }
                )
        self._categories: Element = {
            "label": {"labels": entries, "attributes": sorted(names)},
            "points": {"items": points},
        }

    def categories(self) -> Element:
        return self._categories


def _attributes(info: _LabelInfo, values: Mapping[str, str]) -> dict[str, Any]:
    return {
        spec.name: attribute_value(spec.input_type, values.get(spec.name, spec.default_value))
        for spec in info.specs
    }


def _item(item: FrameAnnotations, shapes: Sequence[Shape], labels: _Labels) -> Element:
    frame = item.frame
    annotations: list[Element] = [_tag(tag, labels) for tag in item.tags]
    for shape in shapes:
        converted = _shape(shape, labels, frame.height, frame.width)
        if converted is not None:
            annotations.append(converted)
    return {
        "id": os.path.splitext(frame.name)[0],
        "annotations": annotations,
        "attr": {"frame": frame.number},
        "point_cloud": {"path": ""},
    }


def _tag(tag: Tag, labels: _Labels) -> Element:
    info = labels.info[tag.label_id]
    return {
        "id": 0,
        "type": "label",
        "attributes": _attributes(info, tag.attributes),
        "group": tag.group,
        "label_id": info.index,
    }


def _rounded(points: Sequence[float]) -> list[float]:
    return [round2(float(value)) for value in points]


def _rle(rle: CompressedRLE) -> Element:
    counts = rle["counts"]
    return {
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
        "size": [int(v) for v in rle["size"]],
    }


def _shape(shape: Shape, labels: _Labels, h: int, w: int) -> Element | None:
    info = labels.info[shape.label_id]
    attributes = _attributes(info, shape.attributes)
    attributes["occluded"] = shape.occluded
    if shape.type == "rectangle":
        attributes["rotation"] = float(shape.rotation)
    if shape.track_id is not None:
        attributes["track_id"] = shape.track_id
        attributes["keyframe"] = shape.keyframe
    head: Element = {
        "id": 0,
        "type": "",
        "attributes": attributes,
        "group": shape.group,
        "label_id": info.index,
    }
    points = shape.points
    match shape.type:
        case "rectangle":
            if len(points) < 4:
                return None
            x0, y0, x1, y1 = (float(v) for v in points[:4])
            rx0, ry0 = round2(x0), round2(y0)
            rx1, ry1 = round2(x0 + (x1 - x0)), round2(y0 + (y1 - y0))
            head["type"] = "bbox"
            head["z_order"] = shape.z_order
            head["bbox"] = [rx0, ry0, rx1 - rx0, ry1 - ry0]
        case "polygon" | "polyline":
            if shape.type == "polygon" and len(points) < 6:
                return None
            head["type"] = shape.type
            head["points"] = _rounded(points[: len(points) // 2 * 2])
            head["z_order"] = shape.z_order
        case "points":
            head["type"] = "points"
            head["points"] = _rounded(points[: len(points) // 2 * 2])
            head["z_order"] = shape.z_order
            head["visibility"] = [_VISIBLE] * (len(points) // 2)
        case "mask" | "ellipse":
            if shape.type == "mask":
                rle = mask_rle(points, h, w)
            else:
                if len(points) < 4 or points[2] < points[0] or points[1] < points[3]:
                    return None
                rle = ellipse_rle(points, shape.rotation, h, w)
            head["type"] = "mask"
            head["rle"] = _rle(rle)
            head["z_order"] = shape.z_order
        case "skeleton":
            head["type"] = "skeleton"
            elements = [_element(element, shape, labels) for element in shape.elements]
            attributes["keyframe"] = any(
                element["attributes"].get("keyframe") for element in elements
            )
            head["elements"] = elements
        case _:  # a 2D cuboid: CVAT's bindings convert it only in 3D tasks
            return None
    return head


def _element(element: Shape, skeleton: Shape, labels: _Labels) -> Element:
    info = labels.info[element.label_id]
    attributes = _attributes(info, element.attributes)
    if element.track_id is not None:
        attributes["track_id"] = element.track_id
        attributes["keyframe"] = element.keyframe
    elif skeleton.track_id is not None:  # points that do not say take their skeleton's
        attributes["track_id"] = skeleton.track_id
        attributes["keyframe"] = skeleton.keyframe
    visibility = _ABSENT if element.outside else _HIDDEN if element.occluded else _VISIBLE
    return {
        "id": 0,
        "type": "points",
        "attributes": attributes,
        "group": 0,
        "label_id": info.index,
        "points": _rounded(element.points[: len(element.points) // 2 * 2]),
        "z_order": 0,
        "visibility": [visibility],
    }
