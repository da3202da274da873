"""COCO 1.0 and COCO Keypoints 1.0 import, as CVAT 2.80 reads them.

CVAT imports both through its datumaro fork (cvat/apps/dataset_manager/formats/coco.py:
`coco_instances` / `coco_person_keypoints`, read by datumaro/plugins/coco_format/
extractor.py) and then cvat/apps/dataset_manager/bindings.py (`import_dm_annotations`).
This reader follows those files.

Layout: a zip with `annotations/instances_<subset>.json` (keypoints:
`annotations/person_keypoints_<subset>.json`), one per subset, all read; or a single JSON
file of any name (CVAT takes a bare JSON too; a zip holding one JSON file at its top is
read the same way). Each file is an object with `categories`, `images` and
`annotations`.

What is read:
- categories: `id` and `name`; the label list (`ParsedAnnotations.labels`) is the names
  by category id, leaving out the categories whose `supercategory` names another category
  (CVAT writes a skeleton's points that way). Keypoints files: each category's
  `keypoints` names its skeleton's points in order (`skeleton` is not needed).
- images: `id`, `file_name` (the frame ref, as written), `width` and `height` (to check
  masks against).
- subsets: the `<subset>` of a file's name (none for another name), on its images (each
  an item of `ParsedAnnotations.items`, annotated or not) and its annotations.
- annotations: `image_id`, `category_id` (the label), `id` (the group, below),
  `segmentation`, `bbox`, `score` (`ParsedShape.score`), `attributes`, and in keypoints
  files `keypoints`.
  - `segmentation` polygons (a list of flat lists): one polygon per part; an empty
    segmentation (`[]` or `[[]]`) makes a rectangle of `bbox` [x, y, w, h] instead.
  - `segmentation` RLE (`counts` a list of run lengths or COCO's compressed string,
    `size` [h, w]): a mask, converted from the RLE without decoding the frame; counts must
    cover h * w pixels and the size must be the image's. An empty mask is skipped.
  - keypoints files: non-empty `keypoints` [x, y, v, ...] make a skeleton, one point
    per category keypoint name in order (v 0 outside, 1 occluded, 2 visible). Its
    segmentation, if any, gives polygons or a mask of the same label in the skeleton's
    group; its box is dropped (CVAT drops every box of a keypoints file).
- attributes: `occluded`, `rotation`, `outside`, `source` ("auto" marks a model's shape)
  fill the shape's fields; `track_id` with `keyframe` makes the annotation a frame of a
  track (below); every other value is kept as text ("true"/"false" for booleans).
- groups, as CVAT: the parts of one annotation share its `id` as a group; per frame, the
  groups that hold more than one shape are numbered 1, 2, ... in id order, and the rest
  get no group (a one-part annotation has group 0).
- tracks, as CVAT's bindings for the formats it lists as carrying tracks (COCO among
  them): annotations with the same `track_id` that also carry `keyframe` are one track,
  its shapes in the order of their images in the file (keyframe as the file says;
  `outside` from the attribute). A skeleton track's points are tracks of their own, by
  point name. The track's label and group are those of its first shape. The frames are
  passed on as the file has them: CVAT's clean-up of track shapes afterwards
  (`_validate_track_shapes`: the first visible frame and each change of visibility made
  keyframes, an outside keyframe added after a gap and after the last frame) needs the
  task's frame numbers and step, so it is the matcher's.

Where this reader differs from CVAT:
- coordinates are kept as written (datumaro rounds every coordinate to 2 decimals);
- CVAT adds `is_crowd` and `score` to every shape's attributes (and leaves `keyframe`
  there), then drops the names the label lacks; here `score` is only the shape's score,
  `iscrowd` is not an attribute (an RLE already imports as a mask), and `keyframe`,
  `track_id`, `occluded`, `outside`, `rotation` and `source` fill fields only;
- lenient where CVAT fails on a missing field that carries nothing needed: an annotation
  without `id` (a results file) is its own group, without `iscrowd` or `segmentation` is
  read as not crowded / a box, a keypoints annotation without `keypoints` has no
  skeleton, a keypoints category without `keypoints` has no points; points past the
  names of their category are dropped (CVAT fails the import: its own export of a
  skeleton grouped with a box names the box's category, which has no keypoints; here that
  skeleton comes through without points, for the matcher to report); the size of a mask
  is checked against its image for compressed counts too, and only where the image gives
  both `width` and `height`;
- a zip is searched for `instances_*.json` (`person_keypoints_*.json`) by file name in any
  folder; CVAT reads every `*_*.json` of the archive whose name does not start with
  another COCO task's name (after finding an `annotations/<task>_*.json`). A dataset
  meta file (`dataset_meta.json`) is not read.
- an image id listed twice, or a category id declared twice, fails (datumaro keeps the
  last one).

Hostile input fails with `ImportFailed` naming the file, the annotation and the problem:
malformed JSON, wrong field types, non-numeric or non-finite coordinates, polygons of odd
length or fewer than 3 points, RLE counts that do not cover the mask's size, keypoints
that are not triplets, annotations naming an unknown image or category.

Cost: each file is parsed once (orjson); per annotation only its own numbers are checked
and converted, and masks go from RLE to CVAT's runs directly
(`tessera.geometry.rle_to_cvat_mask`), with no frame-sized bitmap. The `Assembler`,
`split_attributes` and the typed field helpers here are shared with the Datumaro reader.
"""

from __future__ import annotations

import math
import posixpath
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.model import (
    FrameRef,
    ParsedAnnotations,
    ParsedItem,
    ParsedShape,
    ParsedTag,
    ParsedTrack,
    ShapeType,
)
from tessera.geometry import rle_to_cvat_mask

INSTANCES_PREFIX: Final = "instances_"
KEYPOINTS_PREFIX: Final = "person_keypoints_"

Obj = dict[str, Any]
Source = Literal["file", "auto"]
TrackKey = int | str

_MISSING: Final = object()
_EMPTY_RLE: Final = "rle is empty"
"""How `rle_to_cvat_mask` starts its message for a mask without pixels."""
_BOOKKEEPING: Final = frozenset(
    {"occluded", "outside", "rotation", "track_id", "keyframe", "source"}
)
_NUMBER_TYPES: Final = frozenset({int, float})
_JSON_KINDS: Final[dict[type, str]] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


# --- typed field access (shared with the Datumaro reader) ----------------------------------


class Invalid(Exception):
    """A value of the wrong form; the reader adds where it was (file, annotation)."""


def describe(value: object) -> str:
    """A JSON value's kind, for messages."""
    return _JSON_KINDS.get(type(value), type(value).__name__)


def get(obj: Obj, key: str, default: object = _MISSING) -> Any:
    """`obj[key]`; Invalid when it is missing and no default is given."""
    value = obj.get(key, default)
    if value is _MISSING:
        raise Invalid(f"has no {key!r}")
    return value


def as_object(value: object, what: str) -> Obj:
    """A JSON object, else Invalid."""
    if type(value) is not dict:
        raise Invalid(f"{what} must be an object, not {describe(value)}")
    return value


def as_list(value: object, what: str) -> list[Any]:
    """A JSON array, else Invalid."""
    if type(value) is not list:
        raise Invalid(f"{what} must be an array, not {describe(value)}")
    return value


def as_int(value: object, what: str) -> int:
    """A JSON integer, else Invalid."""
    if type(value) is not int:
        raise Invalid(f"{what} must be an integer, not {describe(value)} {value!r}")
    return value


def as_str(value: object, what: str) -> str:
    """A JSON string, else Invalid."""
    if type(value) is not str:
        raise Invalid(f"{what} must be a string, not {describe(value)}")
    return value


def as_number(value: object, what: str) -> float:
    """A finite JSON number as a float, else Invalid."""
    if type(value) is float:
        number = value
    elif type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            raise Invalid(f"{what} is too large: {value}") from None
    else:
        raise Invalid(f"{what} must be a number, not {describe(value)} {value!r}")
    if not math.isfinite(number):
        raise Invalid(f"{what} must be finite, not {number}")
    return number


def as_numbers(value: object, what: str) -> list[float]:
    """A JSON array of finite numbers as floats, else Invalid."""
    values = as_list(value, what)
    if not set(map(type, values)) <= _NUMBER_TYPES:
        bad = next(v for v in values if type(v) not in _NUMBER_TYPES)
        raise Invalid(f"{what} must hold numbers only, not {describe(bad)} {bad!r}")
    try:
        finite = math.isfinite(math.fsum(values))
        numbers = list(map(float, values))
    except OverflowError:
        raise Invalid(f"{what} holds numbers too large for coordinates") from None
    if not finite:
        raise Invalid(f"{what} must hold finite numbers only")
    return numbers


def as_points(value: object, what: str, minimum: int) -> list[float]:
    """Flat [x, y, ...] of at least `minimum` points, else Invalid."""
    numbers = as_numbers(value, what)
    if len(numbers) % 2:
        raise Invalid(f"{what} must hold x, y pairs, not {len(numbers)} numbers")
    if len(numbers) < 2 * minimum:
        raise Invalid(f"{what} must hold at least {minimum} points, not {len(numbers) // 2}")
    return numbers


def box_points(value: object, what: str) -> list[float]:
    """[x1, y1, x2, y2] of an [x, y, w, h] box, else Invalid."""
    numbers = as_numbers(value, what)
    if len(numbers) != 4:
        raise Invalid(f"{what} must be [x, y, w, h], not {len(numbers)} numbers")
    x, y, w, h = numbers
    return [x, y, x + w, y + h]


def mask_points(rle: Obj, image_size: tuple[int, int] | None, what: str) -> list[float] | None:
    """CVAT's mask points of a COCO RLE (`counts` run lengths or the compressed string,
    `size` [h, w]), checked against the image's (height, width) when known; None for an
    empty mask."""
    size = as_list(get(rle, "size"), f"{what} size")
    if len(size) != 2:
        raise Invalid(f"{what} size must be [h, w], not {len(size)} values")
    h, w = as_int(size[0], f"{what} height"), as_int(size[1], f"{what} width")
    if image_size is not None and (h, w) != image_size:
        raise Invalid(f"{what} is {h}x{w} (h x w) but its image is {image_size[0]}x{image_size[1]}")
    counts = get(rle, "counts")
    if type(counts) is not list and type(counts) is not str:
        raise Invalid(f"{what} counts must be an array or a string, not {describe(counts)}")
    try:
        runs = rle_to_cvat_mask({"size": [h, w], "counts": counts})
    except (ValueError, TypeError) as exc:
        if str(exc).startswith(_EMPTY_RLE):
            return None
        raise Invalid(f"{what}: {exc}") from None
    return list(map(float, runs))


def attribute_text(value: object, name: str) -> str | None:
    """An attribute value as text (CVAT's `str(value)`, booleans as "true"/"false"); None
    for null."""
    if value is None:
        return None
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is str:
        return value
    if type(value) is int or type(value) is float:
        return str(value)
    raise Invalid(f"attribute {name!r} must be a string, number or boolean, not {describe(value)}")


def to_bool(value: object) -> bool:
    """A flag as CVAT casts it: booleans, non-zero numbers, "true" in any case."""
    if type(value) is bool:
        return value
    if type(value) is int or type(value) is float:
        return value != 0
    return type(value) is str and value.strip().lower() == "true"


@dataclass(slots=True)
class Attributes:
    """An annotation's `attributes`, its bookkeeping values read into fields."""

    values: dict[str, str] = field(default_factory=dict)
    occluded: bool = False
    outside: bool = False
    rotation: float = 0.0
    track: TrackKey | None = None
    """The `track_id`, when the annotation also says whether it is a `keyframe`."""
    keyframe: bool = True
    source: Source = "file"


def split_attributes(raw: object) -> Attributes:
    """An annotation's attributes object (or null) as `Attributes`."""
    if raw is None:
        return Attributes()
    obj = as_object(raw, "attributes")
    values: dict[str, str] = {}
    special = 0
    for name, value in obj.items():
        if name in _BOOKKEEPING:
            special += 1
        elif type(value) is str:
            values[name] = value
        else:
            text = attribute_text(value, name)
            if text is not None:
                values[name] = text
    result = Attributes(values)
    if not special:
        return result
    result.occluded = to_bool(obj.get("occluded"))
    rotation = obj.get("rotation")
    if rotation:
        if type(rotation) is str:
            try:
                rotation = float(rotation)
            except ValueError:
                raise Invalid(f"attribute 'rotation' must be a number, not {rotation!r}") from None
        result.rotation = as_number(rotation, "attribute 'rotation'")
    source = obj.get("source")
    if source is not None:
        result.source = "auto" if type(source) is str and source.lower() == "auto" else "file"
    track = obj.get("track_id")
    if track is not None and "keyframe" in obj:
        if type(track) is not int and type(track) is not str:
            raise Invalid(f"attribute 'track_id' must be an integer, not {describe(track)}")
        result.track = track
        result.keyframe = to_bool(obj["keyframe"])
        result.outside = to_bool(obj.get("outside"))
    return result


# --- frames to shapes, groups and tracks (shared with the Datumaro reader) -----------------


@dataclass(slots=True)
class Entry:
    """A shape or tag of a frame, before its frame's groups are numbered."""

    annotation: ParsedShape | ParsedTag
    group: int
    """The file's group (COCO: the annotation's id); 0 for none."""
    track: TrackKey | None = None


@dataclass(slots=True)
class _Track:
    track: ParsedTrack
    shapes: list[tuple[int, ParsedShape]] = field(default_factory=list)
    elements: dict[str, _Track] = field(default_factory=dict)

    def finish(self) -> ParsedTrack:
        self.shapes.sort(key=lambda pair: pair[0])
        self.track.shapes = [shape for _, shape in self.shapes]
        self.track.elements = [element.finish() for element in self.elements.values()]
        return self.track


class Assembler:
    """Collects a file's frames into `ParsedAnnotations` as CVAT's `import_dm_annotations`
    does: groups numbered per frame, track frames gathered into tracks."""

    def __init__(self) -> None:
        self.result = ParsedAnnotations()
        self._tracks: dict[TrackKey, _Track] = {}
        self._frames = 0
        self.subset = ""
        """The subset of the frames and items added next (the file's)."""

    def add_item(self, name: str) -> None:
        """List an item of the current subset (its frame ref), annotated or not."""
        self.result.items.append(ParsedItem(name, self.subset))

    def add_label(self, name: str) -> None:
        """Declare a label name (once, in order)."""
        if name not in self.result.labels:
            self.result.labels.append(name)

    def add_frame(self, entries: Sequence[Entry]) -> None:
        """A frame's shapes and tags, in the file's order (frames in the file's order)."""
        order = self._frames
        self._frames += 1
        sizes = Counter(e.group for e in entries if e.group and type(e.annotation) is ParsedShape)
        numbered = sorted(group for group, size in sizes.items() if size > 1)
        groups = {group: index + 1 for index, group in enumerate(numbered)}
        subset = self.subset
        for entry in entries:
            item = entry.annotation
            group = groups.get(entry.group, 0) if groups else 0
            item.subset = subset
            if type(item) is ParsedTag:
                item.group = group
                self.result.tags.append(item)
                continue
            assert type(item) is ParsedShape
            item.group = group
            for element in item.elements:
                element.group = group
                element.subset = subset
            if entry.track is None:
                self.result.shapes.append(item)
            else:
                self._add_track_shape(entry.track, item, order)

    def _add_track_shape(self, key: TrackKey, shape: ParsedShape, order: int) -> None:
        parts = self._tracks.get(key)
        if parts is None:
            track = ParsedTrack(shape.label, [], group=shape.group, source=shape.source)
            parts = self._tracks[key] = _Track(track)
        parts.shapes.append((order, shape))
        for element in shape.elements:
            sub = parts.elements.get(element.label)
            if sub is None:
                track = ParsedTrack(element.label, [], source=shape.source)
                sub = parts.elements[element.label] = _Track(track)
            element.keyframe = shape.keyframe
            element.group = 0
            sub.shapes.append((order, element))
        shape.elements = []

    def finish(self) -> ParsedAnnotations:
        """Everything added, tracks with their shapes in frame order."""
        self.result.tracks = [parts.finish() for parts in self._tracks.values()]
        self._tracks = {}
        return self.result


def shape_of(
    kind: ShapeType,
    label: str,
    points: list[float],
    frame: FrameRef,
    attributes: Attributes,
    *,
    z_order: int = 0,
    score: float | None = None,
) -> ParsedShape:
    """A shape with the fields its attributes give (outside and keyframe for tracks)."""
    tracked = attributes.track is not None
    return ParsedShape(  # positional: this runs once per annotation
        kind,
        label,
        points,
        frame,
        attributes.occluded,
        attributes.outside if tracked else False,
        z_order,
        attributes.rotation,
        0,
        attributes.values.copy(),
        [],
        score,
        attributes.source,
        attributes.keyframe if tracked else True,
    )


def skeleton_point(
    skeleton: ParsedShape, label: str, point: tuple[float, float, float], values: dict[str, str]
) -> ParsedShape:
    """A skeleton's point: visibility 0 is outside, 1 occluded, 2 visible."""
    x, y, visibility = point
    if visibility not in (0.0, 1.0, 2.0):
        raise Invalid(f"point visibility must be 0, 1 or 2, not {visibility!r}")
    return ParsedShape(
        "points",
        label,
        [x, y],
        skeleton.frame,
        occluded=visibility == 1,
        outside=visibility == 0,
        z_order=skeleton.z_order,
        attributes=values,
        source=skeleton.source,
    )


def json_members(
    files: ImportFiles, wanted: list[str], expected: str, format_name: str
) -> list[str]:
    """The members to read: `wanted`, else the JSON file of a single-file upload (a lone
    member outside any folder); else ImportFailed saying what was expected."""
    if wanted:
        return wanted
    names = files.names()
    if len(names) == 1 and "/" not in names[0] and names[0].lower().endswith(".json"):
        return names
    raise ImportFailed(f"this is not a {format_name} upload: no {expected} found")


def load_object(files: ImportFiles, name: str, keys: tuple[str, ...]) -> Obj:
    """A member parsed as a JSON object; ImportFailed naming the keys it must have."""
    data = files.load_json(name)
    if type(data) is not dict:
        raise ImportFailed(
            f"{name} must hold a JSON object with {', '.join(keys)}, not {describe(data)}"
        )
    return data


# --- COCO ----------------------------------------------------------------------------------


def read_coco(files: ImportFiles) -> ParsedAnnotations:
    """Read COCO 1.0 (`annotations/instances_<subset>.json`, or one JSON file)."""
    return _read(files, keypoints=False)


def read_coco_keypoints(files: ImportFiles) -> ParsedAnnotations:
    """Read COCO Keypoints 1.0 (`annotations/person_keypoints_<subset>.json`, or one JSON
    file)."""
    return _read(files, keypoints=True)


def _read(files: ImportFiles, *, keypoints: bool) -> ParsedAnnotations:
    prefix = KEYPOINTS_PREFIX if keypoints else INSTANCES_PREFIX
    wanted = [
        name
        for name in files.names()
        if posixpath.basename(name).startswith(prefix) and name.lower().endswith(".json")
    ]
    format_name = "COCO Keypoints 1.0" if keypoints else "COCO 1.0"
    members = json_members(files, wanted, f"annotations/{prefix}<subset>.json", format_name)
    assembler = Assembler()
    for name in members:
        stem = posixpath.splitext(posixpath.basename(name))[0]
        assembler.subset = stem[len(prefix) :] if stem.startswith(prefix) else ""
        _CocoFile(name, load_object(files, name, _KEYS), keypoints).read(assembler)
    return assembler.finish()


_KEYS: Final = ("categories", "images", "annotations")


@dataclass(frozen=True, slots=True)
class _Category:
    name: str
    keypoints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Image:
    file_name: str
    size: tuple[int, int] | None
    """(height, width), where the image gives both."""


class _CocoFile:
    """One COCO JSON file."""

    def __init__(self, name: str, data: Obj, keypoints: bool) -> None:
        self._name = name
        self._keypoints = keypoints
        self._categories, self._labels = self._read_categories(self._array(data, "categories"))
        self._images = self._read_images(self._array(data, "images"))
        self._annotations = self._array(data, "annotations")

    def _array(self, data: Obj, key: str) -> list[Any]:
        value = data.get(key)
        if value is None:
            raise ImportFailed(f"{self._name} has no {key!r} list: it is not a COCO file")
        if type(value) is not list:
            raise ImportFailed(f"{self._name}: {key!r} must be an array, not {describe(value)}")
        return value

    def _read_categories(self, categories: list[Any]) -> tuple[dict[int, _Category], list[str]]:
        by_id: dict[int, _Category] = {}
        parents: dict[int, str] = {}
        for index, raw in enumerate(categories):
            try:
                category = as_object(raw, "the category")
                category_id = as_int(get(category, "id"), "its id")
                name = as_str(get(category, "name"), "its name")
                parent = category.get("supercategory")
                points: tuple[str, ...] = ()
                if self._keypoints and category.get("keypoints") is not None:
                    listed = as_list(category["keypoints"], "its keypoints")
                    points = tuple(as_str(point, "a keypoint name") for point in listed)
            except Invalid as exc:
                raise ImportFailed(f"{self._name}: category {index}: {exc}") from None
            if category_id in by_id:
                raise ImportFailed(f"{self._name}: category id {category_id} is declared twice")
            by_id[category_id] = _Category(name, points)
            if type(parent) is str and parent:
                parents[category_id] = parent
        names = {category.name for category in by_id.values()}

        def is_point(category_id: int) -> bool:
            """A skeleton's point, as CVAT writes them: its parent is another category."""
            parent = parents.get(category_id)
            return parent is not None and parent != by_id[category_id].name and parent in names

        labels = [by_id[i].name for i in sorted(by_id) if not is_point(i)]
        return by_id, labels

    def _read_images(self, images: list[Any]) -> dict[int, _Image]:
        by_id: dict[int, _Image] = {}
        for index, raw in enumerate(images):
            try:
                image = as_object(raw, "the image")
                image_id = as_int(get(image, "id"), "its id")
                file_name = as_str(get(image, "file_name"), "its file_name")
                height, width = image.get("height"), image.get("width")
                size = None
                if height and width:
                    size = (as_int(height, "its height"), as_int(width, "its width"))
            except Invalid as exc:
                raise ImportFailed(f"{self._name}: image {index}: {exc}") from None
            if image_id in by_id:
                raise ImportFailed(f"{self._name}: image id {image_id} is listed twice")
            by_id[image_id] = _Image(file_name, size)
        return by_id

    def read(self, assembler: Assembler) -> None:
        """Add the file's labels and annotations, frame by frame in image order."""
        for label in self._labels:
            assembler.add_label(label)
        for image in self._images.values():
            assembler.add_item(image.file_name)
        by_image: dict[int, list[Entry]] = {image_id: [] for image_id in self._images}
        for index, raw in enumerate(self._annotations):
            try:
                if type(raw) is not dict:
                    raise Invalid(f"must be an object, not {describe(raw)}")
                self._annotation(raw, index, by_image)
            except Invalid as exc:
                where = f"annotation {index}"
                if type(raw) is dict and type(raw.get("id")) is int:
                    where += f" (id {raw['id']})"
                raise ImportFailed(f"{self._name}: {where}: {exc}") from None
        for entries in by_image.values():
            if entries:
                assembler.add_frame(entries)

    def _annotation(self, ann: Obj, index: int, by_image: dict[int, list[Entry]]) -> None:
        image_id = as_int(ann.get("image_id"), "image_id")
        image = self._images.get(image_id)
        if image is None:
            raise Invalid(f"image id {image_id} is not among the file's images")
        category_id = as_int(ann.get("category_id"), "category_id")
        category = self._categories.get(category_id)
        if category is None:
            raise Invalid(f"category id {category_id} is not among the file's categories")
        raw_id = ann.get("id")
        group = -(index + 1) if raw_id is None else as_int(raw_id, "id")
        attributes = split_attributes(ann.get("attributes"))
        score = ann.get("score")
        if score is not None:
            score = as_number(score, "score")
        entries = by_image[image_id]
        label, frame = category.name, image.file_name

        def add(kind: ShapeType, points: list[float]) -> ParsedShape:
            shape = shape_of(kind, label, points, frame, attributes, score=score)
            entries.append(Entry(shape, group, attributes.track))
            return shape

        if self._keypoints and ann.get("keypoints"):
            keypoints = _keypoints(ann["keypoints"], category)
            skeleton = add("skeleton", [])
            skeleton.elements = [
                skeleton_point(skeleton, name, (x, y, v), {}) for name, x, y, v in keypoints
            ]
        segmentation = ann.get("segmentation", [])
        if type(segmentation) is dict:
            points = mask_points(segmentation, image.size, "segmentation RLE")
            if points is not None:
                add("mask", points)
        elif type(segmentation) is list:
            if segmentation and segmentation != [[]]:
                for part, polygon in enumerate(segmentation):
                    add("polygon", as_points(polygon, f"segmentation polygon {part}", 3))
            elif not self._keypoints:
                add("rectangle", box_points(get(ann, "bbox"), "bbox"))
        else:
            raise Invalid(
                f"segmentation must be an array or an object, not {describe(segmentation)}"
            )


def _keypoints(raw: object, category: _Category) -> list[tuple[str, float, float, float]]:
    """(point name, x, y, v) of an annotation's `keypoints`, named by its category's
    `keypoints` in order; points past the names are dropped."""
    values = as_numbers(raw, "keypoints")
    if len(values) % 3:
        raise Invalid(f"keypoints must be x, y, v triplets, not {len(values)} numbers")
    return [
        (name, values[i], values[i + 1], values[i + 2])
        for name, i in zip(category.keypoints, range(0, len(values), 3), strict=False)
    ]


__all__ = [
    "INSTANCES_PREFIX",
    "KEYPOINTS_PREFIX",
    "Assembler",
    "Attributes",
    "Entry",
    "Invalid",
    "read_coco",
    "read_coco_keypoints",
    "split_attributes",
]
