"""Checking an annotations document `{version, tags, shapes, tracks}` against a task.

The document arrives as parsed JSON (dicts and lists, not pydantic models: a job can
hold hundreds of thousands of shapes, and one hand-written pass is several times faster
than model validation). Every problem is collected with the field it concerns
(`body.shapes[3].points`) and the whole request is refused with one 422; nothing is
written unless everything is valid.

Valid objects come out normalised to CVAT's response form: every field present, `group`
0 when null, `source` "manual", `score` 1, and numbers in `points` as floats. Ids are
kept as sent (or None); the service decides which ids survive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from tessera.platform.errors import unprocessable

SHAPE_TYPES = frozenset(
    ("rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton")
)
SOURCES = frozenset(("manual", "semi-auto", "auto", "file", "consensus"))
INPUT_TYPES = frozenset(("select", "radio", "checkbox", "number", "text"))
MAX_ERRORS = 50
_NUMBER = (int, float)

Obj = dict[str, Any]
FrameCheck = Callable[[int], bool]


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute of a label, as the task's labels define it."""

    id: int
    input_type: str
    mutable: bool
    default_value: str
    values: tuple[str, ...]

    def accepts(self, value: str) -> bool:
        """Whether `value` is allowed by this spec (CVAT's rules per input type)."""
        if self.input_type in ("select", "radio"):
            return value in self.values
        if self.input_type == "checkbox":
            return value.lower() in ("true", "false")
        if self.input_type == "number":
            return self._accepts_number(value)
        return True

    def _accepts_number(self, value: str) -> bool:
        try:
            number = float(value)
            low, high, step = (float(v) for v in self.values[:3])
        except ValueError:
            return False
        if not math.isfinite(number) or not low <= number <= high:
            return False
        if step <= 0:
            return True
        steps = (number - low) / step
        return abs(steps - round(steps)) <= 1e-9 * max(1.0, abs(steps))


@dataclass(frozen=True)
class LabelSpec:
    """A label of the task (or of its project) with its attribute specs."""

    id: int
    name: str
    type: str
    parent_id: int | None
    attributes: dict[int, AttributeSpec]
    sublabels: frozenset[int] = frozenset()

    def defaults(self, mutable: bool | None) -> list[tuple[int, str]]:
        """(spec id, default value) of all specs, or of the (im)mutable ones only."""
        return [
            (spec.id, spec.default_value)
            for spec in self.attributes.values()
            if mutable is None or spec.mutable == mutable
        ]


@dataclass
class LabelCatalog:
    """The labels a task's annotations may use, by id."""

    labels: dict[int, LabelSpec]
    dimension: str = "2d"
    _defaults: dict[tuple[int, bool | None], list[tuple[int, str]]] = field(
        default_factory=dict, repr=False
    )

    def defaults(self, label_id: int, mutable: bool | None) -> list[tuple[int, str]]:
        """Cached `LabelSpec.defaults`; empty for an unknown label."""
        key = (label_id, mutable)
        found = self._defaults.get(key)
        if found is None:
            label = self.labels.get(label_id)
            found = label.defaults(mutable) if label else []
            self._defaults[key] = found
        return found


@dataclass
class Document:
    """A validated annotations document; `version` is None when the client sent none."""

    version: int | None
    tags: list[Obj] = field(default_factory=list)
    shapes: list[Obj] = field(default_factory=list)
    tracks: list[Obj] = field(default_factory=list)

    def counts(self) -> int:
        """Number of top-level objects."""
        return len(self.tags) + len(self.shapes) + len(self.tracks)


class _TooManyErrors(Exception):
    pass


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))
        if len(self.items) >= MAX_ERRORS:
            raise _TooManyErrors

    def raise_if_any(self) -> None:
        if self.items:
            raise unprocessable(self.items, "annotations")


def _is_int(value: Any) -> TypeGuard[int]:
    return type(value) is int


def _check_points(kind: str, points: list[Any], dimension: str) -> str | None:
    """Why `points` does not fit a shape of type `kind`, or None if it does."""
    for value in points:
        if type(value) not in _NUMBER:
            return "must be a list of numbers"
    if not math.isfinite(math.fsum(points)) and not all(math.isfinite(v) for v in points):
        return "must not contain NaN or infinity"
    size = len(points)
    if kind in ("rectangle", "ellipse"):
        return None if size == 4 else f"a {kind} needs 4 numbers, got {size}"
    if kind == "cuboid":
        if dimension == "3d":
            return None if 9 <= size <= 16 else f"a 3D cuboid needs 9 to 16 numbers, got {size}"
        return None if size == 16 else f"a cuboid needs 16 numbers, got {size}"
    if kind in ("polygon", "polyline", "points"):
        least = {"polygon": 6, "polyline": 4, "points": 2}[kind]
        if size < least or size % 2:
            return f"a {kind} needs an even count of at least {least} numbers, got {size}"
        return None
    if kind == "skeleton":
        return None if size == 0 else "a skeleton has no points of its own (use elements)"
    return _check_mask(points)


def _check_mask(points: list[Any]) -> str | None:
    if len(points) < 5:
        return "a mask needs run lengths then [left, top, right, bottom]"
    if any(v < 0 or v != math.floor(v) for v in points):
        return "mask run lengths and box must be non-negative integers"
    left, top, right, bottom = (int(v) for v in points[-4:])
    if right < left or bottom < top:
        return "mask box has right < left or bottom < top"
    if sum(points[:-4]) > (right - left + 1) * (bottom - top + 1):
        return "mask run lengths cover more than the box"
    return None


class Validator:
    """Validates documents against one task's labels and one frame rule."""

    def __init__(self, catalog: LabelCatalog, frame_ok: FrameCheck, frame_rule: str) -> None:
        self.catalog = catalog
        self.frame_ok = frame_ok
        self.frame_rule = frame_rule
        self.errors = _Errors()

    # -- entry points -------------------------------------------------------------------

    def document(self, body: Any) -> Document:
        """Validate a full document (PUT, PATCH create and update)."""
        doc = self._envelope(body)
        try:
            if doc is not None:
                raw = body
                doc.tags = self._each(raw, "tags", self._tag)
                doc.shapes = self._each(raw, "shapes", self._shape)
                doc.tracks = self._each(raw, "tracks", self._track)
                self._unique_ids(raw)
        except _TooManyErrors:
            pass
        self.errors.raise_if_any()
        assert doc is not None
        return doc

    def ids_only(self, body: Any) -> tuple[int | None, dict[str, list[int]]]:
        """Validate a PATCH delete body: only each object's `id` matters."""
        doc = self._envelope(body)
        ids: dict[str, list[int]] = {"tags": [], "shapes": [], "tracks": []}
        try:
            if doc is not None:
                for key, found in ids.items():
                    for where, obj in self._objects(body.get(key), f"body.{key}"):
                        value = obj.get("id")
                        if not _is_int(value):
                            self.errors.add(f"{where}.id", "an integer id is required")
                        else:
                            found.append(value)
        except _TooManyErrors:
            pass
        self.errors.raise_if_any()
        assert doc is not None
        return doc.version, ids

    # -- structure ----------------------------------------------------------------------

    def _envelope(self, body: Any) -> Document | None:
        if not isinstance(body, dict):
            self.errors.add("body", "must be an object {version, tags, shapes, tracks}")
            return None
        version = body.get("version")
        if version is not None and (not _is_int(version) or version < 0):
            self.errors.add("body.version", "must be a non-negative integer")
        for key in ("tags", "shapes", "tracks", "intervals"):
            if body.get(key) is not None and not isinstance(body[key], list):
                self.errors.add(f"body.{key}", "must be a list")
        if body.get("intervals"):
            self.errors.add("body.intervals", "labeled intervals are not supported")
        return Document(version if _is_int(version) else None)

    def _objects(self, items: Any, path: str) -> Iterable[tuple[str, Obj]]:
        """`(path[i], item)` for each object of a list; any other item is reported."""
        if not isinstance(items, list):
            return
        for i, obj in enumerate(items):
            where = f"{path}[{i}]"
            if isinstance(obj, dict):
                yield where, obj
            else:
                self.errors.add(where, "must be an object")

    def _each(
        self, body: dict[str, Any], key: str, check: Callable[[Obj, str], Obj | None]
    ) -> list[Obj]:
        out = []
        for where, obj in self._objects(body.get(key), f"body.{key}"):
            checked = check(obj, where)
            if checked is not None:
                out.append(checked)
        return out

    def _unique_ids(self, body: dict[str, Any]) -> None:
        """Ids must be unique per table: shapes with elements, tracks with element tracks,
        keyframes of every track, tags. Paths are those of the request as sent."""
        seen: dict[str, set[int]] = {"tags": set(), "shapes": set(), "tracks": set(),
                                     "keyframes": set()}  # fmt: skip

        def check(table: str, obj: Obj, *steps: str | int) -> None:
            value = obj.get("id")
            if _is_int(value):
                if value in seen[table]:
                    self.errors.add(f"{_path(steps)}.id", f"duplicate id {value}")
                seen[table].add(value)

        for key in ("tags", "shapes", "tracks"):
            for i, obj in _listed(body.get(key)):
                check(key, obj, key, i)
                for j, element in _listed(obj.get("elements")):
                    check(key, element, key, i, "elements", j)
                    for k, keyframe in _listed(element.get("shapes") if key == "tracks" else None):
                        check("keyframes", keyframe, key, i, "elements", j, "shapes", k)
                for k, keyframe in _listed(obj.get("shapes") if key == "tracks" else None):
                    check("keyframes", keyframe, key, i, "shapes", k)

    # -- fields -------------------------------------------------------------------------

    def _int(self, obj: Obj, key: str, path: str, default: int | None = None) -> int | None:
        value = obj.get(key, default)
        if value is None and default is not None:
            return default
        if not _is_int(value) or value < 0:
            self.errors.add(f"{path}.{key}", "must be a non-negative integer")
            return None
        return int(value)

    def _bool(self, obj: Obj, key: str, path: str) -> bool:
        value = obj.get(key, False)
        if type(value) is not bool:
            self.errors.add(f"{path}.{key}", "must be true or false")
            return False
        return value

    def _optional_id(self, obj: Obj, path: str) -> int | None:
        value = obj.get("id")
        if value is not None and (not _is_int(value) or value <= 0):
            self.errors.add(f"{path}.id", "must be a positive integer or null")
            return None
        return value

    def _group(self, obj: Obj, path: str) -> int:
        value = obj.get("group")
        if value is None:
            return 0
        if not _is_int(value) or value < 0:
            self.errors.add(f"{path}.group", "must be a non-negative integer or null")
            return 0
        return int(value)

    def _source(self, obj: Obj, path: str) -> str:
        value = obj.get("source", "manual")
        if value not in SOURCES:
            self.errors.add(f"{path}.source", f"must be one of {', '.join(sorted(SOURCES))}")
            return "manual"
        return str(value)

    def _frame(self, obj: Obj, path: str) -> int | None:
        frame = self._int(obj, "frame", path)
        if frame is not None and not self.frame_ok(frame):
            self.errors.add(f"{path}.frame", f"frame {frame} is outside {self.frame_rule}")
            return None
        return frame

    def _label(self, obj: Obj, path: str, parent: LabelSpec | None) -> LabelSpec | None:
        value = obj.get("label_id")
        label = self.catalog.labels.get(value) if _is_int(value) else None
        if label is None:
            self.errors.add(f"{path}.label_id", f"label {value!r} is not a label of this task")
            return None
        if parent is None and label.parent_id is not None:
            self.errors.add(f"{path}.label_id", f"label {value} is a skeleton sublabel")
            return None
        if parent is not None and label.id not in parent.sublabels:
            self.errors.add(
                f"{path}.label_id", f"label {value} is not a sublabel of skeleton {parent.id}"
            )
            return None
        return label

    def _label_fits(self, label: LabelSpec, kind: str, path: str) -> bool:
        if label.type in ("any", kind) or (kind == "points" and label.parent_id is not None):
            return True
        self.errors.add(f"{path}.label_id", f"label {label.id} is a {label.type} label")
        return False

    def _attributes(
        self, obj: Obj, path: str, label: LabelSpec | None, mutable: bool | None
    ) -> list[Obj]:
        raw = obj.get("attributes")
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.errors.add(f"{path}.attributes", "must be a list")
            return []
        out = []
        seen: set[int] = set()
        for i, item in enumerate(raw):
            where = f"{path}.attributes[{i}]"
            if not isinstance(item, dict):
                self.errors.add(where, "must be an object {spec_id, value}")
                continue
            spec_id, value = item.get("spec_id"), item.get("value")
            if type(value) is not str:
                self.errors.add(f"{where}.value", "must be a string")
                continue
            spec = label.attributes.get(spec_id) if label and _is_int(spec_id) else None
            if spec is None:
                if label is not None:
                    self.errors.add(
                        f"{where}.spec_id", f"{spec_id!r} is not an attribute of label {label.id}"
                    )
                continue
            if spec.id in seen:
                self.errors.add(f"{where}.spec_id", f"attribute {spec.id} is given twice")
                continue
            seen.add(spec.id)
            if mutable is not None and spec.mutable != mutable:
                where_ok = "keyframes" if spec.mutable else "the track"
                self.errors.add(f"{where}.spec_id", f"attribute {spec_id} belongs on {where_ok}")
                continue
            if not spec.accepts(value):
                self.errors.add(
                    f"{where}.value", f"{value!r} is not a valid {spec.input_type} value"
                )
                continue
            out.append({"spec_id": spec_id, "value": value})
        return out

    def _geometry(self, obj: Obj, path: str) -> Obj | None:
        kind = obj.get("type")
        if kind not in SHAPE_TYPES:
            self.errors.add(f"{path}.type", f"unknown shape type {kind!r}")
            return None
        points = obj.get("points", [])
        if not isinstance(points, list):
            self.errors.add(f"{path}.points", "must be a list of numbers")
            return None
        problem = _check_points(kind, points, self.catalog.dimension)
        if problem:
            self.errors.add(f"{path}.points", problem)
            return None
        rotation = obj.get("rotation", 0.0)
        if type(rotation) not in _NUMBER or not 0 <= rotation <= 360:
            self.errors.add(f"{path}.rotation", "must be a number of degrees in [0, 360]")
            return None
        z_order = obj.get("z_order", 0)
        if not _is_int(z_order):
            self.errors.add(f"{path}.z_order", "must be an integer")
            return None
        return {
            "type": kind,
            "occluded": self._bool(obj, "occluded", path),
            "outside": self._bool(obj, "outside", path),
            "z_order": z_order,
            "rotation": float(rotation),
            "points": [float(v) for v in points],
        }

    # -- objects ------------------------------------------------------------------------

    def _tag(self, obj: Obj, path: str) -> Obj | None:
        label = self._label(obj, path, None)
        frame = self._frame(obj, path)
        if label is not None and label.type not in ("any", "tag"):
            self.errors.add(f"{path}.label_id", f"label {label.id} is a {label.type} label")
        tag = {
            "id": self._optional_id(obj, path),
            "frame": frame,
            "label_id": obj.get("label_id"),
            "group": self._group(obj, path),
            "source": self._source(obj, path),
            "attributes": self._attributes(obj, path, label, None),
        }
        return tag if label is not None and frame is not None else None

    def _shape(self, obj: Obj, path: str, parent: LabelSpec | None = None) -> Obj | None:
        label = self._label(obj, path, parent)
        frame = self._frame(obj, path)
        geometry = self._geometry(obj, path)
        score = obj.get("score", 1.0)
        if type(score) not in _NUMBER or not 0 <= score <= 1:
            self.errors.add(f"{path}.score", "must be a number in [0, 1]")
        shape = {
            **(geometry or {}),
            "id": self._optional_id(obj, path),
            "frame": frame,
            "label_id": obj.get("label_id"),
            "group": self._group(obj, path),
            "source": self._source(obj, path),
            "attributes": self._attributes(obj, path, label, None),
            "score": float(score) if type(score) in _NUMBER else 1.0,
        }
        if label is None or frame is None or geometry is None:
            return None
        if not self._label_fits(label, geometry["type"], path):
            return None
        elements = obj.get("elements") or []
        if parent is not None:
            if elements:
                self.errors.add(f"{path}.elements", "skeleton elements have no elements")
            return shape
        shape["elements"] = self._elements(path, label, geometry["type"], elements, frame)
        return shape

    def _elements(
        self, path: str, label: LabelSpec, kind: str, elements: Any, frame: int
    ) -> list[Obj]:
        if not isinstance(elements, list):
            self.errors.add(f"{path}.elements", "must be a list")
            return []
        if kind != "skeleton":
            if elements:
                self.errors.add(f"{path}.elements", "only skeletons have elements")
            return []
        out = []
        used: set[int] = set()
        for where, element in self._objects(elements, f"{path}.elements"):
            checked = self._shape(element, where, label)
            if checked is None:
                continue
            if checked["type"] != "points":
                self.errors.add(f"{where}.type", "skeleton elements are points")
            elif checked["frame"] != frame:
                self.errors.add(f"{where}.frame", "must be the skeleton's frame")
            elif checked["label_id"] in used:
                self.errors.add(f"{where}.label_id", "a sublabel is used twice")
            else:
                used.add(checked["label_id"])
                out.append(checked)
        return out

    def _track(self, obj: Obj, path: str, parent: LabelSpec | None = None) -> Obj | None:
        label = self._label(obj, path, parent)
        frame = self._int(obj, "frame", path)
        track: Obj = {
            "id": self._optional_id(obj, path),
            "frame": frame,
            "label_id": obj.get("label_id"),
            "group": self._group(obj, path),
            "source": self._source(obj, path),
            "shapes": [],
            "attributes": self._attributes(obj, path, label, False),
        }
        raw_shapes = obj.get("shapes")
        if not isinstance(raw_shapes, list) or not raw_shapes:
            self.errors.add(f"{path}.shapes", "a track needs at least one keyframe")
            return None
        kinds: set[str] = set()
        frames: set[int] = set()
        for where, raw in self._objects(raw_shapes, f"{path}.shapes"):
            keyframe = self._keyframe(raw, where, label)
            if keyframe is None:
                continue
            if keyframe["frame"] in frames:
                self.errors.add(f"{where}.frame", f"two keyframes on frame {keyframe['frame']}")
                continue
            frames.add(keyframe["frame"])
            kinds.add(keyframe["type"])
            track["shapes"].append(keyframe)
        if len(kinds) > 1:
            self.errors.add(f"{path}.shapes", "all keyframes of a track have one type")
            return None
        if label is None or frame is None or len(track["shapes"]) != len(raw_shapes):
            return None
        track["shapes"].sort(key=lambda s: s["frame"])
        if frame != track["shapes"][0]["frame"]:
            self.errors.add(f"{path}.frame", "must be the frame of the first keyframe")
            return None
        kind = next(iter(kinds))
        if not self._label_fits(label, kind, path):
            return None
        elements = obj.get("elements") or []
        if parent is not None:
            if elements:
                self.errors.add(f"{path}.elements", "element tracks have no elements")
            return track
        if kind != "skeleton":
            if elements:
                self.errors.add(f"{path}.elements", "only skeleton tracks have elements")
            track["elements"] = []
            return track
        track["elements"] = self._element_tracks(elements, path, label)
        return track

    def _element_tracks(self, elements: Any, path: str, label: LabelSpec) -> list[Obj]:
        if not isinstance(elements, list):
            self.errors.add(f"{path}.elements", "must be a list")
            return []
        out = []
        used: set[int] = set()
        for where, element in self._objects(elements, f"{path}.elements"):
            checked = self._track(element, where, label)
            if checked is None:
                continue
            if checked["shapes"][0]["type"] != "points":
                self.errors.add(f"{where}.shapes", "skeleton element keyframes are points")
            elif checked["label_id"] in used:
                self.errors.add(f"{where}.label_id", "a sublabel is used twice")
            else:
                used.add(checked["label_id"])
                out.append(checked)
        return out

    def _keyframe(self, obj: Obj, path: str, label: LabelSpec | None) -> Obj | None:
        frame = self._frame(obj, path)
        geometry = self._geometry(obj, path)
        attributes = self._attributes(obj, path, label, True)
        if frame is None or geometry is None:
            return None
        return {
            **geometry,
            "id": self._optional_id(obj, path),
            "frame": frame,
            "attributes": attributes,
        }


def _path(steps: tuple[str | int, ...]) -> str:
    """`("shapes", 3, "elements", 1)` -> `body.shapes[3].elements[1]`."""
    return "body" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)


def _listed(items: Any) -> Iterable[tuple[int, Obj]]:
    if isinstance(items, list):
        for i, obj in enumerate(items):
            if isinstance(obj, dict):
                yield i, obj
