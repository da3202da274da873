"""What an importer reads from a file, before it is matched to a task.

Readers (one module per format under `tessera.export.imports.formats`) turn a file into
`ParsedAnnotations`: shapes, tags and tracks naming their labels and attributes by name,
and their frames by number or by the file name the format gives. Nothing here knows the
task: `tessera.export.imports.matching` maps names to the task's frames, labels and
attribute specs afterwards, and reports what it skips.

Coordinates are Tessera's (DESIGN.md's shape layouts: a rectangle is [x1, y1, x2, y2],
a polygon flat [x, y, ...], a mask CVAT's runs then [left, top, right, bottom], an
ellipse [cx, cy, rx_point_x, ry_point_y], a 3D cuboid the 16 numbers of DESIGN.md).
Readers convert the format's own layout (COCO's [x, y, w, h], YOLO's normalised
centres, RLE masks) into these; they do not clip to the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ShapeType = Literal[
    "rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton"
]
Source = Literal["manual", "semi-auto", "auto", "file", "consensus"]
"""Where a shape came from, as CVAT records it; readers give "file" unless the file says."""
FrameRef = int | str
"""A frame: its number in the task (0-based), or the image's path as the file names it
(matched like CVAT: with or without its extension and leading directories)."""


@dataclass(slots=True)
class ParsedShape:
    """A shape on a frame (or a keyframe of a track, or an element of a skeleton)."""

    type: ShapeType
    label: str
    points: list[float]
    frame: FrameRef = 0
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    rotation: float = 0.0
    group: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    """Attribute values by attribute name, as text (CVAT's form: "true"/"false" for
    checkboxes, numbers as written)."""
    elements: list[ParsedShape] = field(default_factory=list)
    """A skeleton's points, each labelled with its sublabel's name."""
    score: float | None = None
    """A confidence the file carries (COCO's `score`, MOT's `conf`)."""
    source: Source = "file"
    """What the file says made the shape (CVAT XML's `source`; "auto" where a model did),
    else "file"."""
    keyframe: bool = True
    """For a track's shapes: whether the file marks it a keyframe (CVAT video's
    `keyframe`); readers of per-frame formats keep True."""


@dataclass(slots=True)
class ParsedTag:
    """A frame-level label."""

    label: str
    frame: FrameRef
    group: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    source: Source = "file"


@dataclass(slots=True)
class ParsedTrack:
    """A track: its shapes by frame (keyframes and, as some formats write them, every
    frame), in increasing frame order; a skeleton track's elements as tracks of their own
    (each with the sublabel's name)."""

    label: str
    shapes: list[ParsedShape]
    group: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    """The track's own attribute values (CVAT's immutable attributes)."""
    elements: list[ParsedTrack] = field(default_factory=list)
    source: Source = "file"


@dataclass(slots=True)
class ParsedAnnotations:
    """Everything a file holds."""

    shapes: list[ParsedShape] = field(default_factory=list)
    tags: list[ParsedTag] = field(default_factory=list)
    tracks: list[ParsedTrack] = field(default_factory=list)
    frame_names: dict[int, str] = field(default_factory=dict)
    """Frame numbers the file gives alongside names (CVAT XML's `<image id name>`),
    so a number can be checked against the name, as CVAT does."""
    labels: list[str] = field(default_factory=list)
    """Label names the file declares (categories, classes), in its order, whether used
    or not: a label not in the task is reported once."""
