"""The function registry: the functions of CVAT's lambda API, declared in a TOML file.

The file shipped with the service is `tessera/inference/functions.toml`
(`TESSERA_FUNCTIONS_FILE` points at another). Each `[[functions]]` table declares one
function:

    [[functions]]
    id = "ppocr_v4_det"                 # CVAT's function id ([a-zA-Z0-9][a-zA-Z0-9_.-]*)
    name = "Text detector (PP-OCRv4)"
    kind = "detector"                   # detector | interactor | tracker | reid
    description = "..."
    model = "ppocr_v4_det"              # the Triton model it runs, or "cpu" (in-process)
    model_version = ""                  # "" is the newest version Triton serves
    entry = "tessera.inference.detectors.text:TextDetector"   # its pre/post-processing
    options = { max_side = 960 }        # given to the entry, which checks them

    [[functions.labels]]
    name = "text"
    type = "any"                        # CVAT's label types; "skeleton" with sublabels

An interactor also says `min_pos_points`, `min_neg_points`, `startswith_box`,
`startswith_box_optional`, `help_message` and `animated_gif`; a tracker its
`supported_shape_types`. `FunctionSpec.to_cvat()` is the function as CVAT's
`GET /api/lambda/functions` lists it.

The entry is a callable (a class, usually) made once per replica as
`entry(options=..., infer=...)`: `infer` sends one item to the function's Triton model
through the service's batcher (None for a "cpu" function).
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tessera.inference.detectors.detection import InferFn
from tessera.platform.errors import NotFound

FunctionKind = Literal["detector", "interactor", "tracker", "reid"]
AttributeType = Literal["select", "radio", "checkbox", "number", "text"]
LabelType = Literal[
    "any", "rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask",
    "skeleton", "tag",
]  # fmt: skip
# A function that runs in the service's process, not on Triton.
CPU = "cpu"
FUNCTION_ID = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
ENTRY = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


class RegistryError(ValueError):
    """A registry file that cannot be read, or that declares functions wrongly."""


class AttributeSpec(BaseModel):
    """An attribute a function gives its objects of a label (CVAT's `input_type` and
    `values`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    input_type: AttributeType
    values: list[str] = Field(default_factory=list)


class LabelSpec(BaseModel):
    """A label a function gives its objects; a skeleton has its points as `sublabels`
    and its graph as `svg`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    type: LabelType = "any"
    attributes: list[AttributeSpec] = Field(default_factory=list)
    sublabels: list[LabelSpec] = Field(default_factory=list)
    svg: str = ""

    @model_validator(mode="after")
    def _check(self) -> LabelSpec:
        _unique([a.name for a in self.attributes], f"label {self.name!r}: attribute")
        if self.type == "skeleton":
            if not self.sublabels:
                raise ValueError(f"skeleton label {self.name!r} has no sublabels")
            _unique([s.name for s in self.sublabels], f"skeleton {self.name!r}: sublabel")
            if any(s.type == "skeleton" or s.sublabels for s in self.sublabels):
                raise ValueError(f"skeleton {self.name!r}: a sublabel cannot have sublabels")
        elif self.sublabels or self.svg:
            raise ValueError(f"label {self.name!r}: only skeletons have sublabels and svg")
        return self

    def to_cvat(self) -> dict[str, Any]:
        """The label as CVAT's function description lists it (`labels_v2`)."""
        label: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "attributes": [a.model_dump() for a in self.attributes],
        }
        if self.type == "skeleton":
            label["sublabels"] = [s.to_cvat() for s in self.sublabels]
            label["svg"] = self.svg
        return label


class FunctionSpec(BaseModel):
    """One function of the registry: what CVAT's lambda API says about it, the Triton
    model it runs (or "cpu") and the code around the model (`entry` and its `options`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=FUNCTION_ID, max_length=200)
    name: str = Field(min_length=1)
    kind: FunctionKind
    description: str = ""
    version: int = Field(default=1, ge=1)
    labels: list[LabelSpec] = Field(default_factory=list)
    # Interactors: the points a user gives before the first call, and how.
    min_pos_points: int = 1
    min_neg_points: int = -1
    startswith_box: bool = False
    startswith_box_optional: bool = False
    help_message: str = ""
    animated_gif: str = ""
    # Trackers: the shapes they follow.
    supported_shape_types: list[str] = Field(default_factory=lambda: ["rectangle"])
    model: str = Field(min_length=1)
    model_version: str = ""
    entry: str = Field(pattern=ENTRY)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> FunctionSpec:
        _unique([label.name for label in self.labels], f"function {self.id!r}: label")
        if self.model == CPU and self.model_version:
            raise ValueError(f"function {self.id!r}: a cpu function has no model_version")
        return self

    @property
    def on_triton(self) -> bool:
        """Whether the function's model runs on Triton (else in the service's process)."""
        return self.model != CPU

    def to_cvat(self) -> dict[str, Any]:
        """The function as CVAT's `GET /api/lambda/functions[/{id}]` answers it: id, kind,
        labels_v2, description, name, version, and the interactor's or tracker's own
        fields."""
        answer: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "labels_v2": [label.to_cvat() for label in self.labels],
            "description": self.description,
            "name": self.name,
            "version": self.version,
        }
        if self.kind == "interactor":
            answer.update(
                min_pos_points=self.min_pos_points,
                min_neg_points=self.min_neg_points,
                startswith_box=self.startswith_box,
                startswith_box_optional=self.startswith_box_optional,
                help_message=self.help_message,
                animated_gif=self.animated_gif,
            )
        elif self.kind == "tracker":
            answer["supported_shape_types"] = list(self.supported_shape_types)
        return answer


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    functions: list[FunctionSpec] = Field(default_factory=list)


def _unique(names: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name!r} is declared twice")
        seen.add(name)


class FunctionRegistry:
    """The functions a replica serves, by id, in the order of the file."""

    def __init__(self, functions: Sequence[FunctionSpec]) -> None:
        _unique([spec.id for spec in functions], "function")
        self._functions = {spec.id: spec for spec in functions}

    @classmethod
    def load(cls, path: Path) -> FunctionRegistry:
        """The registry declared in a TOML file; `RegistryError` saying where it is wrong."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RegistryError(f"function registry {path}: {exc}") from exc
        try:
            return cls(_RegistryFile.model_validate(data).functions)
        except (ValidationError, ValueError) as exc:
            raise RegistryError(f"function registry {path}: {exc}") from exc

    def __iter__(self) -> Iterator[FunctionSpec]:
        return iter(self._functions.values())

    def __len__(self) -> int:
        return len(self._functions)

    def get(self, function_id: str) -> FunctionSpec:
        """The function `function_id`; a 404 problem when there is none."""
        spec = self._functions.get(function_id)
        if spec is None:
            raise NotFound(f"There is no function {function_id!r}.")
        return spec

    def triton_models(self) -> list[tuple[str, str]]:
        """The Triton models (name, version) the functions run, each once, in order."""
        return list(dict.fromkeys((s.model, s.model_version) for s in self if s.on_triton))


def load_entry(entry: str) -> Callable[..., object]:
    """The callable that `entry` ("package.module:name") names; `RegistryError` when it
    cannot be imported or is not callable."""
    module_name, _, attribute = entry.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise RegistryError(f"function entry {entry!r} cannot be loaded: {exc}") from exc
    if not callable(found):
        raise RegistryError(f"function entry {entry!r} is not callable")
    result: Callable[..., object] = found
    return result


def make_runners(
    registry: FunctionRegistry, infer_for: Callable[[FunctionSpec], InferFn | None]
) -> dict[str, object]:
    """Each function's code, made once: `entry(options=..., infer=infer_for(spec))`;
    `RegistryError` naming the function whose entry or options are wrong."""
    runners = {}
    for spec in registry:
        factory = load_entry(spec.entry)
        try:
            runners[spec.id] = factory(options=spec.options, infer=infer_for(spec))
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"function {spec.id!r} ({spec.entry}): {exc}") from exc
    return runners
