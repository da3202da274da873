"""What a format writer reads: a task's labels and frames, then its annotations frame by frame.

Writers are streaming functions from a `Dataset` into the members of a zip archive
(`async def write(dataset, archive: zipfile.ZipFile, options: ExportOptions)`, each
member written through `archive.open(path, "w", force_zip64=True)`, so the archive can
be a stream that is never seeked). They never hold more than one
frame's annotations: `Dataset.frames` yields each frame with its shapes and tags, in frame
order, with tracks already expanded (every frame a track is on, keyframes and
interpolated frames alike, each shape carrying its `track_id`, `keyframe` and `outside`).

Shapes keep CVAT's layouts (DESIGN.md, "Shape layouts"): `points` as CVAT stores them
(a mask's run lengths then its box), `rotation` in degrees, skeleton `elements`.
Attribute values are keyed by attribute name, and only attributes that still exist in the
label's spec appear.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

ShapeType = Literal[
    "rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton"
]
LabelType = Literal[
    "any", "rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask",
    "skeleton", "tag",
]  # fmt: skip
InputType = Literal["select", "radio", "checkbox", "number", "text"]
Source = Literal["manual", "semi-auto", "auto", "file", "consensus"]
Subset = str


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """An attribute of a label, as the label's spec defines it."""

    id: int
    name: str
    input_type: InputType
    mutable: bool
    values: tuple[str, ...]
    default_value: str


@dataclass(frozen=True, slots=True)
class Label:
    """A label; a skeleton's sublabels are its `sublabels` (points), its graph in `svg`."""

    id: int
    name: str
    type: LabelType
    color: str
    attributes: tuple[AttributeSpec, ...] = ()
    sublabels: tuple[Label, ...] = ()
    svg: str = ""
    parent_id: int | None = None


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """One frame of the task's media: its task frame number (numbered on across a
    project's tasks), file name and size, and CVAT's number for it."""

    index: int
    name: str
    width: int
    height: int
    subset: Subset = ""
    absolute: int | None = None
    """The frame's number in the media, as CVAT's exports write it (`<image id>`, a
    track's `frame`, Datumaro's `attr.frame`): `start_frame + index * step` of the task's
    data (`DataMeta.source_frame`), plus CVAT's offset of a project's task; None: `index`."""

    @property
    def number(self) -> int:
        """The frame's number in CVAT's exports: `absolute`, else `index`."""
        return self.index if self.absolute is None else self.absolute


@dataclass(frozen=True, slots=True)
class Shape:
    """A shape on one frame: a manual one, or one frame of a track (`track_id` set)."""

    type: ShapeType
    label_id: int
    points: Sequence[float]
    id: int | None = None
    rotation: float = 0.0
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    group: int = 0
    source: Source = "manual"
    attributes: Mapping[str, str] = field(default_factory=dict)
    elements: Sequence[Shape] = ()
    score: float | None = None
    track_id: int | None = None
    keyframe: bool = True


@dataclass(frozen=True, slots=True)
class Tag:
    """A frame-level label with its attributes."""

    label_id: int
    id: int | None = None
    group: int = 0
    source: Source = "manual"
    attributes: Mapping[str, str] = field(default_factory=dict)
    score: float | None = None


@dataclass(frozen=True, slots=True)
class FrameAnnotations:
    """A frame with everything on it."""

    frame: FrameInfo
    shapes: Sequence[Shape] = ()
    tags: Sequence[Tag] = ()


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """The task (or job) being exported."""

    id: int
    name: str
    mode: Literal["annotation", "interpolation"]
    dimension: Literal["2d", "3d"]
    size: int
    labels: tuple[Label, ...]
    subset: Subset = ""
    project_name: str | None = None
    owner: str = ""


class Dataset(Protocol):
    """A task (or job, or a project's tasks one after another) as writers read it."""

    @property
    def task(self) -> TaskInfo:
        """The task, with its labels."""

    def frames(self) -> AsyncIterator[FrameAnnotations]:
        """Every frame, annotated or not, in frame order."""


@dataclass(frozen=True)
class InMemoryDataset:
    """A `Dataset` over lists: for tests, and for small jobs."""

    task: TaskInfo
    items: Sequence[FrameAnnotations]

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        """The items, in order."""
        for item in self.items:
            yield item


def shapes_as_cvat_writes_them(shapes: Sequence[Shape]) -> list[Shape]:
    """A frame's shapes as CVAT's exporters see them: sorted by `z_order` (stably, plain
    shapes before track shapes), without a track's outside frames or a track skeleton
    whose elements are all outside."""

    def visible(shape: Shape) -> bool:
        if shape.track_id is None:
            return True
        if shape.outside:
            return False
        return not (shape.elements and all(element.outside for element in shape.elements))

    return sorted(
        filter(visible, shapes), key=lambda shape: (shape.z_order, shape.track_id is not None)
    )


def labels_by_id(labels: Sequence[Label]) -> dict[int, Label]:
    """Every label and sublabel by id."""
    found: dict[int, Label] = {}
    for label in labels:
        found[label.id] = label
        found.update(labels_by_id(label.sublabels))
    return found


@dataclass(frozen=True)
class ExportOptions:
    """Choices a writer honours: `polygons_as_masks` is the seed's "enable mask export"
    (COCO writes polygons as RLE); `annotated_only` leaves out frames with nothing on them."""

    polygons_as_masks: bool = False
    annotated_only: bool = False
