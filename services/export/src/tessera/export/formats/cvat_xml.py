"""CVAT's XML 1.1, the part that "CVAT for images" and "CVAT for video" share.

CVAT writes its XML through `xml.sax.saxutils.XMLGenerator` (utf-8, no short empty
elements), indenting by hand: a newline and two spaces per level before every start tag
and before every end tag of an element that has children, nothing inside text-only
elements. This module writes the same bytes without building a tree: escaping is the
generator's own (`escape` for text, `quoteattr` for attribute values), numbers are
CVAT's `{:.2f}`, and the meta block follows CVAT's `TaskData.meta_for_task` order
(cvat/apps/dataset_manager/bindings.py, cvat/apps/dataset_manager/formats/cvat.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from tessera.export.model import Label, Shape, TaskInfo

VERSION = "1.1"
HEADER = '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>'
FOOTER = "\n</annotations>\n"
ENCODING = "utf-8"
ENCODING_ERRORS = "xmlcharrefreplace"  # what XMLGenerator's text writer does
_STEP = re.compile(r"step\s*=\s*([1-9]\d*)")  # CVAT's Data.get_frame_step


@dataclass(frozen=True, slots=True)
class CvatUser:
    """An owner or assignee as CVAT's meta names them."""

    username: str
    email: str = ""


@dataclass(frozen=True, slots=True)
class CvatSegment:
    """One segment of the task (`url` is CVAT's `{host}/api/jobs/{job id}`)."""

    id: int
    start: int
    stop: int
    url: str


@dataclass(frozen=True, slots=True)
class CvatTaskMeta:
    """What CVAT's `<meta><task>` carries beyond `TaskInfo`.

    Every field has a neutral default, so a writer can run on `TaskInfo` alone; the
    export service fills what the annotations and ingest services know. Dates are written
    as CVAT writes them, `str()` of an aware datetime (`2024-05-06 10:00:00.123456+00:00`).
    `original_size` (width, height) and `source` (the video's file name) are written only
    when set, as CVAT does for video tasks.
    """

    overlap: int = 0
    bugtracker: str = ""
    created: datetime | None = None
    updated: datetime | None = None
    start_frame: int = 0
    stop_frame: int | None = None
    frame_filter: str = ""
    segments: tuple[CvatSegment, ...] = ()
    owner_email: str = ""
    assignee: CvatUser | None = None
    original_size: tuple[int, int] | None = None
    source: str | None = None
    dumped: datetime | None = None

    @property
    def frame_step(self) -> int:
        """The step of `frame_filter` (`step=N`), 1 without one."""
        found = _STEP.search(self.frame_filter)
        return int(found.group(1)) if found else 1

    def last_frame(self, task: TaskInfo) -> int:
        """`stop_frame`, else the number in the media of the task's last frame."""
        if self.stop_frame is not None:
            return self.stop_frame
        return self.start_frame + max(task.size - 1, 0) * self.frame_step


# A meta node: text, or children in order (CVAT's OrderedDict and list cases write alike).
Node = tuple[str, "str | list[Node]"]


def number(value: float) -> str:
    """A coordinate as CVAT writes it: `{:.2f}`."""
    return f"{value:.2f}"


def attr(name: str, value: str) -> str:
    """` name="value"` exactly as XMLGenerator.startElement writes it."""
    return f" {name}={quoteattr(value)}"


def text(value: str) -> str:
    """Element text exactly as XMLGenerator.characters writes it."""
    return escape(value) if value else ""


def indent(level: int) -> str:
    """CVAT's `_indent()`: a newline, then two spaces per level."""
    return "\n" + "  " * level


def _render(node: Node, level: int, out: list[str]) -> None:
    name, value = node
    out.append(f"{indent(level)}<{name}>")
    if isinstance(value, str):
        out.append(f"{text(value)}</{name}>")
        return
    for child in value:
        _render(child, level + 1, out)
    out.append(f"{indent(level)}</{name}>")


def _date(value: datetime | None) -> str:
    return "" if value is None else str(value)


def _user(name: str, user: CvatUser | None) -> Node:
    if user is None or not user.username:
        return (name, "")
    return (name, [("username", user.username), ("email", user.email)])


def flat_labels(labels: Sequence[Label]) -> list[tuple[Label, Label | None]]:
    """Every label and sublabel with its parent, in id order (CVAT's primary-key order)."""
    found: list[tuple[Label, Label | None]] = []

    def visit(label: Label, parent: Label | None) -> None:
        found.append((label, parent))
        for sublabel in label.sublabels:
            visit(sublabel, label)

    for label in labels:
        visit(label, None)
    return sorted(found, key=lambda pair: pair[0].id)


def _label_node(label: Label, parent: Label | None) -> Node:
    children: list[Node] = [
        ("name", label.name),
        ("color", label.color),
        ("type", label.type),
        (
            "attributes",
            [
                (
                    "attribute",
                    [
                        ("name", spec.name),
                        ("mutable", str(spec.mutable)),
                        ("input_type", spec.input_type),
                        ("default_value", spec.default_value),
                        ("values", "\n".join(spec.values)),
                    ],
                )
                for spec in label.attributes
            ],
        ),
    ]
    if parent is not None:
        children.append(("parent", parent.name))
    if label.type == "skeleton":
        svg = label.svg
        for sublabel in label.sublabels:
            svg = svg.replace(
                f'data-label-id="{sublabel.id}"', f'data-label-name="{sublabel.name}"'
            )
        children.append(("svg", svg))
    return ("label", children)


def task_node(task: TaskInfo, meta: CvatTaskMeta) -> Node:
    """`<task>` in CVAT's order: id, name, size, mode, overlap, bugtracker, created,
    updated, subset, start_frame, stop_frame, frame_filter, segments, owner, assignee,
    labels, then original_size and source for video tasks."""
    stop_frame = meta.last_frame(task)
    children: list[Node] = [
        ("id", str(task.id)),
        ("name", task.name),
        ("size", str(task.size)),
        ("mode", task.mode),
        ("overlap", str(meta.overlap)),
        ("bugtracker", meta.bugtracker),
        ("created", _date(meta.created)),
        ("updated", _date(meta.updated)),
        ("subset", task.subset or "default"),
        ("start_frame", str(meta.start_frame)),
        ("stop_frame", str(stop_frame)),
        ("frame_filter", meta.frame_filter),
        (
            "segments",
            [
                (
                    "segment",
                    [
                        ("id", str(segment.id)),
                        ("start", str(segment.start)),
                        ("stop", str(segment.stop)),
                        ("url", segment.url),
                    ],
                )
                for segment in meta.segments
            ],
        ),
        _user("owner", CvatUser(task.owner, meta.owner_email) if task.owner else None),
        _user("assignee", meta.assignee),
        ("labels", [_label_node(label, parent) for label, parent in flat_labels(task.labels)]),
    ]
    if meta.original_size is not None:
        width, height = meta.original_size
        children.append(("original_size", [("width", str(width)), ("height", str(height))]))
    if meta.source is not None:
        children.append(("source", meta.source))
    return ("task", children)


def meta_block(task: TaskInfo, meta: CvatTaskMeta) -> str:
    """`<meta>` with `<task>` and `<dumped>`, at CVAT's indentation (after `<version>`)."""
    dumped = meta.dumped if meta.dumped is not None else datetime.now(UTC)
    out: list[str] = []
    _render(("meta", [task_node(task, meta), ("dumped", str(dumped))]), 1, out)
    return "".join(out)


ELEMENT_NAMES = {
    "rectangle": "box",
    "polygon": "polygon",
    "polyline": "polyline",
    "points": "points",
    "ellipse": "ellipse",
    "cuboid": "cuboid",
    "mask": "mask",
    "skeleton": "skeleton",
}
"""The XML element of each shape type."""

_CUBOID = (
    "xtl1", "ytl1", "xbl1", "ybl1", "xtr1", "ytr1", "xbr1", "ybr1",
    "xtl2", "ytl2", "xbl2", "ybl2", "xtr2", "ytr2", "xbr2", "ybr2",
)  # fmt: skip


def _pairs(points: Sequence[float]) -> Iterator[tuple[float, float]]:
    """(x, y) pairs of a flat coordinate list."""
    values = iter(points)
    return zip(values, values, strict=False)


def _rotation(shape: Shape) -> str:
    return f' rotation="{number(shape.rotation)}"' if shape.rotation else ""


def _box(shape: Shape) -> str:
    xtl, ytl, xbr, ybr = shape.points[:4]
    return (
        f' xtl="{number(xtl)}" ytl="{number(ytl)}" xbr="{number(xbr)}" ybr="{number(ybr)}"'
        + _rotation(shape)
    )


def _ellipse(shape: Shape) -> str:
    cx, cy, right_x, top_y = shape.points[:4]
    return (
        f' cx="{number(cx)}" cy="{number(cy)}"'
        f' rx="{number(right_x - cx)}" ry="{number(cy - top_y)}"' + _rotation(shape)
    )


def _cuboid(shape: Shape) -> str:
    return "".join(
        f' {name}="{number(value)}"' for name, value in zip(_CUBOID, shape.points, strict=False)
    )


def _points(shape: Shape) -> str:
    points = ";".join(f"{number(x)},{number(y)}" for x, y in _pairs(shape.points))
    return f' points="{points}"'


def _mask(shape: Shape) -> str:
    points: Sequence[float] = shape.points
    left, top, right, bottom = points[-4:]
    rle = ", ".join(str(int(run)) for run in points[:-4])
    return (
        f' rle="{rle}" left="{int(left)}" top="{int(top)}"'
        f' width="{int(right - left) + 1}" height="{int(bottom - top) + 1}"'
    )


_GEOMETRY: dict[str, Callable[[Shape], str]] = {
    "rectangle": _box,
    "polygon": _points,
    "polyline": _points,
    "points": _points,
    "ellipse": _ellipse,
    "cuboid": _cuboid,
    "mask": _mask,
    "skeleton": lambda shape: "",
}


def geometry(shape: Shape) -> str:
    """The shape's geometry as CVAT's XML attributes (`rotation` only when not 0, on boxes
    and ellipses; a mask as `rle`, `left`, `top`, `width`, `height`; none for a skeleton)."""
    return _GEOMETRY[shape.type](shape)


class AttributeElements:
    """Writes `<attribute name="...">value</attribute>` children, quoting each name once."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def write(self, attributes: Mapping[str, str], level: int, out: list[str]) -> None:
        """Append one element per attribute, in the mapping's order, at `level`."""
        for name, value in attributes.items():
            quoted = self._names.get(name)
            if quoted is None:
                quoted = self._names[name] = attr("name", name)
            out.append(f"{indent(level)}<attribute{quoted}>{text(value)}</attribute>")
