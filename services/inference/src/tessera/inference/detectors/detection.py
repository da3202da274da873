"""What a detector function gives back, and what the service asks of one.

A detector is the entry of a `detector` function (see `tessera.inference.functions.
registry`): made once per replica as `Detector(options=..., infer=...)`, it turns decoded
frames into `Detection`s in the frames' own pixel coordinates, with the model's labels.
`infer` sends one item (its tensors without the batch axis) to the function's Triton
model through the service's batcher, which puts concurrent callers' items in one batch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

# Sends one item to the function's model and returns its outputs (no batch axis).
InferFn = Callable[[Mapping[str, np.ndarray]], Awaitable[dict[str, np.ndarray]]]
ShapeType = Literal["rectangle", "polygon", "polyline", "points", "ellipse", "mask", "skeleton"]


@dataclass(frozen=True)
class Detection:
    """One object a detector found: a model label, a CVAT shape (`type` and `points` in
    CVAT's layout, in the frame's pixels), the model's confidence in [0, 1], attribute
    values by the model's attribute names, and a skeleton's points as `elements` (each a
    `points` detection of a sublabel)."""

    label: str
    type: ShapeType
    points: tuple[float, ...]
    confidence: float
    rotation: float = 0.0
    attributes: Mapping[str, str] = field(default_factory=dict)
    elements: tuple[Detection, ...] = ()


@dataclass(frozen=True)
class DetectParams:
    """How a call wants its detections: the least confidence kept (None: the function's
    own) and the shape type to give them (None: the detector's first)."""

    threshold: float | None = None
    shape_type: ShapeType | None = None


class Detector(Protocol):
    """A detector function's code around its model."""

    @property
    def shape_types(self) -> Sequence[ShapeType]:
        """The shape types it can give its detections, the default first."""
        ...

    async def detect(
        self, images: Sequence[np.ndarray], params: DetectParams
    ) -> list[list[Detection]]:
        """The detections on each image (uint8 RGB, [height, width, 3]), in order."""
        ...
