"""The shapes an auto-annotation request writes, a batch at a time, and how a resumed
request recognises a batch that an earlier attempt already wrote.

Each frame's detections become shapes as an online call's do (`functions.results`:
mapped labels only, `source` "auto", the confidence as `score`). With
`conv_mask_to_poly`, a mask becomes the polygon of its largest region (CVAT's detectors
give that polygon with the mask; here it is traced from the mask), and a mask whose
region is too small for a polygon is dropped.

A shape's fingerprint is what a write stores of it and no other request would write the
same way by chance: frame, label, type, `source` "auto", points and score (rounded, so
that the stored numbers compare equal to the sent ones).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tessera.geometry import cvat_mask_to_array, mask_to_polygons
from tessera.inference.detectors.detection import Detection
from tessera.inference.functions.mapping import LabelTarget
from tessera.inference.functions.results import detector_result

Fingerprint = tuple[int, int, str, tuple[float, ...], float]
# Pixels a traced mask polygon may deviate from the mask's boundary.
POLYGON_TOLERANCE = 1.0


def frame_shapes(
    detections: Sequence[Detection],
    targets: Mapping[str, LabelTarget],
    frame: int,
    *,
    size: tuple[int, int],
    conv_mask_to_poly: bool,
) -> list[dict[str, Any]]:
    """One frame's detections as CVAT shapes (`LabeledShape` JSON) in the task's labels;
    `size` is the frame's (height, width)."""
    shapes = [
        shape.model_dump(mode="json")
        for shape in detector_result(detections, targets, frame).shapes
    ]
    if not conv_mask_to_poly:
        return shapes
    converted = (mask_as_polygon(shape, size) if shape["type"] == "mask" else shape
                 for shape in shapes)  # fmt: skip
    return [shape for shape in converted if shape is not None]


def mask_as_polygon(shape: dict[str, Any], size: tuple[int, int]) -> dict[str, Any] | None:
    """A mask shape as the polygon around its largest region (None when no region is
    large enough for one)."""
    height, width = size
    mask = cvat_mask_to_array(shape["points"], height, width)
    rings = [ring for ring in mask_to_polygons(mask, POLYGON_TOLERANCE) if _area(ring) > 0]
    if not rings:
        return None
    largest = max(rings, key=_area)
    return {**shape, "type": "polygon", "points": [float(v) for v in largest]}


def _area(ring: np.ndarray) -> float:
    """The signed shoelace area of a flat [x0, y0, x1, y1, ...] ring (outer boundaries
    are positive, holes negative)."""
    xs, ys = ring[0::2], ring[1::2]
    return float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2


def fingerprint(shape: Mapping[str, Any]) -> Fingerprint:
    """What identifies a written shape (see the module)."""
    return (
        int(shape["frame"]),
        int(shape["label_id"]),
        str(shape["type"]),
        tuple(round(float(v), 3) for v in shape.get("points") or ()),
        round(float(shape.get("score", 1.0)), 4),
    )


def fingerprints(shapes: Iterable[Mapping[str, Any]]) -> set[Fingerprint]:
    """The fingerprints of shapes written by an auto-annotation request."""
    return {fingerprint(shape) for shape in shapes if shape.get("source") == "auto"}


@dataclass
class Batch:
    """Frames whose shapes are to be written together: the last of them and the shapes."""

    last: int | None = None
    frames: int = 0
    shapes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, frame: int, shapes: Sequence[dict[str, Any]]) -> None:
        """Add a frame (in increasing order) and its shapes."""
        self.last = frame
        self.frames += 1
        self.shapes.extend(shapes)

    def document(self) -> dict[str, Any]:
        """The batch as CVAT's annotations body (no `version`: an append that does not
        depend on what else is there)."""
        return {"tags": [], "shapes": self.shapes, "tracks": []}
