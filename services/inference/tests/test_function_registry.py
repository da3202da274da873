"""The function registry: the shipped file, the functions as CVAT's lambda API describes
them, and registry files that are wrong (each refused, saying where)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tessera.inference.config import DEFAULT_FUNCTIONS_FILE, InferenceSettings
from tessera.inference.detectors.text import TextDetector
from tessera.inference.functions.registry import (
    FunctionRegistry,
    FunctionSpec,
    RegistryError,
    load_entry,
    make_runners,
)
from tessera.platform.errors import Problem

TEXT = "tessera.inference.detectors.text:TextDetector"
# CVAT's `LambdaFunction.to_dict()` fields: every function's, then each kind's own.
CVAT_FIELDS = {"id", "kind", "labels_v2", "description", "name", "version"}
INTERACTOR_FIELDS = {
    "min_pos_points", "min_neg_points", "startswith_box", "startswith_box_optional",
    "help_message", "animated_gif",
}  # fmt: skip


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "functions.toml"
    path.write_text(text)
    return path


def test_the_shipped_registry_serves_the_text_detector() -> None:
    assert InferenceSettings(env="dev").functions_file == DEFAULT_FUNCTIONS_FILE
    registry = FunctionRegistry.load(DEFAULT_FUNCTIONS_FILE)
    spec = registry.get("ppocr_v4_det")
    assert (spec.kind, spec.model, spec.model_version) == ("detector", "ppocr_v4_det", "")
    assert registry.triton_models() == [("ppocr_v4_det", "")]
    described = spec.to_cvat()
    assert set(described) == CVAT_FIELDS
    assert described["labels_v2"] == [{"name": "text", "type": "any", "attributes": []}]
    assert described["kind"] == "detector"
    runners = make_runners(registry, lambda spec: _never)
    assert isinstance(runners["ppocr_v4_det"], TextDetector)
    assert runners["ppocr_v4_det"].options.box_threshold == 0.6


async def _never(inputs: Any) -> Any:
    raise AssertionError("not called")


def test_each_kind_is_described_as_cvat_does(tmp_path: Path) -> None:
    registry = FunctionRegistry.load(
        write(
            tmp_path,
            f"""
[[functions]]
id = "faces"
name = "Faces"
kind = "detector"
model = "mtcnn"
model_version = "2"
entry = "{TEXT}"
[[functions.labels]]
name = "face"
type = "skeleton"
svg = "<line x1='1' y1='1' x2='2' y2='2' data-node-from='1' data-node-to='2'/>"
sublabels = [{{ name = "left_eye", type = "points" }}, {{ name = "right_eye", type = "points" }}]
[[functions.labels.attributes]]
name = "pose"
input_type = "select"
values = ["frontal", "profile"]

[[functions]]
id = "opencv.grabcut"
name = "GrabCut"
kind = "interactor"
model = "cpu"
entry = "{TEXT}"
min_pos_points = 1
min_neg_points = 0
startswith_box = true
help_message = "Draw a box, then click"

[[functions]]
id = "opencv.tracker"
name = "Template tracker"
kind = "tracker"
model = "cpu"
entry = "{TEXT}"
supported_shape_types = ["rectangle", "polygon"]
""",
        )
    )
    faces, grabcut, tracker = (spec.to_cvat() for spec in registry)
    assert set(faces) == CVAT_FIELDS
    assert faces["labels_v2"] == [
        {
            "name": "face",
            "type": "skeleton",
            "attributes": [
                {"name": "pose", "input_type": "select", "values": ["frontal", "profile"]}
            ],
            "sublabels": [
                {"name": "left_eye", "type": "points", "attributes": []},
                {"name": "right_eye", "type": "points", "attributes": []},
            ],
            "svg": "<line x1='1' y1='1' x2='2' y2='2' data-node-from='1' data-node-to='2'/>",
        }
    ]
    assert set(grabcut) == CVAT_FIELDS | INTERACTOR_FIELDS
    assert (grabcut["min_pos_points"], grabcut["min_neg_points"]) == (1, 0)
    assert (grabcut["startswith_box"], grabcut["startswith_box_optional"]) == (True, False)
    assert (grabcut["help_message"], grabcut["animated_gif"]) == ("Draw a box, then click", "")
    assert set(tracker) == CVAT_FIELDS | {"supported_shape_types"}
    assert tracker["supported_shape_types"] == ["rectangle", "polygon"]
    assert registry.triton_models() == [("mtcnn", "2")]
    with pytest.raises(Problem) as missing:
        registry.get("nope")
    assert missing.value.status == 404


def function(**fields: str) -> str:
    """One [[functions]] table: a valid detector but for `fields` (written as TOML)."""
    values = {"id": '"a"', "name": '"A"', "kind": '"detector"', "model": '"m"',
              "entry": f'"{TEXT}"', **fields}  # fmt: skip
    return "[[functions]]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())


LABEL = "[[functions.labels]]\nname = 'x'\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (function() + function(), "function 'a' is declared twice"),
        (function(kind='"classifier"'), "kind"),
        (function(id='"-a"'), "id"),
        (function(colour="1"), "colour"),
        (function() + LABEL + "type = 'skeleton'\n", "sublabels"),
        (function() + LABEL + LABEL, "label 'x' is declared twice"),
        (function(model='"cpu"', model_version='"1"'), "cpu function"),
        ("[[functions]\n", "functions.toml"),
    ],
)
def test_a_wrong_registry_is_refused_saying_where(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(RegistryError, match=r"functions\.toml") as refused:
        FunctionRegistry.load(write(tmp_path, text))
    assert says in str(refused.value)


def test_entries_and_options_are_checked_when_the_functions_are_made(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot be loaded"):
        load_entry("tessera.inference.nowhere:Thing")
    with pytest.raises(RegistryError, match="not callable"):
        load_entry("tessera.inference.detectors.text:STRIDE")
    registry = FunctionRegistry([
        FunctionSpec(id="t", name="T", kind="detector", model="m", entry=TEXT,
                     options={"max_side": "big"}),
    ])  # fmt: skip
    with pytest.raises(RegistryError, match=r"(?s)function 't'.*max_side"):
        make_runners(registry, lambda spec: _never)
