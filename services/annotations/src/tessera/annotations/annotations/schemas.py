"""The annotations document as cvat-sdk 2.80 models it (`LabeledData` and its parts).

These models describe the API in the OpenAPI document. Requests are not parsed through
them (see validation.py: one hand-written pass over the JSON is what keeps a PUT of
100,000 shapes fast), and responses are streamed as JSON in the same shape.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class ShapeType(StrEnum):
    """Shape types, with CVAT's `points` layouts (DESIGN.md, "Shape layouts")."""

    RECTANGLE = "rectangle"
    POLYGON = "polygon"
    POLYLINE = "polyline"
    POINTS = "points"
    ELLIPSE = "ellipse"
    CUBOID = "cuboid"
    MASK = "mask"
    SKELETON = "skeleton"


class AttributeVal(BaseModel):
    """The value of one attribute spec."""

    spec_id: int
    value: str = Field(max_length=4096)


class _Geometry(BaseModel):
    type: ShapeType
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    rotation: float = Field(0.0, ge=0, le=360)
    points: list[float] = Field(default_factory=list)


class SubLabeledShape(_Geometry):
    """A skeleton element: a `points` shape of one sublabel."""

    id: int | None = None
    frame: int = Field(ge=0)
    label_id: int = Field(ge=0)
    group: int | None = Field(None, ge=0)
    source: str = "manual"
    attributes: list[AttributeVal] = Field(default_factory=list)
    score: float = Field(1.0, ge=0, le=1)


class LabeledShape(SubLabeledShape):
    """A shape on one frame; skeletons carry their `elements`."""

    elements: list[SubLabeledShape] = Field(default_factory=list)


class TrackedShape(_Geometry):
    """A keyframe of a track (mutable attributes only)."""

    id: int | None = None
    frame: int = Field(ge=0)
    attributes: list[AttributeVal] = Field(default_factory=list)


class SubLabeledTrack(BaseModel):
    """A skeleton element's own track."""

    id: int | None = None
    frame: int = Field(ge=0)
    label_id: int = Field(ge=0)
    group: int | None = Field(None, ge=0)
    source: str = "manual"
    shapes: list[TrackedShape]
    attributes: list[AttributeVal] = Field(default_factory=list)


class LabeledTrack(SubLabeledTrack):
    """A track: keyframes, immutable attributes, and element tracks for skeletons."""

    elements: list[SubLabeledTrack] = Field(default_factory=list)


class LabeledImage(BaseModel):
    """A tag: a label (with attributes) on a whole frame."""

    id: int | None = None
    frame: int = Field(ge=0)
    label_id: int = Field(ge=0)
    group: int | None = Field(None, ge=0)
    source: str = "manual"
    attributes: list[AttributeVal] = Field(default_factory=list)


class LabeledInterval(BaseModel):
    """A label over a frame range (CVAT 2.x); Tessera accepts none yet."""

    id: int | None = None
    label_id: int = Field(ge=0)
    start: int = Field(ge=0)
    stop: int | None = Field(None, ge=0)
    group: int | None = Field(None, ge=0)
    source: str = "manual"
    attributes: list[AttributeVal] = Field(default_factory=list)
    score: float = Field(1.0, ge=0, le=1)


class LabeledData(BaseModel):
    """The annotations of a job or a task; `version` is the optimistic-concurrency token."""

    version: int = 0
    tags: list[LabeledImage] = Field(default_factory=list)
    shapes: list[LabeledShape] = Field(default_factory=list)
    tracks: list[LabeledTrack] = Field(default_factory=list)
    intervals: list[LabeledInterval] = Field(default_factory=list)


class ReviewShape(LabeledShape):
    """A shape of the review list: as GET annotations gives it, with the job holding it."""

    job_id: int
