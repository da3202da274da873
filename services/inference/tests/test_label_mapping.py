"""Model labels to task labels by CVAT's rules, and detections as CVAT's annotations body."""

from __future__ import annotations

from typing import Any

import pytest

from tessera.inference.detectors.detection import Detection
from tessera.inference.functions.mapping import (
    attribute_value_fits,
    compatible,
    resolve_mapping,
)
from tessera.inference.functions.registry import LabelSpec
from tessera.inference.functions.results import detector_result
from tessera.inference.functions.schemas import LabelMappingEntry
from tessera.platform.contracts.annotations import SnapshotAttribute, SnapshotLabel
from tessera.platform.errors import Problem


def attribute(id_: int, name: str, input_type: str, values: list[str]) -> SnapshotAttribute:
    return SnapshotAttribute(
        id=id_, name=name, input_type=input_type, mutable=False, values=values,
        default_value=values[0] if values else "",
    )  # fmt: skip


def label(id_: int, name: str, type_: str = "any", **fields: Any) -> SnapshotLabel:
    return SnapshotLabel.model_validate(
        {"id": id_, "name": name, "color": "#000000", "type": type_, "attributes": [], **fields}
    )


COLOUR = {"name": "colour", "input_type": "select", "values": ["red", "blue"]}
EYES = [{"name": "left_eye", "type": "points"}, {"name": "right_eye", "type": "points"}]
MODEL = [
    LabelSpec.model_validate({"name": "car", "attributes": [COLOUR]}),
    LabelSpec(name="text", type="rectangle"),
    LabelSpec.model_validate({"name": "face", "type": "skeleton", "svg": "<svg/>",
                              "sublabels": EYES}),
]  # fmt: skip
TASK = [
    label(1, "car", attributes=[attribute(11, "colour", "select", ["red", "green"])]),
    label(2, "vehicle", "rectangle", attributes=[attribute(21, "paint", "text", [])]),
    label(3, "text", "polygon"),
    label(4, "face", "skeleton", sublabels=[label(41, "left_eye", "points", parent_id=4),
                                            label(42, "right_eye", "points", parent_id=4)]),
]  # fmt: skip


def mapping(entries: dict[str, Any]) -> dict[str, LabelMappingEntry]:
    return {name: LabelMappingEntry.model_validate(entry) for name, entry in entries.items()}


def test_label_types_are_compatible_as_in_cvat() -> None:
    assert compatible("rectangle", "rectangle")
    assert compatible("any", "polygon")
    assert compatible("polygon", "any")
    assert compatible("mask", "polygon")
    assert compatible("polygon", "mask")
    assert not compatible("rectangle", "polygon")
    assert not compatible("any", "skeleton")
    assert not compatible("skeleton", "any")


def test_without_a_mapping_labels_go_by_name_where_types_allow() -> None:
    targets = resolve_mapping(MODEL, TASK, None)
    # "text" is a rectangle label of the model, a polygon label of the task: not mapped.
    assert set(targets) == {"car", "face"}
    assert targets["car"].label.id == 1
    assert {name: spec.id for name, spec in targets["car"].attributes.items()} == {"colour": 11}
    assert {name: t.label.id for name, t in targets["face"].sublabels.items()} == {
        "left_eye": 41, "right_eye": 42,
    }  # fmt: skip
    assert resolve_mapping(MODEL, TASK, {}) == targets


def test_a_given_mapping_is_followed() -> None:
    targets = resolve_mapping(
        MODEL, TASK, mapping({"car": {"name": "vehicle", "attributes": {"colour": "paint"}}})
    )
    assert set(targets) == {"car"}
    assert targets["car"].label.id == 2
    assert targets["car"].attributes["colour"].id == 21


@pytest.mark.parametrize(
    ("entries", "field"),
    [
        ({"truck": {"name": "car"}}, "body.mapping.truck"),
        ({"car": {"name": "lorry"}}, "body.mapping.car.name"),
        ({"text": {"name": "text"}}, "body.mapping.text.name"),
        ({"car": {"name": "car", "attributes": {"size": "colour"}}},
         "body.mapping.car.attributes.size"),
        ({"car": {"name": "car", "attributes": {"colour": "size"}}},
         "body.mapping.car.attributes.colour"),
        ({"face": {"name": "face"}}, "body.mapping.face.sublabels"),
        ({"face": {"name": "face", "sublabels": {"nose": {"name": "left_eye"}}}},
         "body.mapping.face.sublabels.nose"),
    ],
)  # fmt: skip
def test_a_wrong_mapping_is_a_400_naming_its_entry(entries: dict[str, Any], field: str) -> None:
    with pytest.raises(Problem) as refused:
        resolve_mapping(MODEL, TASK, mapping(entries))
    assert refused.value.status == 400
    assert [error["field"] for error in refused.value.errors] == [field]
    assert refused.value.detail.startswith("Invalid mapping: ")


def test_attribute_values_are_kept_when_the_task_takes_them() -> None:
    assert attribute_value_fits("red", attribute(1, "c", "select", ["red"]))
    assert not attribute_value_fits("blue", attribute(1, "c", "radio", ["red"]))
    assert attribute_value_fits("true", attribute(1, "c", "checkbox", ["false"]))
    assert not attribute_value_fits("yes", attribute(1, "c", "checkbox", ["false"]))
    assert attribute_value_fits("anything", attribute(1, "c", "text", []))
    number = attribute(1, "n", "number", ["0", "10", "2"])
    assert attribute_value_fits("4", number)
    assert not attribute_value_fits("5", number)
    assert not attribute_value_fits("12", number)
    assert not attribute_value_fits("four", number)


def test_detections_become_the_task_labels_shapes() -> None:
    targets = resolve_mapping(MODEL, TASK, None)
    detections = [
        Detection("car", "rectangle", (1, 2, 30, 40), 0.9, attributes={"colour": "red"}),
        Detection("car", "rectangle", (5, 5, 9, 9), 0.7, attributes={"colour": "blue"}),
        Detection("text", "rectangle", (0, 0, 5, 5), 0.8),  # not mapped: dropped
        Detection("face", "skeleton", (), 0.95, elements=(
            Detection("left_eye", "points", (10, 20), 0.9),
            Detection("nose", "points", (15, 25), 0.9),  # not a sublabel: dropped
        )),
        Detection("face", "skeleton", (), 0.5, elements=(
            Detection("nose", "points", (15, 25), 0.9),  # every point outside: dropped
        )),
    ]  # fmt: skip
    body = detector_result(detections, targets, frame=7).model_dump()
    assert (body["version"], body["tags"], body["tracks"]) == (0, [], [])
    red, blue, face = body["shapes"]
    assert red == {
        "type": "rectangle", "occluded": False, "outside": False, "z_order": 0,
        "rotation": 0.0, "points": [1.0, 2.0, 30.0, 40.0], "frame": 7, "label_id": 1,
        "group": None, "source": "auto", "attributes": [{"spec_id": 11, "value": "red"}],
        "elements": [], "score": 0.9,
    }  # fmt: skip
    assert blue["attributes"] == []  # "blue" is not a value of the task's attribute
    assert (face["type"], face["label_id"], face["points"]) == ("skeleton", 4, [])
    left, right = face["elements"]
    assert (left["label_id"], left["points"], left["outside"]) == (41, [10.0, 20.0], False)
    assert (right["label_id"], right["points"], right["outside"]) == (42, [10.0, 20.0], True)
