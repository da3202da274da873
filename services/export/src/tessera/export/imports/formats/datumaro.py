"""Datumaro 1.0 import, as CVAT 2.80 reads it.

CVAT imports it through its datumaro fork (cvat/apps/dataset_manager/formats/datumaro.py:
`Dataset.import_from(dir, "datumaro")`, read by datumaro/plugins/datumaro_format/
extractor.py) and then cvat/apps/dataset_manager/bindings.py (`import_dm_annotations`,
`match_dm_item`). This reader follows those files.

Layout: a zip with `annotations/<subset>.json`, one per subset (any JSON file in a folder
named `annotations`, as datumaro finds them), all read; a single JSON file (or a zip
holding one JSON file at its top) is read too (CVAT takes only a zip). Each file is an
object with `categories` and `items` (`info` is not needed).

What is read:
- categories: `label.labels` (`{name, parent}`; annotations name labels by their index
  here). The label list (`ParsedAnnotations.labels`) is the names without a parent; those
  with one are a skeleton's points. `points.items` (`{label_id, labels}`) name a
  skeleton's points in order, for skeletons written as `points` triplets.
- subsets: a file's name (`annotations/<subset>.json`; none for a lone JSON file), on its
  items (`ParsedAnnotations.items`, annotated or not) and their annotations.
- items: `id`, `annotations`, `attr.frame`, `image.path`. The frame ref is the id, with
  the extension of the image's path added when the item has an image (`<id>.jpg` when its
  path is empty), as CVAT matches it; the item's `attr.frame`, when it is an integer, goes
  to `ParsedAnnotations.frame_names` with that ref (CVAT falls back to it when no frame
  has the name).
- annotations, by `type`, each with `label_id`, `group`, `z_order` and `attributes`:
  `label` a tag; `bbox` [x, y, w, h] a rectangle; `polygon` (at least 3 points),
  `polyline`, `points` flat `points` (a points shape keeps every point, whatever its
  `visibility`, as CVAT does); `mask` an RLE (`rle.counts` the compressed string or a
  list, `rle.size` [h, w]) converted to CVAT's mask without decoding the frame (an empty
  one is skipped); `cuboid_3d` (`position`, `rotation`, `scale`) a cuboid of 16 numbers;
  `skeleton` either with `elements` (points annotations with their own `label_id`,
  `points` [x, y], `visibility` [v] and attributes; what Tessera's writer makes) or with
  `points` (x, y, v triplets in the order of the skeleton's `points` category) and
  `points_attributes` (what CVAT's fork writes since July 2024); v 0 is outside, 1
  occluded, 2 visible. `caption`, `cuboid_2d`, `hash_key`, `super_resolution_annotation`
  and `depth_annotation` carry nothing CVAT imports and are skipped.
- attributes, groups and tracks as the COCO reader reads them (`coco.split_attributes`,
  `coco.Assembler`): `occluded`, `rotation`, `outside`, `source` fill the shape's fields;
  `track_id` with `keyframe` makes the annotation a frame of a track (tracks are gathered
  across all files, shapes in the order of their items); per frame, the groups held by
  more than one shape are numbered 1, 2, ... in the order of the file's group numbers, and
  a tag keeps its group only when shapes of its frame share it, as CVAT numbers them.

Where this reader differs from CVAT:
- coordinates are kept as written (datumaro rounds them to 2 decimals);
- `keyframe`, `track_id`, `occluded`, `outside`, `rotation` and `source` fill fields
  only, on every annotation and skeleton point (CVAT leaves `keyframe`, and a point's
  track_id and keyframe, among the attributes);
- `ellipse` (upstream datumaro's: `points` [x1, y1, x2, y2] of its box) is read as an
  ellipse; CVAT's fork has no such type and fails the import;
- an upload of one JSON file is read; CVAT's importer wants a zip.

Hostile input fails with `ImportFailed` naming the file, the item, the annotation and the
problem: malformed JSON, a file without `categories` and `items`, wrong field types,
non-numeric or non-finite coordinates, a `label_id` outside the label list, RLE counts
that do not cover the mask's size, an unknown annotation type.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Final

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.formats.coco import (
    Assembler,
    Attributes,
    Entry,
    Invalid,
    Obj,
    as_int,
    as_list,
    as_number,
    as_numbers,
    as_object,
    as_points,
    as_str,
    box_points,
    get,
    json_members,
    load_object,
    mask_points,
    shape_of,
    skeleton_point,
    split_attributes,
)
from tessera.export.imports.model import (
    FrameRef,
    ParsedAnnotations,
    ParsedShape,
    ParsedTag,
    ShapeType,
)

ANNOTATIONS_DIR: Final = "annotations"
DEFAULT_IMAGE_EXT: Final = ".jpg"

_KEYS: Final = ("categories", "items")
_SKIPPED_TYPES: Final = frozenset(
    {"caption", "cuboid_2d", "hash_key", "super_resolution_annotation", "depth_annotation"}
)
_MIN_POINTS: Final = {"polygon": 3, "polyline": 1, "points": 1}


def read_datumaro(files: ImportFiles) -> ParsedAnnotations:
    """Read Datumaro 1.0 (`annotations/<subset>.json`, or one JSON file)."""
    wanted = [
        name
        for name in files.names()
        if name.lower().endswith(".json")
        and posixpath.basename(posixpath.dirname(name)) == ANNOTATIONS_DIR
    ]
    members = json_members(files, wanted, "annotations/<subset>.json", "Datumaro 1.0")
    assembler = Assembler()
    for name in members:
        in_folder = posixpath.basename(posixpath.dirname(name)) == ANNOTATIONS_DIR
        assembler.subset = posixpath.splitext(posixpath.basename(name))[0] if in_folder else ""
        _DatumaroFile(name, load_object(files, name, _KEYS)).read(assembler)
    return assembler.finish()


@dataclass(frozen=True, slots=True)
class _Label:
    name: str
    parent: str


class _DatumaroFile:
    """One Datumaro JSON file."""

    def __init__(self, name: str, data: Obj) -> None:
        self._name = name
        try:
            categories = as_object(get(data, "categories"), "'categories'")
            self._items = as_list(get(data, "items"), "'items'")
            self._labels = self._read_labels(categories.get("label"))
            self._skeletons = self._read_skeletons(categories.get("points"))
        except Invalid as exc:
            raise ImportFailed(f"{name}: {exc}") from None

    def _read_labels(self, raw: object) -> list[_Label]:
        if raw is None:
            return []
        labels = as_list(get(as_object(raw, "'categories.label'"), "labels"), "its labels")
        out = []
        for index, entry in enumerate(labels):
            try:
                label = as_object(entry, "the label")
                name = as_str(get(label, "name"), "its name")
                parent = as_str(label.get("parent") or "", "its parent")
            except Invalid as exc:
                raise Invalid(f"label {index}: {exc}") from None
            out.append(_Label(name, parent))
        return out

    def _read_skeletons(self, raw: object) -> dict[int, list[str]]:
        if raw is None:
            return {}
        items = as_list(get(as_object(raw, "'categories.points'"), "items"), "its items")
        out = {}
        for index, entry in enumerate(items):
            try:
                item = as_object(entry, "the points category")
                label_id = as_int(get(item, "label_id"), "its label_id")
                names = as_list(get(item, "labels"), "its labels")
                out[label_id] = [as_str(name, "a point's name") for name in names]
            except Invalid as exc:
                raise Invalid(f"points category {index}: {exc}") from None
        return out

    def read(self, assembler: Assembler) -> None:
        """Add the file's labels and items, in the file's order."""
        for label in self._labels:
            if not label.parent:
                assembler.add_label(label.name)
        for index, raw in enumerate(self._items):
            where = f"item {index}"
            try:
                item = as_object(raw, "the item")
                item_id = get(item, "id")
                if type(item_id) is int:
                    item_id = str(item_id)
                where += f" ({as_str(item_id, 'its id')!r})"
                frame = self._frame_ref(item, item_id, assembler.result)
                annotations = as_list(item.get("annotations", []), "its annotations")
                assembler.add_item(str(frame))
            except Invalid as exc:
                raise ImportFailed(f"{self._name}: {where}: {exc}") from None
            entries: list[Entry] = []
            for position, ann in enumerate(annotations):
                try:
                    self._annotation(as_object(ann, "the annotation"), frame, entries)
                except Invalid as exc:
                    raise ImportFailed(
                        f"{self._name}: {where}: annotation {position}: {exc}"
                    ) from None
            if entries:
                assembler.add_frame(entries)

    @staticmethod
    def _frame_ref(item: Obj, item_id: str, result: ParsedAnnotations) -> FrameRef:
        ref = item_id
        image = item.get("image")
        if image:
            path = as_object(image, "its image").get("path") or item_id + DEFAULT_IMAGE_EXT
            ref = item_id + posixpath.splitext(as_str(path, "its image path"))[1]
        attr = item.get("attr")
        if type(attr) is dict and type(attr.get("frame")) is int:
            result.frame_names.setdefault(attr["frame"], ref)
        return ref

    def _label(self, label_id: object) -> _Label:
        index = as_int(label_id, "label_id")
        if not 0 <= index < len(self._labels):
            raise Invalid(f"label_id {index} is not among the file's {len(self._labels)} labels")
        return self._labels[index]

    def _annotation(self, ann: Obj, frame: FrameRef, entries: list[Entry]) -> None:
        kind = as_str(get(ann, "type"), "type")
        if kind in _SKIPPED_TYPES:
            return
        label = self._label(ann.get("label_id"))
        attributes = split_attributes(ann.get("attributes"))
        group = ann.get("group")
        group = 0 if group is None else as_int(group, "group")
        if kind == "label":
            entries.append(Entry(ParsedTag(label.name, frame, attributes=attributes.values), group))
            return
        z_order = ann.get("z_order")
        z_order = 0 if z_order is None else as_int(z_order, "z_order")
        shape = self._shape(kind, ann, label, frame, attributes, z_order=z_order)
        if shape is not None:
            entries.append(Entry(shape, group, attributes.track))

    def _shape(
        self,
        kind: str,
        ann: Obj,
        label: _Label,
        frame: FrameRef,
        attributes: Attributes,
        *,
        z_order: int,
    ) -> ParsedShape | None:
        def make(shape_type: ShapeType, points: list[float]) -> ParsedShape:
            return shape_of(shape_type, label.name, points, frame, attributes, z_order=z_order)

        match kind:
            case "bbox":
                return make("rectangle", box_points(get(ann, "bbox"), "bbox"))
            case "polygon" | "polyline" | "points":
                return make(kind, as_points(get(ann, "points"), "points", _MIN_POINTS[kind]))
            case "mask":
                points = mask_points(as_object(get(ann, "rle"), "rle"), None, "rle")
                return None if points is None else make("mask", points)
            case "ellipse":
                x1, y1, x2, y2 = _four(get(ann, "points"), "points")
                return make("ellipse", [(x1 + x2) / 2, (y1 + y2) / 2, x2, y1])
            case "cuboid_3d":
                values = [
                    value
                    for key in ("position", "rotation", "scale")
                    for value in _three(get(ann, key), key)
                ]
                return make("cuboid", [*values, *[0.0] * 7])
            case "skeleton":
                skeleton = make("skeleton", [])
                skeleton.elements = self._elements(ann, label, skeleton)
                return skeleton
            case _:
                raise Invalid(f"type {kind!r} is not an annotation type of Datumaro 1.0")

    def _elements(self, ann: Obj, label: _Label, skeleton: ParsedShape) -> list[ParsedShape]:
        if "elements" in ann:
            return [
                self._element(as_object(raw, f"element {index}"), skeleton, index)
                for index, raw in enumerate(as_list(ann["elements"], "elements"))
            ]
        values = as_numbers(get(ann, "points"), "points")
        if len(values) % 3:
            raise Invalid(f"points must be x, y, v triplets, not {len(values)} numbers")
        attributes = as_list(ann.get("points_attributes", []), "points_attributes")
        if len(attributes) != len(values) // 3:
            raise Invalid(
                f"{len(values) // 3} points but {len(attributes)} points_attributes entries"
            )
        index = as_int(get(ann, "label_id"), "label_id")
        names = self._skeletons.get(index)
        if names is None:
            raise Invalid(f"skeleton {label.name!r} has no points category naming its points")
        return [
            skeleton_point(
                skeleton,
                name,
                (values[3 * i], values[3 * i + 1], values[3 * i + 2]),
                split_attributes(attributes[i]).values,
            )
            for i, name in zip(range(len(values) // 3), names, strict=False)
        ]

    def _element(self, element: Obj, skeleton: ParsedShape, index: int) -> ParsedShape:
        kind = element.get("type", "points")
        if kind != "points":
            raise Invalid(f"element {index} must be of type 'points', not {kind!r}")
        label = self._label(element.get("label_id"))
        point = as_points(get(element, "points"), f"element {index} points", 1)
        if len(point) != 2:
            raise Invalid(f"element {index} must hold one point, not {len(point) // 2}")
        x, y = point
        visibility = as_list(element.get("visibility") or [2], f"element {index} visibility")
        v = as_number(visibility[0], f"element {index} visibility")
        values = split_attributes(element.get("attributes")).values
        return skeleton_point(skeleton, label.name, (x, y, v), values)


def _four(raw: object, what: str) -> tuple[float, float, float, float]:
    values = as_numbers(raw, what)
    if len(values) != 4:
        raise Invalid(f"{what} must hold 4 numbers, not {len(values)}")
    return values[0], values[1], values[2], values[3]


def _three(raw: object, what: str) -> list[float]:
    values = as_numbers(raw, what)
    if len(values) != 3:
        raise Invalid(f"{what} must hold 3 numbers, not {len(values)}")
    return values


__all__ = ["read_datumaro"]
