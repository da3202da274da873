"""Schemas of labels, attributes and skeleton sublabels (CVAT's label model).

The same request models serve `labels` in project and task bodies and
`PATCH /api/labels/{id}`, so a label is validated the same way wherever it comes from.
Rules that need only the attribute itself (values that fit the input type, a default
among them) are checked here; rules across labels (unique names, sublabels of
skeletons, the skeleton graph) in `service.py`, after the request is merged with what
is stored.
"""

import math
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator

LabelType = Literal[
    "any",
    "rectangle",
    "polygon",
    "polyline",
    "points",
    "ellipse",
    "cuboid",
    "mask",
    "skeleton",
    "tag",
]
SublabelType = Literal["points", "any"]
InputType = Literal["select", "radio", "checkbox", "number", "text"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Color = Annotated[
    str,
    Field(pattern=r"^(#[0-9a-fA-F]{6})?$", description='"#rrggbb"; empty picks a free colour.'),
]


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def normalize_values(input_type: str, values: list[str]) -> list[str]:
    """The values of an attribute in their stored form; ValueError when they do not fit."""
    values = [value.strip() for value in values]
    if input_type == "number":
        if len(values) == 1 and values[0].count(";") == 2:
            values = [part.strip() for part in values[0].split(";")]
        if len(values) != 3:
            raise ValueError("a number attribute needs three values: min, max and step")
        try:
            low, high, step = (_finite(value) for value in values)
        except ValueError:
            raise ValueError("min, max and step must be finite numbers") from None
        if low > high:
            raise ValueError("min must not exceed max")
        if step <= 0:
            raise ValueError("step must be positive")
        return values
    if input_type in ("select", "radio"):
        if not values:
            raise ValueError(f"a {input_type} attribute needs at least one value")
        if not all(values):
            raise ValueError("values must not be empty")
        if len(set(values)) != len(values):
            raise ValueError("values must be distinct")
        return values
    if input_type == "checkbox":
        values = [value.lower() for value in values] or ["false"]
        if len(values) != 1 or values[0] not in ("true", "false"):
            raise ValueError("a checkbox attribute has one value: 'true' or 'false'")
        return values
    return values


def resolve_default(input_type: str, values: list[str], default: str) -> str:
    """The default value to store (the first value when empty); ValueError when it is invalid."""
    if not default:
        return values[0] if values else ""
    if input_type == "number":
        try:
            number = _finite(default)
        except ValueError:
            raise ValueError("must be a number") from None
        if not float(values[0]) <= number <= float(values[1]):
            raise ValueError(f"must lie between {values[0]} and {values[1]}")
    elif input_type in ("select", "radio") and default not in values:
        raise ValueError("must be one of the values")
    elif input_type == "checkbox":
        default = default.lower()
        if default not in ("true", "false"):
            raise ValueError("must be 'true' or 'false'")
    return default


class AttributeRequest(BaseModel):
    """An attribute of a label: new (no `id`), changed (`id` or same `name`), or `deleted`."""

    id: int | None = None
    name: Name
    mutable: bool = False
    input_type: InputType
    values: list[str] = Field(default_factory=list, validate_default=True)
    default_value: str = Field(default="", max_length=128, validate_default=True)
    deleted: bool = False

    @field_validator("values")
    @classmethod
    def _values_fit_input_type(cls, values: list[str], info: ValidationInfo) -> list[str]:
        input_type = info.data.get("input_type")
        return values if input_type is None else normalize_values(input_type, values)

    @field_validator("default_value")
    @classmethod
    def _default_among_values(cls, default: str, info: ValidationInfo) -> str:
        input_type, values = info.data.get("input_type"), info.data.get("values")
        if input_type is None or values is None:
            return default
        return resolve_default(input_type, values, default)


class SublabelRequest(BaseModel):
    """A point of a skeleton: new (no `id`) or changed (`id` or same `name`)."""

    id: int | None = None
    name: Name | None = None
    color: Color | None = None
    type: SublabelType | None = None
    attributes: list[AttributeRequest] = Field(default_factory=list)


class LabelRequest(BaseModel):
    """A label: new (no `id`), changed (`id`), or `deleted` (`id` and `deleted: true`)."""

    id: int | None = None
    name: Name | None = None
    color: Color | None = None
    type: LabelType | None = None
    attributes: list[AttributeRequest] = Field(default_factory=list)
    svg: str | None = Field(
        default=None,
        description="The skeleton graph: <circle data-node-id data-label-name|data-label-id> "
        "nodes and <line data-node-from data-node-to> edges.",
    )
    sublabels: list[SublabelRequest] | None = None
    deleted: bool = False


class Attribute(BaseModel):
    """An attribute specification as read."""

    id: int
    name: str
    mutable: bool
    input_type: InputType
    default_value: str
    values: list[str]


class Sublabel(BaseModel):
    """A skeleton's point label as read inside its skeleton."""

    id: int
    name: str
    color: str
    type: str
    attributes: list[Attribute]
    has_parent: bool = True


class Label(BaseModel):
    """A label as read."""

    id: int
    name: str
    color: str
    type: str
    attributes: list[Attribute]
    svg: str
    sublabels: list[Sublabel]
    project_id: int | None
    task_id: int | None
    parent_id: int | None
    has_parent: bool
