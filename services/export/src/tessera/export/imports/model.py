"""What an importer reads from a file, before it is matched to a task.

Readers (one module per format under `tessera.export.imports.formats`) turn a file into
`ParsedAnnotations`: shapes, tags and tracks naming their labels and attributes by name,
and their frames by number or by the file name the format gives. Nothing here knows the
task: `tessera.export.imports.matching` maps names to the task's frames, labels and
attribute specs afterwards, and reports what it skips.

For a dataset import (a project's `POST /api/projects/{id}/dataset/`, which makes a task
of each subset with the upload's images as its media) readers also list the items
(`ParsedItem`: the frame ref, the subset, the image's member where they know it) and put
the subset of each shape's and tag's frame on it (`subset`); a task import ignores both.

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


@dataclass(frozen=True, slots=True)
class Position:
    """A frame by its place among the import target's frames, from 0: MOT's frame column
    less one. For a task, the task frame of that number; for a job, counted from the
    job's start frame (CVAT's `int(item.id) - 1 + instance_data.start`)."""

    index: int

    def __str__(self) -> str:
        return f"position {self.index}"


FrameRef = int | str | Position
"""A frame: its number in the media as CVAT's exports write it (`<image id>`, a track's
`frame`: `start_frame + task frame * step`, so the task frame itself for a task that
starts at 0 without a step), the image's path as the file names it (matched like CVAT:
with or without its extension and leading directories), or a `Position`."""


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
    subset: str = ""
    """The dataset subset of its frame, where the format has subsets ("" where it has
    none); a dataset import makes a task of each subset, a task import ignores it."""


@dataclass(slots=True)
class ParsedTag:
    """A frame-level label."""

    label: str
    frame: FrameRef
    group: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    source: Source = "file"
    subset: str = ""
    """The dataset subset of its frame, as a shape's."""


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
class ParsedItem:
    """An item of a dataset: an image and what is on it. A dataset import
    (`tessera.export.datasets`) makes the tasks' media of the items' images."""

    name: str
    """The frame ref its annotations give (their `frame`)."""
    subset: str = ""
    """Its subset ("" where the format has none); its annotations carry the same."""
    image: str | None = None
    """The upload's member holding its image, where the reader knows it; None: the import
    looks the image up by `name` among the upload's images."""


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
    items: list[ParsedItem] = field(default_factory=list)
    """Every item the file lists, annotated or not, in its order (readers of formats that
    list their images fill it; where it is empty, a dataset import takes every image of
    the upload as an item of no subset). A task import ignores it."""
