"""Model labels to task labels, by CVAT's rules for a function call's `mapping`.

Without a mapping, each model label goes to the task's label of the same name when
their types are compatible (with its attributes of the same names, and a skeleton's
points likewise). A mapping given is checked whole: every model label, task label,
attribute and skeleton point it names must exist, and each pair of labels must be
compatible; a wrong one is a 400 problem naming the mapping's entry at fault. Model
labels left out are not mapped: their objects are dropped.

Label types are compatible when equal, when either is `any` (and the other not a
skeleton), or when one is a `mask` and the other a `polygon`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from tessera.inference.detectors.detection import ShapeType
from tessera.inference.functions.registry import LabelSpec
from tessera.inference.functions.schemas import LabelMappingEntry, SublabelMappingEntry
from tessera.inference.problems import body_field
from tessera.platform.contracts.annotations import SnapshotAttribute, SnapshotLabel
from tessera.platform.errors import Problem

FIELD = "body.mapping"


@dataclass(frozen=True)
class LabelTarget:
    """Where a model label's objects go: the task label, the task attribute for each
    model attribute, and (skeletons) the target of each model point."""

    label: SnapshotLabel
    attributes: Mapping[str, SnapshotAttribute] = field(default_factory=dict)
    sublabels: Mapping[str, LabelTarget] = field(default_factory=dict)


def compatible(model_type: str, task_type: str) -> bool:
    """Whether a model label's objects may go to a task label of `task_type`."""
    return (
        model_type == task_type
        or (task_type == "any" and model_type != "skeleton")
        or (model_type == "any" and task_type != "skeleton")
        or {model_type, task_type} == {"mask", "polygon"}
    )


def resolve_mapping(
    model_labels: Sequence[LabelSpec],
    task_labels: Sequence[SnapshotLabel],
    mapping: Mapping[str, LabelMappingEntry] | None,
) -> dict[str, LabelTarget]:
    """The target of each mapped model label (by its name); see the module."""
    if not mapping:
        return _default(model_labels, task_labels)
    return _given(model_labels, task_labels, mapping, FIELD)


def _default(
    model_labels: Sequence[LabelSpec], task_labels: Sequence[SnapshotLabel]
) -> dict[str, LabelTarget]:
    targets = {}
    for model in model_labels:
        task = next(
            (t for t in task_labels if t.name == model.name and compatible(model.type, t.type)),
            None,
        )
        if task is None:
            continue
        specs = {a.name: a for a in task.attributes}
        attributes = {a.name: specs[a.name] for a in model.attributes if a.name in specs}
        sublabels = {}
        if model.type == "skeleton" and task.type == "skeleton":
            sublabels = _default(model.sublabels, task.sublabels)
        targets[model.name] = LabelTarget(task, attributes, sublabels)
    return targets


def _given(
    model_labels: Sequence[LabelSpec],
    task_labels: Sequence[SnapshotLabel],
    mapping: Mapping[str, LabelMappingEntry | SublabelMappingEntry],
    where: str,
) -> dict[str, LabelTarget]:
    models = {label.name: label for label in model_labels}
    tasks = {label.name: label for label in task_labels}
    targets = {}
    for model_name, entry in mapping.items():
        at = f"{where}.{model_name}"
        model = models.get(model_name)
        if model is None:
            raise _wrong(at, f"the function has no label {model_name!r}")
        task = tasks.get(entry.name)
        if task is None:
            raise _wrong(f"{at}.name", f"the task has no label {entry.name!r}")
        if not compatible(model.type, task.type):
            raise _wrong(
                f"{at}.name",
                f"the function's {model.type} label {model_name!r} cannot go to the task's "
                f"{task.type} label {entry.name!r}",
            )
        attributes = _attributes(model, task, entry.attributes, f"{at}.attributes")
        sublabels = {}
        if model.type == "skeleton" and task.type == "skeleton":
            points = entry.sublabels if isinstance(entry, LabelMappingEntry) else {}
            if not points:
                raise _wrong(f"{at}.sublabels", f"map the points of skeleton {model_name!r}")
            sublabels = _given(model.sublabels, task.sublabels, points, f"{at}.sublabels")
        targets[model_name] = LabelTarget(task, attributes, sublabels)
    return targets


def _attributes(
    model: LabelSpec, task: SnapshotLabel, mapping: Mapping[str, str], where: str
) -> dict[str, SnapshotAttribute]:
    model_names = {a.name for a in model.attributes}
    specs = {a.name: a for a in task.attributes}
    resolved = {}
    for model_name, task_name in mapping.items():
        if model_name not in model_names:
            raise _wrong(f"{where}.{model_name}", f"label {model.name!r} has no attribute "
                         f"{model_name!r} in the function")  # fmt: skip
        if task_name not in specs:
            raise _wrong(f"{where}.{model_name}", f"the task's label {task.name!r} has no "
                         f"attribute {task_name!r}")  # fmt: skip
        resolved[model_name] = specs[task_name]
    return resolved


def attribute_value_fits(value: str, spec: SnapshotAttribute) -> bool:
    """Whether a model's attribute value is one the task's attribute takes (CVAT's rule:
    a number within its min, max and step; `true` or `false` for a checkbox; one of the
    values of a select or radio; any text)."""
    if spec.input_type == "number":
        try:
            low, high, step = (float(v) for v in spec.values[:3])
            number = float(value)
        except ValueError:
            return False
        return low <= number <= high and (step <= 0 or ((number - low) / step).is_integer())
    if spec.input_type == "checkbox":
        return value in ("true", "false")
    if spec.input_type == "text":
        return True
    return value in spec.values


def _wrong(where: str, message: str) -> Problem:
    return Problem(400, f"Invalid mapping: {message}.", errors=[{"field": where,
                                                                 "message": message}])  # fmt: skip


def shape_type_for(
    offered: Sequence[ShapeType], asked: ShapeType | None, targets: Mapping[str, LabelTarget]
) -> ShapeType:
    """The shape type a call's detections get: the one asked for, else the one the mapped
    task labels take when the detector gives it, else the detector's first."""
    label_types = {target.label.type for target in targets.values()} - {"any"}
    if asked is not None:
        if asked not in offered:
            raise body_field(400, "shape_type", f"this function gives {', '.join(offered)} shapes")
        if label_types - {asked}:
            raise body_field(
                400, "shape_type",
                f"the mapped task labels take {', '.join(sorted(label_types))} shapes",
            )  # fmt: skip
        return asked
    if len(label_types) == 1 and (only := next(iter(label_types))) in offered:
        return cast(ShapeType, only)
    return offered[0]
