"""A detector's detections as CVAT's annotations body, in the task's labels.

As CVAT's server converts a detector's answer: objects of model labels that are not
mapped are dropped; attributes go to the mapped task attribute when their value is one
it takes (others are dropped); every object is `source` "auto" on the call's frame. A
skeleton keeps its points of mapped sublabels; a sublabel the model did not give is an
`outside` point at the centre of the others, and a skeleton with every point outside is
dropped. Each shape keeps the model's confidence as its `score`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tessera.inference.detectors.detection import Detection
from tessera.inference.functions.mapping import LabelTarget, attribute_value_fits
from tessera.inference.functions.schemas import AttributeValue, DetectedShape, DetectorResult


def detector_result(
    detections: Sequence[Detection], targets: Mapping[str, LabelTarget], frame: int
) -> DetectorResult:
    """The detections on `frame` as an annotations body (see the module)."""
    shapes = []
    for detection in detections:
        target = targets.get(detection.label)
        if target is None:
            continue
        shape = _shape(detection, target, frame)
        if shape is not None:
            shapes.append(shape)
    return DetectorResult(shapes=shapes)


def _shape(detection: Detection, target: LabelTarget, frame: int) -> DetectedShape | None:
    shape = DetectedShape(
        type=detection.type,
        rotation=detection.rotation,
        points=list(detection.points),
        frame=frame,
        label_id=target.label.id,
        attributes=_attributes(detection.attributes, target),
        score=min(1.0, max(0.0, detection.confidence)),
    )
    if detection.type == "skeleton":
        shape.points = []
        shape.elements = _elements(detection, target, frame)
        if all(element.outside for element in shape.elements):
            return None
    return shape


def _elements(detection: Detection, target: LabelTarget, frame: int) -> list[DetectedShape]:
    given = {}
    for element in detection.elements:
        sub = target.sublabels.get(element.label)
        if sub is not None and element.points:
            given[sub.label.id] = DetectedShape(
                type="points", points=list(element.points[:2]), frame=frame,
                label_id=sub.label.id, attributes=_attributes(element.attributes, sub),
                score=min(1.0, max(0.0, element.confidence)),
            )  # fmt: skip
    xs = [e.points[0] for e in given.values()]
    ys = [e.points[1] for e in given.values()]
    centre = [sum(xs) / len(xs), sum(ys) / len(ys)] if given else [0.0, 0.0]
    score = min(1.0, max(0.0, detection.confidence))
    return [
        given.get(sub.id)
        or DetectedShape(
            type="points", points=centre, frame=frame, label_id=sub.id, outside=True, score=score
        )
        for sub in target.label.sublabels
    ]


def _attributes(values: Mapping[str, str], target: LabelTarget) -> list[AttributeValue]:
    found = []
    for name, value in values.items():
        spec = target.attributes.get(name)
        if spec is not None and attribute_value_fits(value, spec):
            found.append(AttributeValue(spec_id=spec.id, value=value))
    return found
