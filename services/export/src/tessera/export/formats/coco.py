"""COCO 1.0 and COCO Keypoints 1.0, as CVAT 2.80 writes them, streamed one frame at a time.

CVAT exports both formats through its datumaro fork (cvat/apps/dataset_manager/formats/
coco.py: `coco_instances` / `coco_person_keypoints`, with datumaro's defaults: segmentation
mode "guess", attributes on, no reindexing, covered segments not cropped), after
cvat/apps/dataset_manager/bindings.py (`CvatToDmAnnotationConverter`) has turned each shape
into a datumaro annotation. The rules below come from those files and from the fork's
datumaro/plugins/coco_format/converter.py and datumaro/components/annotation.py:

- One member per subset, `annotations/instances_<subset>.json` (keypoints:
  `annotations/person_keypoints_<subset>.json`); the subset is the frame's, else the
  task's, else `default`. Keys in datumaro's order: licenses, info, categories, images,
  annotations.
- categories: every label, skeleton points included, ordered by label id, with ids from
  1 in that order; `supercategory` is the parent label's name for a skeleton's points and
  "" otherwise. The keypoints file lists only labels without a parent (keeping the ids
  of the full list, so they may skip numbers), each with `keypoints` (the point names in
  the order of the skeleton's svg circles) and `skeleton` (the svg lines'
  `data-node-from`/`data-node-to` pairs as written, in the order a Python set of those
  pairs iterates, which is the order datumaro writes).
- images: every frame (only annotated ones with `annotated_only`), with `license` 0,
  `flickr_url` "", `coco_url` "", `date_captured` 0. Ids count from 1 across all files:
  each subset's images in one run in frame order, the subsets in the order they first
  appear. `file_name` is the frame's name (".jpg" added when it has none, as datumaro
  does). A frame without a size gets no annotations (datumaro skips it).
- annotations: ids from 1 in each file. Within a frame the shapes are taken in CVAT's
  order (by `z_order`, plain shapes before track shapes); a track's outside frames are
  left out. Shapes that share a non-zero `group` make one instance, whatever their labels;
  ungrouped shapes come first, then the groups by group number. Tags, points, polylines,
  cuboids and (in instances) skeletons are not written.
- rectangle: `bbox` of the box as stored, `segmentation` [] and `area` = w * h; a rotated
  box is written unrotated, its angle in the `rotation` attribute (CVAT's transform that
  turns rotated boxes into polygons is not applied to COCO).
- polygon: `segmentation` [[x, y, ...]], `area` as pycocotools measures the polygons on the
  frame, `bbox` of the points, `iscrowd` 0. Coordinates are rounded to 2 decimals first,
  as datumaro rounds every coordinate it stores.
- mask: an RLE over the whole frame with uncompressed `counts` (a list of run lengths),
  `size` [h, w], `iscrowd` 1, `area` its pixel count and `bbox` pycocotools' toBbox of it.
- ellipse: CVAT rasterises it (cv2.ellipse) into a mask, written like a mask.
- group: the instance's label, attributes and `score` are those of its largest part (the
  first of the largest, boxes before polygons before masks), `bbox` spans all parts. When
  a mask of the leader's label is in the group (or the leader's `is_crowd` checkbox
  attribute is true) every polygon and mask is merged into one RLE (`iscrowd` 1);
  otherwise the polygons are listed together and masks become polygons (`iscrowd` 0).
- `options.polygons_as_masks` is datumaro's segmentation mode "mask": polygons are
  rasterised and written as RLE, `iscrowd` 1; boxes stay boxes.
- attributes: every attribute of the label's spec (missing values take the default;
  numbers as floats, checkboxes as booleans, the rest as text), then `occluded`, then
  `rotation` for rectangles, then `track_id` and `keyframe` for frames of tracks (a
  skeleton always gets `keyframe`: false unless it is a track frame with a keyframe
  element). An attribute named `score` becomes the annotation's `score`, one named
  `is_crowd` only steers the segmentation; neither is written under `attributes`.
- COCO Keypoints: one annotation per skeleton: `keypoints` [x, y, v, ...] in the
  category's point order (v 2 visible, 1 occluded, 0 outside; an outside point keeps its
  coordinates, as CVAT writes them), `num_keypoints` (points not outside), `bbox` of the
  points not outside, `segmentation` [], `area` w * h. A skeleton grouped with boxes,
  polygons or masks is written as that group's instance (the leader's label, bbox,
  segmentation and attributes) plus the skeleton's keypoints. Other boxes, polygons and
  masks are not written, and frames without a skeleton get no annotations.

Where this writer differs from CVAT (on purpose or of necessity):
- `score`: shapes from auto-annotation (`source` "auto") with a score get it written as
  COCO's `score` (the issue asks for it; CVAT 2.80's bindings do not pass it on).
- ellipse pixels: CVAT rounds the centre and radii to whole pixels, the angle to whole
  degrees, and draws with cv2 (pixel centres on integer coordinates, boundary pixels
  included); this writer sets the pixels whose centres lie inside the ellipse
  (`tessera.geometry.ellipse_to_mask`), the convention of every other rasteriser here.
- a group whose masks must become polygons (leader of another label) gets exact
  pixel-edge outlines (`tessera.geometry.mask_to_polygons`), not cv2 contours.
- `track_id` is the track number the dataset carries: the export's snapshot reader numbers
  tracks 0, 1, ... by first frame (CVAT numbers them in its track list, by id; the same
  order when tracks were made in frame order).
- Inputs CVAT would fail the whole export on are written or skipped instead: a number
  attribute that is not a number is kept as text; a polygon of fewer than 3 points and a
  box without 4 numbers are skipped; a mask whose box leaves the frame is clipped to it;
  an ellipse with negative radii is skipped; a skeleton point with no place in the svg
  is left out, a missing one is written as 0, 0, 0.
- with no frame at all the task's subset file is still written (CVAT writes none).

Nothing is held beyond one frame: image and annotation entries go to spooled temporary
files per subset (in memory up to a few MiB, on disk past that), and each subset's member
is written from them at the end. Masks stay RLE throughout: CVAT's box layout becomes a
frame RLE without a frame-sized bitmap, groups merge as RLEs.

Speed: ungrouped boxes, polygons, masks and ellipses (nearly every shape) are written by
`_Writer._fast_instances`, which gives the same entries as the general `_parts` /
`_instance` path with the per-shape work cut down: the numbers of a frame's polygons and
masks are converted and checked in one numpy call each, polygon areas and mask run
lengths come straight from tessera.geometry's kernels (no compressed string in between),
and a frame's entries are serialised in one orjson call. Any input it does not take as it
is (values out of range, a mask leaving the frame, ...) sends the frame down the general
path, which clips, skips or raises as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os.path
import re
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from tessera.export.model import (
    Dataset,
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Label,
    Shape,
    shapes_as_cvat_writes_them,
)
from tessera.geometry import (
    MAX_COORD,
    MAX_PIXELS,
    CompressedRLE,
    RLELike,
    area,
    array_to_cvat_mask,
    compress,
    cvat_mask_to_rle,
    cvat_masks_to_counts,
    decode,
    ellipse_to_mask,
    from_polygons,
    mask_to_polygons,
    merge_rles,
    polygons_to_counts,
    shape_bbox,
    to_bbox,
    to_counts,
)

INSTANCES_MEMBER: Final = "annotations/instances_{subset}.json"
KEYPOINTS_MEMBER: Final = "annotations/person_keypoints_{subset}.json"
DEFAULT_SUBSET: Final = "default"

_DEFAULT_EXT = ".jpg"
_SPOOL_BYTES = 4 << 20
_COPY_BYTES = 1 << 20
_YIELD_EVERY = 8
_BOX, _POLYGON, _MASK = 0, 1, 2
_MISSING: Final = object()
_SPECIAL: Final = ("is_crowd", "score")
_GRID: Final = 1e9
"""The fast path takes boxes within +-_GRID (polygons: MAX_COORD); see its bbox rounding."""
_IMAGE_START: Final = b'{"id":'
_ENTRY_START: Final = re.compile(rb'(\{"id":\d+,"image_id":)(\d+),')
"""How every annotation entry starts: the image id is its second number."""
_HEADER: Final = {
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

Box = tuple[float, float, float, float]
"""[x, y, w, h] as datumaro computes it."""
Element = dict[str, Any]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


async def write_coco(dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions) -> None:
    """Write COCO 1.0: `annotations/instances_<subset>.json`, one member per subset."""
    await _write(dataset, archive, options, keypoints=False)


async def write_coco_keypoints(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions
) -> None:
    """Write COCO Keypoints 1.0: `annotations/person_keypoints_<subset>.json` per subset."""
    await _write(dataset, archive, options, keypoints=True)


async def _write(
    dataset: Dataset, archive: zipfile.ZipFile, options: ExportOptions, *, keypoints: bool
) -> None:
    task = dataset.task
    if task.dimension != "2d":
        raise ValueError("COCO is a 2D format; point cloud tasks have no COCO exporter")
    labels = _Labels(task.labels)
    writer = _Writer(labels, mask_mode=options.polygons_as_masks, keypoints=keypoints)
    member = KEYPOINTS_MEMBER if keypoints else INSTANCES_MEMBER
    categories = labels.keypoint_categories() if keypoints else labels.categories()
    header = orjson.dumps({**_HEADER, "categories": categories})[:-1] + b',"images":['
    subsets: dict[str, _Subset] = {}
    with contextlib.ExitStack() as spools:

        def subset_named(name: str) -> _Subset:
            subset = subsets.get(name)
            if subset is None:
                images = spools.enter_context(tempfile.SpooledTemporaryFile(_SPOOL_BYTES))
                entries = spools.enter_context(tempfile.SpooledTemporaryFile(_SPOOL_BYTES))
                subset = subsets[name] = _Subset(name, images, entries)
            return subset

        frames = 0
        async for item in dataset.frames():
            shapes = shapes_as_cvat_writes_them(item.shapes)
            if options.annotated_only and not shapes and not item.tags:
                continue
            subset = subset_named(item.frame.subset or task.subset or DEFAULT_SUBSET)
            image_id = subset.add_image(item.frame)
            elements = writer.frame(item, shapes, image_id)
            if elements:
                subset.add_annotations(elements)
            frames += 1
            if frames % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the CPU work of a long stream must not starve the loop
        if not subsets:
            subset_named(task.subset or DEFAULT_SUBSET)
        first_id = 1
        for subset in subsets.values():
            with archive.open(member.format(subset=subset.name), "w", force_zip64=True) as out:
                out.write(header)
                for chunk in subset.images_json(first_id):
                    out.write(chunk)
                    await asyncio.sleep(0)
                out.write(b'],"annotations":[')
                for chunk in subset.annotations_json(first_id):
                    out.write(chunk)
                    await asyncio.sleep(0)
                out.write(b"]}")
            first_id += subset.images


# --- labels --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LabelInfo:
    """A label as the COCO writers use it."""

    category_id: int
    label: Label
    parent: Label | None
    attributes: tuple[tuple[str, str, Any], ...]
    """(name, input_type, default converted) for each attribute of the spec, in order."""
    keypoints: tuple[str, ...] = ()
    joints: tuple[tuple[int, int], ...] = ()
    positions: dict[int, int] = field(default_factory=dict)
    """A skeleton's point label id -> index of the point in `keypoints`."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """The attributes of a shape that gives no values: each name with its default."""
    special: bool = False
    """Whether an attribute is named `score` or `is_crowd` (see `_Writer._finish`)."""


class _Labels:
    """Every label and skeleton point, ordered by id as CVAT orders its label table."""

    def __init__(self, labels: Sequence[Label]) -> None:
        flat: list[tuple[Label, Label | None]] = []

        def walk(label: Label, parent: Label | None) -> None:
            flat.append((label, parent))
            for sublabel in label.sublabels:
                walk(sublabel, label)

        for label in labels:
            walk(label, None)
        flat.sort(key=lambda pair: pair[0].id)
        self.ordered = [_label_info(index + 1, *pair) for index, pair in enumerate(flat)]
        self.by_id = {info.label.id: info for info in self.ordered}

    def categories(self) -> list[Element]:
        return [
            {
                "id": info.category_id,
                "name": info.label.name,
                "supercategory": info.parent.name if info.parent else "",
            }
            for info in self.ordered
        ]

    def keypoint_categories(self) -> list[Element]:
        return [
            {
                "id": info.category_id,
                "name": info.label.name,
                "supercategory": "",
                "keypoints": list(info.keypoints),
                "skeleton": [list(pair) for pair in info.joints],
            }
            for info in self.ordered
            if info.parent is None
        ]


def _label_info(category_id: int, label: Label, parent: Label | None) -> _LabelInfo:
    attributes = tuple(
        (spec.name, spec.input_type, attribute_value(spec.input_type, spec.default_value))
        for spec in label.attributes
    )
    defaults = {name: default for name, _, default in attributes}
    special = any(name in _SPECIAL for name, _, _ in attributes)
    names: tuple[str, ...] = ()
    joints: tuple[tuple[int, int], ...] = ()
    positions: dict[int, int] = {}
    if label.type == "skeleton":
        names, joints = skeleton_graph(label)
        by_name = {sublabel.name: sublabel.id for sublabel in label.sublabels}
        positions = {by_name[name]: index for index, name in enumerate(names) if name in by_name}
    return _LabelInfo(
        category_id, label, parent, attributes, names, joints, positions, defaults, special
    )


def skeleton_graph(label: Label) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """Point names in svg circle order and the svg lines' node pairs, as CVAT reads them
    (`CVATDataExtractorMixin._load_categories`); circles may name their point by
    `data-label-name` or, as stored, by `data-label-id`."""
    ids = {str(sublabel.id): sublabel.name for sublabel in label.sublabels}
    names: list[str] = []
    joints: list[tuple[int, int]] = []
    try:
        root = ET.fromstring(f"<root>{label.svg}</root>")
    except ET.ParseError:
        root = ET.Element("root")
    for node in root:
        if node.tag == "line":
            try:
                joints.append(
                    (int(node.attrib["data-node-from"]), int(node.attrib["data-node-to"]))
                )
            except (KeyError, ValueError):
                continue
        elif node.tag == "circle":
            name = node.attrib.get("data-label-name") or ids.get(
                node.attrib.get("data-label-id", "")
            )
            if name is not None:
                names.append(name)
    if not names:
        names = [sublabel.name for sublabel in label.sublabels]
    # datumaro keeps the joints in a set and writes them in the set's iteration order,
    # which for tuples of ints does not depend on the interpreter's hash seed.
    return tuple(names), tuple(set(joints))


def attribute_value(input_type: str, value: str) -> Any:
    """An attribute value as CVAT hands it to datumaro."""
    if input_type == "number":
        try:
            return float(value)
        except ValueError:
            return value
    if input_type == "checkbox":
        return value.lower() == "true"
    return value


# --- geometry ------------------------------------------------------------------------------


def round2(value: float) -> float:
    """`numpy.around(value, 2)`: datumaro rounds every coordinate it stores this way."""
    scaled = round(value * 100.0)
    return scaled / 100.0 if scaled else math.copysign(0.0, value)


def _max_bbox(boxes: Sequence[Box]) -> Box:
    """datumaro's `max_bbox`, with its float arithmetic."""
    if len(boxes) == 1:
        x, y, bw, bh = boxes[0]
        return (x, y, (x + bw) - x, (y + bh) - y)
    items = boxes
    x0 = min(b[0] for b in items)
    y0 = min(b[1] for b in items)
    x1 = max(b[0] + b[2] for b in items)
    y1 = max(b[1] + b[3] for b in items)
    return (x0, y0, x1 - x0, y1 - y0)


def _points_bbox(xs: Sequence[float], ys: Sequence[float]) -> Box:
    x0, y0 = min(xs), min(ys)
    return (x0, y0, max(xs) - x0, max(ys) - y0)


def _empty_rle(h: int, w: int) -> CompressedRLE:
    return compress({"size": [h, w], "counts": [h * w]})


def mask_rle(points: Sequence[float], h: int, w: int) -> CompressedRLE:
    """A CVAT mask (runs over its box, then [left, top, right, bottom]) as a frame RLE."""
    try:
        return cvat_mask_to_rle(points, h, w)
    except ValueError:
        if len(points) < 5:
            raise
    # The box leaves the frame: keep the part inside it.
    left, top, right, bottom = (math.trunc(v) for v in points[-4:])
    bh, bw = bottom - top + 1, right - left + 1
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right + 1, w), min(bottom + 1, h)
    if bh <= 0 or bw <= 0 or x1 <= x0 or y1 <= y0:
        return _empty_rle(h, w)
    runs = np.asarray(points[:-4], dtype=np.int64)
    flat = np.zeros(bh * bw, np.bool_)
    values = np.repeat(np.arange(runs.shape[0]) % 2 == 1, runs)[: bh * bw]
    flat[: values.shape[0]] = values
    inside = flat.reshape(bh, bw)[y0 - top : y1 - top, x0 - left : x1 - left]
    if not inside.any():
        return _empty_rle(h, w)
    local = array_to_cvat_mask(inside)
    local[-4:] = [local[-4] + x0, local[-3] + y0, local[-2] + x0, local[-1] + y0]
    return cvat_mask_to_rle(local, h, w)


def ellipse_rle(points: Sequence[float], rotation: float, h: int, w: int) -> CompressedRLE:
    """The pixels whose centres lie in the ellipse, as a frame RLE.

    Rasterised over the columns the ellipse spans only (full height, so the rows come out
    exactly as `ellipse_to_mask` over the whole frame gives them: shifting x by a whole
    number of pixels does not change a single comparison).
    """
    x0, _, x1, _ = shape_bbox("ellipse", points, rotation=rotation)
    c0, c1 = max(0, math.floor(x0)), min(w, math.ceil(x1) + 1)
    if c1 <= c0 or h == 0:
        return _empty_rle(h, w)
    cx, cy, right, top = points
    strip = ellipse_to_mask([cx - c0, cy, right - c0, top], h, c1 - c0, rotation)
    if not strip.any():
        return _empty_rle(h, w)
    local = array_to_cvat_mask(strip)
    local[-4] += c0
    local[-2] += c0
    return cvat_mask_to_rle(local, h, w)


def _counts(rle: RLELike) -> list[int]:
    """The run lengths of an RLE: what COCO's uncompressed `counts` holds."""
    return to_counts(rle)["counts"]


def _rle_bbox(rle: RLELike) -> Box:
    x, y, bw, bh = (float(v) for v in to_bbox(rle))
    return (x, y, bw, bh)


def _pixels(counts: list[int]) -> int:
    return sum(counts[1::2])


def _boxes(coords: list[Any]) -> list[tuple[list[float], float]] | None:
    """(bbox, area) of each rectangle coords[4 * i : 4 * i + 4] as `_part` and
    `_instance` make them, computed for all of a frame's at once; None unless every
    number is a plain finite one within `_GRID`.

    `_part` stores datumaro's box [round2(x0), round2(y0), round2(x0 + (x1 - x0)),
    round2(y0 + (y1 - y0))]; `_instance` writes x, y and the width and height as
    `_max_bbox` recomputes them ((x + w) - x), rounded, and their product as the area.
    """
    try:
        values = np.asarray(coords, np.float64).reshape(-1, 4)
    except (TypeError, ValueError):
        return None
    if not (np.abs(values) < _GRID).all():  # NaN fails too
        return None
    x0, y0, x1, y1 = values.T
    left, top, right, bottom = np.around([x0, y0, x0 + (x1 - x0), y0 + (y1 - y0)], 2)
    width, height = right - left, bottom - top
    width, height = (left + width) - left, (top + height) - top
    area = (width * height).tolist()
    bbox = np.stack([left, top, np.around(width, 2), np.around(height, 2)], axis=1).tolist()
    return list(zip(bbox, area, strict=True))


def _plain_ellipse(points: Sequence[float], rotation: float) -> bool:
    """Whether `ellipse_rle` of these numbers cannot raise: plain finite numbers."""
    values = (*points, rotation)
    return all(type(v) in (int, float) and abs(v) <= MAX_COORD for v in values)


def _rounded(coords: list[Any]) -> tuple[FloatArray, list[float]] | None:
    """Polygon points rounded as `_part` rounds them (`np.around(points, 2)`), as an array
    and a list, or None unless every value is one `from_polygons` accepts."""
    try:
        values = np.asarray(coords, np.float64)
    except (TypeError, ValueError):
        return None
    if values.ndim != 1:
        return None
    rounded = np.around(values, 2)
    if not (rounded.min() >= -MAX_COORD and rounded.max() <= MAX_COORD):  # NaN fails too
        return None
    return rounded, rounded.tolist()


def _polygon_boxes(rounded: FloatArray, starts: list[int]) -> list[list[float]]:
    """The bbox `_instance` writes for each polygon rounded[starts[i]:starts[i + 1]]:
    x and y of its points' minimum, the width and height as `_max_bbox` recomputes them
    ((x + w) - x), rounded as `round2` rounds."""
    firsts = np.asarray(starts[:-1]) // 2
    xs, ys = rounded[0::2], rounded[1::2]
    x0, y0 = np.minimum.reduceat(xs, firsts), np.minimum.reduceat(ys, firsts)
    width = np.maximum.reduceat(xs, firsts) - x0
    height = np.maximum.reduceat(ys, firsts) - y0
    width, height = (x0 + width) - x0, (y0 + height) - y0
    boxes: list[list[float]] = np.stack(
        [x0, y0, np.around(width, 2), np.around(height, 2)], axis=1
    ).tolist()
    return boxes


def _mask_counts(
    runs: list[Any], starts: list[int], h: int, w: int
) -> list[tuple[IntArray, Box, int]] | None:
    """(counts, bbox, pixel count) of the CVAT masks runs[starts[i]:starts[i + 1]], as
    `mask_rle`, `_counts`, `_rle_bbox` and `_pixels` give them, or None unless each is one
    `cvat_mask_to_rle` takes as it is (whole numbers, the box inside the frame, runs that
    fit it)."""
    try:
        batch = cvat_masks_to_counts(np.asarray(runs, np.float64), starts, h, w)
    except (TypeError, ValueError):
        return None
    boxes = [(x, y, bw, bh) for x, y, bw, bh in batch.boxes().tolist()]
    return [
        (batch.counts_of(index), box, pixels)
        for index, (box, pixels) in enumerate(zip(boxes, batch.areas.tolist(), strict=True))
    ]


def _json_ints(counts: IntArray) -> orjson.Fragment:
    """Run lengths as the JSON of their list, without making a list of ints."""
    return orjson.Fragment(orjson.dumps(counts, option=orjson.OPT_SERIALIZE_NUMPY))


# --- instances -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Part:
    """A shape as datumaro holds it: a box, a polygon or a mask (ellipses are masks)."""

    kind: int
    shape: Shape
    info: _LabelInfo
    bbox: Box
    points: list[float] | None = None
    counts: list[int] | None = None
    """A mask's run lengths over the frame (column-major, background first)."""

    def area(self) -> float:
        """datumaro's `get_area`, which picks a group's leader."""
        if self.kind == _BOX:
            return self.bbox[2] * self.bbox[3]
        if self.kind == _MASK:
            assert self.counts is not None
            return float(_pixels(self.counts))
        # Polygon.get_area: pycocotools on the canvas [0, int(x + w)) x [0, int(y + h)), so
        # what lies left of or above the origin does not count.
        assert self.points is not None
        x, y, bw, bh = self.bbox
        ch, cw = int(y + bh), int(x + bw)
        if ch <= 0 or cw <= 0:
            return 0.0
        return float(area(from_polygons([self.points], ch, cw)))


class _Writer:
    """Turns one frame's shapes into COCO annotation entries (without their `id`)."""

    def __init__(self, labels: _Labels, *, mask_mode: bool, keypoints: bool) -> None:
        self._labels = labels
        self._mask_mode = mask_mode
        self._keypoints = keypoints

    def frame(
        self, item: FrameAnnotations, shapes: Sequence[Shape], image_id: int
    ) -> list[Element]:
        frame = item.frame
        if frame.width <= 0 or frame.height <= 0:
            return []  # datumaro writes no instances for an image without a size
        if self._keypoints:
            return list(self._keypoint_entries(shapes, frame, image_id))
        fast = self._fast_instances(shapes, frame, image_id)
        if fast is not None:
            return fast
        parts = self._parts(shapes, frame)
        return [self._instance(group, frame, image_id) for group in _instances(parts)]

    def _keypoint_entries(
        self, shapes: Sequence[Shape], frame: FrameInfo, image_id: int
    ) -> Iterator[Element]:
        skeletons = [s for s in shapes if s.type == "skeleton" and s.label_id in self._labels.by_id]
        if not skeletons:
            return  # datumaro writes nothing for a frame without a skeleton
        # Only an instance in a skeleton's group is written, so only those are built.
        groups = {s.group for s in skeletons if s.group}
        parts = self._parts([s for s in shapes if s.group in groups], frame)
        grouped = {part.shape.group for part in parts}
        solitary = [s for s in skeletons if not s.group or s.group not in grouped]
        for skeleton in sorted(solitary, key=lambda s: s.group):
            yield self._skeleton(skeleton, image_id)
        for group in _instances(parts):
            leader = _leader(group)
            if not leader.shape.group:
                continue
            owner = next((s for s in skeletons if s.group == leader.shape.group), None)
            if owner is not None:
                element = self._instance(group, frame, image_id)
                element.update(self._keypoints_of(owner))
                yield element

    # - the fast path

    def _fast_instances(
        self, shapes: Sequence[Shape], frame: FrameInfo, image_id: int
    ) -> list[Element] | None:
        """The frame's instances exactly as `_parts` and `_instance` make them, built
        directly for ungrouped boxes, polygons, masks and ellipses (groups take the
        general path). The numbers are handled a frame at a time: all polygon points are
        converted and rounded in one call, all mask points checked in one pass, and the
        RLE kernels are run on views of those arrays, without the compressed-string round
        trip of the public RLE functions (polygon areas, mask counts and boxes are the
        same kernels' results).

        Returns None, before anything is built, when an input needs the general path
        (a value that is not a finite number or beyond the kernels' range, a mask box that
        leaves the frame, runs that overflow their box, ...): that path clips, skips or
        raises exactly as it always has. As there, every part is made before any
        instance, ungrouped instances come before the groups.
        """
        h, w = frame.height, frame.width
        if type(h) is not int or type(w) is not int or h * w > MAX_PIXELS:
            return None
        by_id = self._labels.by_id
        singles: list[tuple[int, Shape, _LabelInfo, Any]] = []
        grouped: list[Shape] = []
        box_coords: list[Any] = []  # every rectangle's 4 numbers, one after another
        coords: list[Any] = []  # every polygon's points, one after another
        polygon_starts: list[int] = []
        runs: list[Any] = []  # every mask's points likewise
        mask_starts: list[int] = []
        for shape in shapes:
            info = by_id.get(shape.label_id)
            if info is None:
                continue
            if shape.group:
                grouped.append(shape)
                continue
            shape_type, points = shape.type, shape.points
            if shape_type == "rectangle":
                if len(points) != 4:
                    continue
                singles.append((_BOX, shape, info, len(box_coords) // 4))
                box_coords.extend(points)
            elif shape_type == "polygon":
                if len(points) < 6 or len(points) % 2:
                    continue
                singles.append((_POLYGON, shape, info, len(polygon_starts)))
                polygon_starts.append(len(coords))
                coords.extend(points)
            elif shape_type == "mask":
                if len(points) < 5:
                    return None
                singles.append((_MASK, shape, info, len(mask_starts)))
                mask_starts.append(len(runs))
                runs.extend(points)
            elif shape_type == "ellipse":
                if len(points) != 4:
                    continue
                if not _plain_ellipse(points, shape.rotation):
                    return None
                part = self._part(shape, info, h, w)
                if part is not None and part.counts is not None:
                    counts = np.asarray(part.counts, np.int64)
                    ellipse = (counts, part.bbox, _pixels(part.counts))
                    singles.append((_MASK, shape, info, ellipse))

        boxes: list[tuple[list[float], float]] = []
        if box_coords:
            found = _boxes(box_coords)
            if found is None:
                return None
            boxes = found
        rounded: FloatArray = np.zeros(0)
        listed: list[float] = []
        polygon_starts.append(len(coords))
        polygon_areas: list[int] = []
        polygon_boxes: list[list[float]] = []
        if coords:
            converted = _rounded(coords)
            if converted is None:
                return None
            rounded, listed = converted
            polygons = polygons_to_counts(rounded, polygon_starts, h, w)
            polygon_areas = polygons.areas.tolist()
            polygon_boxes = _polygon_boxes(rounded, polygon_starts)
        masks = _mask_counts(runs, [*mask_starts, len(runs)], h, w) if runs else []
        if masks is None:
            return None
        groups = _instances(self._parts(grouped, frame))

        mask_mode = self._mask_mode
        out: list[Element] = []
        for kind, shape, info, data in singles:
            attributes = self._attributes(shape, info)
            segmentation: Any = []
            crowd = 0
            # The bbox as `_instance` writes it, `[round(v, 2) for v in _max_bbox([bbox])]`,
            # without `round(v, 2)` (a decimal conversion): x and y of boxes and polygons
            # are on datumaro's grid already (round2 or np.around outputs, k / 100.0), so
            # round(v, 2) gives them back; their widths are differences of grid values
            # within 1e-6 of one (all values under `_GRID`), where round(v, 2) and round2
            # agree; a mask's box is whole numbers.
            if kind == _BOX:
                bbox, area = boxes[data]
            elif kind == _POLYGON:
                start, end = polygon_starts[data], polygon_starts[data + 1]
                bbox = polygon_boxes[data]
                area = float(polygon_areas[data])
                if mask_mode or attributes.get("is_crowd") is True:
                    counts = polygons.counts_of(data)
                    segmentation = {"counts": _json_ints(counts), "size": [h, w]}
                    crowd = 1
                else:
                    segmentation = [listed[start:end]]
            else:
                counts, (x, y, bw, bh), pixels = masks[data] if isinstance(data, int) else data
                is_crowd = attributes.get("is_crowd", _MISSING)
                if not (mask_mode or is_crowd is _MISSING or is_crowd is True):
                    # a mask to be written as polygons: the general path traces it
                    part = _Part(_MASK, shape, info, (x, y, bw, bh), counts=counts.tolist())
                    out.append(self._instance([part], frame, image_id))
                    continue
                segmentation = {"counts": _json_ints(counts), "size": [h, w]}
                crowd = 1
                bbox = [x, y, (x + bw) - x, (y + bh) - y]
                area = float(pixels)
            element: Element = {
                "id": 0,
                "image_id": image_id,
                "category_id": info.category_id,
                "segmentation": segmentation,
                "area": area,
                "bbox": bbox,
                "iscrowd": crowd,
            }
            if info.special:
                self._finish(element, shape, attributes)
            else:  # what _finish does when no attribute is named score or is_crowd
                if shape.source == "auto" and shape.score is not None:
                    element["score"] = float(shape.score)
                element["attributes"] = attributes
            out.append(element)
        out.extend(self._instance(group, frame, image_id) for group in groups)
        return out

    # - parts

    def _parts(self, shapes: Sequence[Shape], frame: FrameInfo) -> list[_Part]:
        parts = []
        for shape in shapes:
            info = self._labels.by_id.get(shape.label_id)
            if info is not None:
                part = self._part(shape, info, frame.height, frame.width)
                if part is not None:
                    parts.append(part)
        return parts

    @staticmethod
    def _part(shape: Shape, info: _LabelInfo, h: int, w: int) -> _Part | None:
        points = shape.points
        if shape.type == "rectangle":
            if len(points) != 4:
                return None
            x0, y0, x1, y1 = (float(v) for v in points)
            # dm.Bbox(x0, y0, x1 - x0, y1 - y0) stores [x, y, x + w, y + h], rounded.
            box = [round2(x0), round2(y0), round2(x0 + (x1 - x0)), round2(y0 + (y1 - y0))]
            bbox = (box[0], box[1], box[2] - box[0], box[3] - box[1])
            return _Part(_BOX, shape, info, bbox, points=box)
        if shape.type == "polygon":
            if len(points) < 6 or len(points) % 2:
                return None
            rounded: list[float] = np.around(np.asarray(points, np.float64), 2).tolist()
            bbox = _points_bbox(rounded[0::2], rounded[1::2])
            return _Part(_POLYGON, shape, info, bbox, points=rounded)
        if shape.type == "mask":
            rle = mask_rle(points, h, w)
            return _Part(_MASK, shape, info, _rle_bbox(rle), counts=_counts(rle))
        if shape.type == "ellipse":
            if len(points) != 4 or points[2] < points[0] or points[3] > points[1]:
                return None
            rle = ellipse_rle(points, shape.rotation, h, w)
            return _Part(_MASK, shape, info, _rle_bbox(rle), counts=_counts(rle))
        return None

    # - entries

    def _attributes(self, shape: Shape, info: _LabelInfo) -> dict[str, Any]:
        """The datumaro attributes CVAT gives a shape (`_convert_shape`)."""
        given = shape.attributes
        if given:
            out: dict[str, Any] = {}
            for name, input_type, default in info.attributes:
                value = given.get(name)
                out[name] = default if value is None else attribute_value(input_type, value)
        else:
            out = info.defaults.copy()
        out["occluded"] = shape.occluded
        if shape.type == "rectangle":
            out["rotation"] = float(shape.rotation)
        if shape.track_id is not None:
            out["track_id"] = shape.track_id
            out["keyframe"] = shape.keyframe
        if shape.type == "skeleton":
            out["keyframe"] = shape.track_id is not None and any(
                element.keyframe for element in shape.elements
            )
        return out

    @staticmethod
    def _finish(element: Element, shape: Shape, attributes: dict[str, Any]) -> Element:
        """Add `score` and `attributes` as datumaro's `convert_instance` does."""
        score = attributes.get("score", _MISSING)
        if score is not _MISSING:
            with contextlib.suppress(TypeError, ValueError):  # datumaro logs, leaves it out
                element["score"] = float(score)
        elif shape.source == "auto" and shape.score is not None:
            element["score"] = float(shape.score)
        extra = {k: v for k, v in attributes.items() if k not in _SPECIAL}
        if extra:
            element["attributes"] = extra
        return element

    def _instance(self, group: list[_Part], frame: FrameInfo, image_id: int) -> Element:
        h, w = frame.height, frame.width
        boxes = [p for p in group if p.kind == _BOX]
        polygons = [p for p in group if p.kind == _POLYGON]
        masks = [p for p in group if p.kind == _MASK]
        leader = _leader(group)
        bbox = _max_bbox([p.bbox for p in boxes + polygons + masks])
        attributes = self._attributes(leader.shape, leader.info)
        if self._mask_mode:
            use_masks = True
        else:
            crowd = attributes.get("is_crowd", _MISSING)
            if crowd is _MISSING:
                use_masks = any(p.info is leader.info for p in masks)
            else:
                use_masks = crowd is True

        segmentation: Any = []
        crowd_flag = 0
        if use_masks:
            rles: list[RLELike] = [{"size": [h, w], "counts": p.counts} for p in masks]
            if polygons:
                rles.append(from_polygons([p.points or [] for p in polygons], h, w))
            if rles:
                if len(rles) > 1:
                    counts = _counts(merge_rles(rles))
                elif masks:
                    counts = masks[0].counts or []
                else:
                    counts = _counts(rles[0])
                segmentation = {"counts": counts, "size": [h, w]}
                instance_area = float(_pixels(counts))
                crowd_flag = 1
        else:
            rings = [p.points or [] for p in polygons]
            if masks:
                merged = merge_rles([{"size": [h, w], "counts": p.counts} for p in masks])
                rings += [
                    ring.tolist()
                    for ring in mask_to_polygons(decode(merged))
                    if _signed_area(ring) > 0  # outer boundaries; COCO unions the polygons
                ]
            if rings:
                segmentation = rings
                instance_area = float(area(from_polygons(rings, h, w)))
        if not segmentation:
            instance_area = bbox[2] * bbox[3]
        element: Element = {
            "id": 0,
            "image_id": image_id,
            "category_id": leader.info.category_id,
            "segmentation": segmentation,
            "area": float(instance_area),
            "bbox": [round(float(v), 2) for v in bbox],
            "iscrowd": crowd_flag,
        }
        return self._finish(element, leader.shape, attributes)

    # - skeletons

    def _skeleton(self, skeleton: Shape, image_id: int) -> Element:
        """A skeleton alone: datumaro's `convert_instance` of [skeleton, [], None, bbox]."""
        info = self._labels.by_id[skeleton.label_id]
        visible = [e for e in skeleton.elements if not e.outside and len(e.points) >= 2]
        if visible:
            bbox = _points_bbox(
                [round2(float(e.points[0])) for e in visible],
                [round2(float(e.points[1])) for e in visible],
            )
        else:
            bbox = (0.0, 0.0, 0.0, 0.0)
        element: Element = {
            "id": 0,
            "image_id": image_id,
            "category_id": info.category_id,
            "segmentation": [],
            "area": float(bbox[2] * bbox[3]),
            "bbox": [round(float(v), 2) for v in bbox],
            "iscrowd": 0,
        }
        self._finish(element, skeleton, self._attributes(skeleton, info))
        element.update(self._keypoints_of(skeleton))
        return element

    def _keypoints_of(self, skeleton: Shape) -> Element:
        info = self._labels.by_id[skeleton.label_id]
        slots: list[Shape | None] = [None] * len(info.keypoints)
        for point in skeleton.elements:
            position = info.positions.get(point.label_id)
            if position is not None and len(point.points) >= 2:
                slots[position] = point
        keypoints: list[float | int] = []
        annotated = 0
        for slot in slots:
            if slot is None:
                keypoints += [0.0, 0.0, 0]
                continue
            visibility = 0 if slot.outside else 1 if slot.occluded else 2
            annotated += visibility != 0
            keypoints += [round2(float(slot.points[0])), round2(float(slot.points[1]))]
            keypoints.append(visibility)
        return {"keypoints": keypoints, "num_keypoints": annotated}


def _instances(parts: list[_Part]) -> list[list[_Part]]:
    """datumaro's `find_instances`: each ungrouped part alone, then the groups in order."""
    singles = [[p] for p in parts if not p.shape.group]
    groups: dict[int, list[_Part]] = {}
    for part in parts:
        if part.shape.group:
            groups.setdefault(part.shape.group, []).append(part)
    return singles + [groups[key] for key in sorted(groups)]


def _leader(group: list[_Part]) -> _Part:
    """The part with the largest area, the first of boxes, polygons, masks on a tie."""
    if len(group) == 1:
        return group[0]
    ordered = sorted(group, key=lambda p: p.kind)
    return max(ordered, key=_Part.area)


def _signed_area(ring: Any) -> float:
    xs, ys = ring[0::2], ring[1::2]
    return float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))


# --- output --------------------------------------------------------------------------------


def _file_name(name: str) -> str:
    """datumaro's image file name: the item id (name without extension) plus the
    extension of the media path, or ".jpg" when it has none."""
    root, ext = os.path.splitext(name)
    return root + (ext or _DEFAULT_EXT)


def _shift_id(line: bytes, by: int) -> bytes:
    """Add `by` to the id at the start of a serialised image entry."""
    start = end = len(_IMAGE_START)
    while line[end : end + 1].isdigit():
        end += 1
    return line[:start] + str(int(line[start:end]) + by).encode() + line[end:]


def _shift_image_ids(line: bytes, by: int) -> bytes:
    """Add `by` to the image id of each annotation entry in a frame's line."""
    return _ENTRY_START.sub(lambda found: found[1] + str(int(found[2]) + by).encode() + b",", line)


class _Subset:
    """One subset's images and annotations, spooled until its member is written.

    Images are one JSON object a line, annotations one line a frame (its entries with
    commas between them). Image ids are counted from 1 within the subset and shifted when
    the member is written, once the sizes of the subsets before it are known.
    """

    def __init__(self, name: str, images: IO[bytes], annotations: IO[bytes]) -> None:
        self.name = name
        self.images = 0
        self.annotations = 0
        self._images = images
        self._annotations = annotations

    def add_image(self, frame: FrameInfo) -> int:
        self.images += 1
        entry = {
            "id": self.images,
            "width": frame.width,
            "height": frame.height,
            "file_name": _file_name(frame.name),
            "license": 0,
            "flickr_url": "",
            "coco_url": "",
            "date_captured": 0,
        }
        self._images.write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
        return self.images

    def add_annotations(self, elements: list[Element]) -> None:
        """A frame's entries, numbered on from the last, as one line."""
        for element in elements:
            self.annotations += 1
            element["id"] = self.annotations
        self._annotations.write(orjson.dumps(elements)[1:-1] + b"\n")

    def images_json(self, first_id: int) -> Iterator[bytes]:
        """The image entries as the items of a JSON array, in chunks, ids from `first_id`."""
        return _items(self._images, _shift_id, first_id - 1)

    def annotations_json(self, first_id: int) -> Iterator[bytes]:
        """The annotation entries likewise, their images' ids counted from `first_id`."""
        return _items(self._annotations, _shift_image_ids, first_id - 1)


def _items(spool: IO[bytes], shifted: Callable[[bytes, int], bytes], shift: int) -> Iterator[bytes]:
    """The spooled lines as the items of a JSON array (commas between them), in chunks,
    with `shift` added to their image ids by `shifted`."""
    size = spool.tell()
    if not size:
        return
    spool.seek(0)
    if not shift:
        left = size - 1  # the last newline closes the array instead of separating
        while left > 0:
            chunk = spool.read(min(_COPY_BYTES, left))
            left -= len(chunk)
            yield chunk.replace(b"\n", b",")
        return
    batch: list[bytes] = []
    pending = 0
    first = True
    for line in spool:
        batch.append(shifted(line[:-1], shift))
        pending += len(line)
        if pending >= _COPY_BYTES:
            yield (b"" if first else b",") + b",".join(batch)
            first = False
            batch.clear()
            pending = 0
    if batch:
        yield (b"" if first else b",") + b",".join(batch)
