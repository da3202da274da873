"""CVAT 1.1 (CVAT's importer "CVAT 1.1"): one reader for "CVAT for images 1.1" and
"CVAT for video 1.1" XML, as CVAT 2.80's `load_anno` reads either
(cvat/apps/dataset_manager/formats/cvat.py).

The upload is one `.xml` file, or a zip: every `*.xml` member in it is read, in archive
order (CVAT globs `**/*.xml`); images and other members are ignored, and so are hidden
members (a path part starting with ".", which CVAT's glob skips too) and macOS's
`__MACOSX/` folder. Each file is streamed
with `ImportFiles.iterparse_xml` (no DTDs or entities): every shape element is converted
when it ends and cleared, so memory holds the parsed annotations, not the tree.

The layout (`<annotations>` root, `<version>`, `<meta>`, then `<image>`s or `<track>`s):
- `<meta>`: the label names of `task/labels`, `project/labels` or `job/labels` go to
  `ParsedAnnotations.labels`; skeleton sublabels (labels with a `<parent>`) are left out,
  as they are matched under their skeleton.
- `<image id name width height subset>` (CVAT for images): frame ref is `name` (str),
  `frame_names[id] = name`, and an item of `subset` (a project's export gives it; ""
  without) in `ParsedAnnotations.items`, its shapes and tags of that subset. Its
  children: `<box xtl ytl xbr ybr>`, `<polygon>`, `<polyline>` and `<points>`
  (`points="x,y;x,y"`), `<ellipse cx cy rx ry>` (to
  [cx, cy, cx + rx, cy - ry], rounded to 2 decimals as CVAT does), `<cuboid xtl1 ...
  ybr2>` (16 numbers in CVAT's order), `<mask rle left top width height>` (`rle` is
  CVAT's own runs over the box, starting with a 0-run, so points are the runs then
  [left, top, left + width - 1, top + height - 1]), `<skeleton>` with its elements
  (`<points label outside occluded points>`), and `<tag label group_id>`; each with
  `label`, `occluded`, `z_order`, `group_id`, `rotation`, `source`, and
  `<attribute name>value</attribute>` children.
- `<track id label group_id source>` (CVAT for video): one child per frame,
  `<box frame keyframe outside occluded ...>` and so on, or `<skeleton frame keyframe>`
  holding `<points label keyframe outside occluded points>` per sublabel. Frame refs are
  the file's frame numbers (int): numbers in the media, as CVAT writes them (`start_frame
  + task frame * step`, as `<image id>` is), which the matcher turns into task frames as
  CVAT's `rel_frame_id` does. As CVAT does, only keyframes are kept (`keyframe="0"`
  frames are the interpolated ones its dumper writes), so every kept shape has
  `keyframe=True`; a skeleton's keyframes and each element's keyframes are kept
  independently (elements become `ParsedTrack.elements`, one track per sublabel, in the
  order they first appear). CVAT writes no `outside` on a skeleton track's frames (its
  elements carry it), so those read as not outside, as in CVAT. A mask track becomes a
  plain mask shape, its first visible keyframe (CVAT takes its first keyframe; its own
  files start visible).
- attributes: every value a shape element carries stays on `ParsedShape.attributes`
  (the matcher splits mutable from immutable); a track's `ParsedTrack.attributes` also
  gets the values of its first kept shape (CVAT's `_import_track` keeps the last
  keyframe's immutable values; CVAT writes the same immutable values on every frame).

Where the reader differs from CVAT:
- `<tag frame label>` directly under `<annotations>` (as CVAT for video would hold tags;
  CVAT's dumper writes none, cvat-ai/cvat#7198) is read as a tag on that frame number;
  CVAT's `load_anno` fails on it.
- a shape keeps the `source` the file gives (manual, auto, ...; "file" when it gives
  none), so that an export imported and exported again is the same file; CVAT sets
  "file" on everything it imports.
- hostile or malformed input fails with `ImportFailed` naming the file and the element:
  a root that is not `<annotations>`, a missing `label`, `frame` or coordinate, numbers
  that are not finite (or beyond `tessera.geometry.MAX_COORD`), a mask whose runs do not
  sum to width x height, flags other than 0/1/true/false. A missing `keyframe` on a
  track frame reads as 1, and a missing `occluded` or `outside` on a skeleton element
  as 0, where CVAT fails with a KeyError.
- an empty mask is skipped (CVAT stores it); a track without keyframes is skipped (CVAT
  fails on it), and so is a skeleton element track without keyframes.
- a mask's runs are kept as the file gives them, over the file's box (not re-tightened).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NoReturn, cast, get_args
from xml.etree.ElementTree import Element

from tessera.export.imports.files import ImportFailed, ImportFiles
from tessera.export.imports.model import (
    FrameRef,
    ParsedAnnotations,
    ParsedItem,
    ParsedShape,
    ParsedTag,
    ParsedTrack,
    ShapeType,
    Source,
)
from tessera.geometry import MAX_COORD, MAX_PIXELS

_SOURCES = frozenset(get_args(Source))

FORMAT = "CVAT 1.1"

_SHAPES: dict[str, ShapeType] = {
    "box": "rectangle",
    "polygon": "polygon",
    "polyline": "polyline",
    "points": "points",
    "ellipse": "ellipse",
    "cuboid": "cuboid",
    "mask": "mask",
    "skeleton": "skeleton",
}
"""CVAT's XML element of each shape type, to the type."""

_ELEMENT_TAGS = frozenset(("box", "polygon", "polyline", "points", "ellipse", "cuboid"))
"""What a skeleton may hold (CVAT's `load_anno` reads these as elements)."""

_CUBOID = (
    "xtl1", "ytl1", "xbl1", "ybl1", "xtr1", "ytr1", "xbr1", "ybr1",
    "xtl2", "ytl2", "xbl2", "ybl2", "xtr2", "ytr2", "xbr2", "ybr2",
)  # fmt: skip

_LABEL_PATHS = ("task/labels/label", "project/labels/label", "job/labels/label")
_FLAGS = {"0": False, "1": True, "false": False, "true": True}


def read_cvat(files: ImportFiles) -> ParsedAnnotations:
    """Read a CVAT 1.1 upload (CVAT for images or CVAT for video XML, alone or zipped).

    Raises ImportFailed when the upload has no `.xml` file, or one that is not CVAT XML
    or is malformed (see the module's docstring).
    """
    names = [name for name in files.matching(".xml") if not _hidden(name)]
    if not names:
        raise ImportFailed(f"this is not a {FORMAT} upload: no .xml file found")
    parsed = ParsedAnnotations()
    for name in names:
        _FileReader(name, parsed).read(files.iterparse_xml(name, ("start", "end")))
    return parsed


def _hidden(name: str) -> bool:
    parts = name.split("/")
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


@dataclass(slots=True)
class _OpenTrack:
    """A `<track>` being read: its keyframes, and its skeleton elements' by sublabel."""

    label: str
    group: int
    source: Source
    where: str
    shapes: list[ParsedShape] = field(default_factory=list)
    elements: dict[str, list[ParsedShape]] = field(default_factory=dict)


class _FileReader:
    """Reads one XML member's events into `ParsedAnnotations`."""

    def __init__(self, name: str, out: ParsedAnnotations) -> None:
        self._name = name
        self._out = out
        self._labels = set(out.labels)
        self._image: str | None = None
        self._image_where = ""
        self._subset = ""
        self._track: _OpenTrack | None = None

    def read(self, events: Iterator[tuple[str, Element]]) -> None:
        """Consume the (start, end) events, clearing each converted element."""
        stack: list[Element] = []
        for event, element in events:
            if event == "start":
                if not stack and element.tag != "annotations":
                    raise ImportFailed(
                        f"this is not a {FORMAT} upload: {self._name} has the root element "
                        f"<{element.tag}>, not <annotations>"
                    )
                stack.append(element)
                if len(stack) == 2:
                    self._open(element)
                continue
            stack.pop()
            if len(stack) == 1:
                self._close(element)
                stack[0].clear()
            elif len(stack) == 2 and stack[1].tag in ("image", "track"):
                self._child(element)
                stack[1].clear()

    # --- top-level elements ------------------------------------------------------------

    def _open(self, element: Element) -> None:
        if element.tag == "image":
            where = ""
            frame_id = self._integer(element, "id", where, minimum=0)
            name = self._required(element, "name", where)
            if not name:
                self._fail(where, "<image> has an empty 'name'")
            self._out.frame_names[frame_id] = name
            self._image = name
            self._subset = element.get("subset", "")
            self._out.items.append(ParsedItem(name, self._subset))
            self._image_where = f"image {name!r}"
        elif element.tag == "track":
            where = f"track {element.get('id', '?')}"
            self._track = _OpenTrack(
                label=self._required(element, "label", where),
                group=self._integer(element, "group_id", where, 0, minimum=0),
                source=_source(element),
                where=where,
            )

    def _close(self, element: Element) -> None:
        if element.tag == "meta":
            self._meta(element)
        elif element.tag == "image":
            self._image = None
        elif element.tag == "track":
            if self._track is not None:
                self._finish_track(self._track)
            self._track = None
        elif element.tag == "tag":
            where = ""
            self._out.tags.append(
                self._tag(element, self._integer(element, "frame", where, minimum=0), where)
            )

    def _meta(self, meta: Element) -> None:
        for path in _LABEL_PATHS:
            for label in meta.iterfind(path):
                if (label.findtext("parent") or "").strip():
                    continue
                name = label.findtext("name")
                if name and name not in self._labels:
                    self._labels.add(name)
                    self._out.labels.append(name)

    # --- children of <image> and <track> -----------------------------------------------

    def _child(self, element: Element) -> None:
        tag = element.tag
        if self._image is not None:
            if tag in _SHAPES:
                shape = self._image_shape(element, self._image, self._image_where)
                if shape is not None:
                    shape.subset = self._subset
                    for part in shape.elements:
                        part.subset = self._subset
                    self._out.shapes.append(shape)
            elif tag == "tag":
                tag_of_image = self._tag(element, self._image, self._image_where)
                tag_of_image.subset = self._subset
                self._out.tags.append(tag_of_image)
        elif self._track is not None and tag in _SHAPES:
            self._track_frame(element, self._track)

    def _image_shape(self, element: Element, frame: str, where: str) -> ParsedShape | None:
        points = self._geometry(element, where)
        if points is None:
            return None
        attributes, children = self._children(element, where)
        return ParsedShape(
            type=_SHAPES[element.tag],
            label=self._required(element, "label", where),
            points=points,
            frame=frame,
            occluded=self._flag(element, "occluded", where, False),
            z_order=self._integer(element, "z_order", where, 0),
            rotation=self._rotation(element, where),
            group=self._integer(element, "group_id", where, 0, minimum=0),
            attributes=attributes,
            elements=[self._image_element(child, frame, where) for child in children],
            source=_source(element),
        )

    def _image_element(self, element: Element, frame: str, where: str) -> ParsedShape:
        where = f"{where}, a skeleton's element"
        points = self._plain_geometry(element, where)
        attributes, _ = self._children(element, where)
        return ParsedShape(
            type=_SHAPES[element.tag],
            label=self._required(element, "label", where),
            points=points,
            frame=frame,
            occluded=self._flag(element, "occluded", where, False),
            outside=self._flag(element, "outside", where, False),
            rotation=self._rotation(element, where),
            attributes=attributes,
            source=_source(element),
        )

    def _track_frame(self, element: Element, track: _OpenTrack) -> None:
        frame = self._integer(element, "frame", track.where, minimum=0)
        where = f"{track.where}, frame {frame}"
        points = self._geometry(element, where)
        attributes, children = self._children(element, where)
        for child in children:
            self._track_element(child, frame, track, where)
        if points is None or not self._flag(element, "keyframe", where, True):
            return
        track.shapes.append(
            ParsedShape(
                type=_SHAPES[element.tag],
                label=track.label,
                points=points,
                frame=frame,
                occluded=self._flag(element, "occluded", where, False),
                outside=self._flag(element, "outside", where, False),
                z_order=self._integer(element, "z_order", where, 0),
                rotation=self._rotation(element, where),
                group=track.group,
                attributes=attributes,
                source=track.source,
            )
        )

    def _track_element(self, element: Element, frame: int, track: _OpenTrack, where: str) -> None:
        where = f"{where}, a skeleton's element"
        label = self._required(element, "label", where)
        shapes = track.elements.setdefault(label, [])
        points = self._plain_geometry(element, where)
        if not self._flag(element, "keyframe", where, True):
            return
        attributes, _ = self._children(element, where)
        shapes.append(
            ParsedShape(
                type=_SHAPES[element.tag],
                label=label,
                points=points,
                frame=frame,
                occluded=self._flag(element, "occluded", where, False),
                outside=self._flag(element, "outside", where, False),
                rotation=self._rotation(element, where),
                attributes=attributes,
                source=track.source,
            )
        )

    def _finish_track(self, track: _OpenTrack) -> None:
        shapes = sorted(track.shapes, key=_frame_order)
        if not shapes:
            return
        if shapes[0].type == "mask":
            visible = next((shape for shape in shapes if not shape.outside), None)
            if visible is not None:
                visible.keyframe = True
                self._out.shapes.append(visible)
            return
        elements = [
            ParsedTrack(
                label=label,
                shapes=sorted(element_shapes, key=_frame_order),
                attributes=dict(element_shapes[0].attributes),
                source=track.source,
            )
            for label, element_shapes in track.elements.items()
            if element_shapes
        ]
        self._out.tracks.append(
            ParsedTrack(
                label=track.label,
                shapes=shapes,
                group=track.group,
                attributes=dict(shapes[0].attributes),
                elements=elements,
                source=track.source,
            )
        )

    def _tag(self, element: Element, frame: FrameRef, where: str) -> ParsedTag:
        attributes, _ = self._children(element, where)
        return ParsedTag(
            label=self._required(element, "label", where),
            frame=frame,
            group=self._integer(element, "group_id", where, 0, minimum=0),
            attributes=attributes,
            source=_source(element),
        )

    def _children(self, element: Element, where: str) -> tuple[dict[str, str], list[Element]]:
        """The `<attribute>` values of an element, and its skeleton elements."""
        attributes: dict[str, str] = {}
        elements: list[Element] = []
        for child in element:
            if child.tag == "attribute":
                name = self._required(child, "name", where)
                attributes[name] = child.text or ""
            elif element.tag == "skeleton" and child.tag in _SHAPES:
                if child.tag not in _ELEMENT_TAGS:
                    self._fail(where, f"has a <{child.tag}> inside a <skeleton>")
                elements.append(child)
        return attributes, elements

    # --- geometry ----------------------------------------------------------------------

    def _geometry(self, element: Element, where: str) -> list[float] | None:
        """The element's points in Tessera's layout; None for an empty mask."""
        if element.tag == "mask":
            return self._mask(element, where)
        return self._plain_geometry(element, where)

    def _plain_geometry(self, element: Element, where: str) -> list[float]:
        """The points of any shape element but a mask."""
        tag = element.tag
        if tag == "box":
            return [self._number(element, key, where) for key in ("xtl", "ytl", "xbr", "ybr")]
        if tag == "ellipse":
            cx, cy, rx, ry = (self._number(element, key, where) for key in ("cx", "cy", "rx", "ry"))
            return [cx, cy, float(f"{cx + rx:.2f}"), float(f"{cy - ry:.2f}")]
        if tag == "cuboid":
            return [self._number(element, key, where) for key in _CUBOID]
        if tag == "skeleton":
            return []
        return self._points(element, where)

    def _points(self, element: Element, where: str) -> list[float]:
        text = self._required(element, "points", where)
        points: list[float] = []
        for pair in text.split(";"):
            values = pair.split(",")
            if len(values) != 2:
                self._fail(where, f"<{element.tag}> has points={_short(text)}, not 'x,y;x,y;...'")
            points.extend(self._coordinate(value, element, "points", where) for value in values)
        return points

    def _mask(self, element: Element, where: str) -> list[float] | None:
        text = self._required(element, "rle", where)
        try:
            runs = [int(value) for value in text.split(",")]
        except ValueError:
            self._fail(where, f"<mask> has rle={_short(text)}, not whole numbers")
        left = self._integer(element, "left", where)
        top = self._integer(element, "top", where)
        width = self._integer(element, "width", where, minimum=1)
        height = self._integer(element, "height", where, minimum=1)
        if width * height > MAX_PIXELS:
            self._fail(where, f"<mask> is {width} x {height}, more pixels than Tessera takes")
        if any(run < 0 for run in runs) or sum(runs) != width * height:
            self._fail(
                where,
                f"<mask> has runs that do not cover its {width} x {height} box "
                f"(they must be non-negative and sum to {width * height})",
            )
        if not any(runs[1::2]):
            return None
        box = (left, top, left + width - 1, top + height - 1)
        return [float(value) for value in (*runs, *box)]

    def _rotation(self, element: Element, where: str) -> float:
        if element.get("rotation") is None:
            return 0.0
        return self._number(element, "rotation", where)

    # --- typed attribute access --------------------------------------------------------

    def _fail(self, where: str, problem: str) -> NoReturn:
        place = f"{where}: " if where else ""
        raise ImportFailed(f"{self._name}: {place}{problem}")

    def _required(self, element: Element, key: str, where: str) -> str:
        value = element.get(key)
        if value is None:
            self._fail(where, f"<{element.tag}> has no {key!r}")
        return value

    def _number(self, element: Element, key: str, where: str) -> float:
        return self._coordinate(self._required(element, key, where), element, key, where)

    def _coordinate(self, text: str, element: Element, key: str, where: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or abs(value) > MAX_COORD:
            self._fail(
                where,
                f"<{element.tag}> has {key}={_short(text)}, not a finite number "
                f"(within +-{MAX_COORD:g})",
            )
        return value

    def _integer(
        self,
        element: Element,
        key: str,
        where: str,
        default: int | None = None,
        *,
        minimum: int | None = None,
    ) -> int:
        text = element.get(key)
        if text is None:
            if default is None:
                self._fail(where, f"<{element.tag}> has no {key!r}")
            return default
        try:
            value = int(text)
        except ValueError:
            self._fail(where, f"<{element.tag}> has {key}={_short(text)}, not a whole number")
        if minimum is not None and value < minimum:
            self._fail(where, f"<{element.tag}> has {key}={_short(text)}, below {minimum}")
        return value

    def _flag(self, element: Element, key: str, where: str, default: bool) -> bool:
        text = element.get(key)
        if text is None:
            return default
        value = _FLAGS.get(text.strip().lower())
        if value is None:
            self._fail(where, f"<{element.tag}> has {key}={_short(text)}, not 0 or 1")
        return value


def _source(element: Element) -> Source:
    given = element.get("source")
    return cast(Source, given) if given in _SOURCES else "file"


def _frame_order(shape: ParsedShape) -> int:
    return shape.frame if isinstance(shape.frame, int) else 0


def _short(text: str) -> str:
    """A value for a message, cut to a readable length."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


__all__ = ["FORMAT", "read_cvat"]
