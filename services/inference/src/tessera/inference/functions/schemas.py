"""What CVAT's lambda function endpoints take and answer, as CVAT 2.80's server does.

- `GET /api/lambda/functions` and `/api/lambda/functions/{id}`: each function as
  `FunctionSpec.to_cvat()` gives it (a JSON object without a fixed schema in CVAT's API
  description, so none here either).
- `POST /api/lambda/functions/{id}` (an online call): `OnlineCall` in, and for a
  detector `DetectorResult`: the frame's objects as CVAT's annotations body (`tags`,
  `shapes`, `tracks`), with the task's label and attribute ids, `source` "auto", and each
  shape's confidence as its `score`; for an interactor `InteractorAnswer`, for a tracker
  `TrackerAnswer`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tessera.inference.detectors.detection import ShapeType


class SublabelMappingEntry(BaseModel):
    """Where a skeleton's point (model sublabel) goes: a sublabel of the task's skeleton,
    and its attributes (model attribute name -> task attribute name)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    attributes: dict[str, str] = Field(default_factory=dict)


class LabelMappingEntry(BaseModel):
    """Where a model label goes: a task label (`name`), its attributes (model attribute
    name -> task attribute name) and, for a skeleton, its points (`sublabels`)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    attributes: dict[str, str] = Field(default_factory=dict)
    sublabels: dict[str, SublabelMappingEntry] = Field(default_factory=dict)


class OnlineCall(BaseModel):
    """An online call as CVAT's clients send it. A detector needs `frame` (a task frame
    number) and `task` or `job` (the job's task, when both). `mapping` says which task
    label each model label goes to (by default: the task's label of the same name);
    `threshold` is the least confidence kept (the function's own when absent or 0, as in
    CVAT). `cleanup` is taken and ignored (CVAT's online calls ignore it too).

    Beyond CVAT: `shape_type` asks a detector that can give several kinds of shapes for
    one of them (the text detector: `rectangle`, the default, or `polygon`, a rotated
    box); without it, the mapped task label's type decides when the detector can give
    that type. `roi` ([xtl, ytl, xbr, ybr], in the frame's pixels) runs the detector on
    that part of the frame only. Other fields (CVAT's UI's `type`, `quality`) are taken
    and not used.

    An interactor takes `pos_points` and `neg_points` ([[x, y], ...] in the frame's
    pixels) and `obj_bbox` (its two corners [[x1, y1], [x2, y2]], optional); a tracker
    `shapes` (a rectangle's [x1, y1, x2, y2] per object) and `states` (the `states` of
    its previous answer, one per shape, null for an object whose track starts here).
    Their form is checked by the function itself, which names the field at fault (a
    400, as CVAT's server answers), so they are not typed here. Neither takes `mapping`.
    """

    model_config = ConfigDict(extra="allow")

    task: int | None = Field(default=None, ge=1)
    job: int | None = Field(default=None, ge=1)
    frame: int | None = Field(default=None, ge=0)
    threshold: float | None = Field(default=None, ge=0, le=1)
    mapping: dict[str, LabelMappingEntry] | None = None
    cleanup: bool = False
    conv_mask_to_poly: bool = False
    shape_type: ShapeType | None = None
    roi: list[float] | None = Field(default=None, min_length=4, max_length=4)
    pos_points: Any = Field(default=None, description="Interactors: [[x, y], ...] on the object.")
    neg_points: Any = Field(default=None, description="Interactors: [[x, y], ...] off it.")
    obj_bbox: Any = Field(default=None, description="Interactors: [[x1, y1], [x2, y2]] around it.")
    shapes: Any = Field(default=None, description="Trackers: [[x1, y1, x2, y2], ...].")
    states: Any = Field(default=None, description="Trackers: the previous answer's states.")


class AttributeValue(BaseModel):
    """An attribute of an object: the task's attribute specification id and the value."""

    spec_id: int
    value: str


class DetectedShape(BaseModel):
    """A shape as CVAT's annotations body carries it (`LabeledShape`), made by a model."""

    type: str
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    rotation: float = 0.0
    points: list[float]
    frame: int
    label_id: int
    group: int | None = None
    source: str = "auto"
    attributes: list[AttributeValue] = Field(default_factory=list)
    elements: list[DetectedShape] = Field(default_factory=list)
    score: float = Field(ge=0, le=1)


class DetectedTag(BaseModel):
    """A tag as CVAT's annotations body carries it (`LabeledImage`), made by a model."""

    frame: int
    label_id: int
    group: int | None = None
    source: str = "auto"
    attributes: list[AttributeValue] = Field(default_factory=list)


class DetectorResult(BaseModel):
    """A detector's answer to an online call: the frame's objects as an annotations body
    (what CVAT's UI adds to the job; nothing is stored)."""

    version: int = 0
    tags: list[DetectedTag] = Field(default_factory=list)
    shapes: list[DetectedShape] = Field(default_factory=list)
    tracks: list[dict[str, Any]] = Field(default_factory=list)


class InteractorAnswer(BaseModel):
    """An interactor's answer (CVAT's interactors of version 2 on): the object's mask
    over `bounds` (rows of 0 and 1), its outline as a polygon, and `bounds`, the mask's
    inclusive box [left, top, right, bottom] in the frame's pixels."""

    mask: list[list[int]]
    points: list[list[float]]
    bounds: list[int] = Field(min_length=4, max_length=4)


class TrackerAnswer(BaseModel):
    """A tracker's answer: each object's box on the frame ([x1, y1, x2, y2], in the order
    of the call's `shapes`) and its new state, signed by the server, for the next call."""

    shapes: list[list[float]]
    states: list[str]
