"""The skeleton graph, kept as CVAT keeps it: an SVG fragment of nodes and edges.

Nodes are `<circle data-node-id="N" ...>` naming their sublabel with `data-label-id`
(stored form) or `data-label-name` (accepted on input, for sublabels created in the same
request); edges are `<line data-node-from="N" data-node-to="M" ...>`. The fragment is
shown in browsers, so only these two elements and drawing or `data-*` attributes pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][\w:-]*)((?:\s+[\w:-]+\s*=\s*\"[^\"<>]*\")*)\s*(/?)\s*>")
_ATTRIBUTE = re.compile(r"([\w:-]+)\s*=\s*\"([^\"<>]*)\"")
_NAME_REF = re.compile(r"data-label-name\s*=\s*\"([^\"<>]*)\"")
ELEMENTS = frozenset({"line", "circle"})
DRAWING_ATTRIBUTES = frozenset(
    {"x1", "y1", "x2", "y2", "cx", "cy", "r", "stroke", "stroke-width", "fill"}
)


@dataclass(frozen=True)
class Element:
    """One opening tag of the fragment."""

    tag: str
    attributes: dict[str, str]


def parse(svg: str) -> list[Element]:
    """The elements of `svg`; ValueError for anything but nodes and edges."""
    elements: list[Element] = []
    position = 0
    for match in _TAG.finditer(svg):
        if svg[position : match.start()].strip():
            raise ValueError("only <circle> and <line> elements are allowed, without text")
        position = match.end()
        closing, tag, attributes = match.group(1), match.group(2).lower(), match.group(3)
        if tag not in ELEMENTS:
            raise ValueError(f"<{tag}> is not allowed: only <circle> and <line>")
        if closing:
            continue
        parsed = {name.lower(): value for name, value in _ATTRIBUTE.findall(attributes)}
        for name in parsed:
            if name not in DRAWING_ATTRIBUTES and not name.startswith("data-"):
                raise ValueError(f"attribute {name!r} is not allowed")
        elements.append(Element(tag, parsed))
    if svg[position:].strip():
        raise ValueError("only <circle> and <line> elements are allowed, without text")
    return elements


def check(svg: str, sublabel_ids: Mapping[str, int | None]) -> None:
    """ValueError unless `svg` is a graph over the sublabels (name -> id, None while new)."""
    nodes: set[str] = set()
    referenced: set[str] = set()
    known_ids = {str(sublabel_id): name for name, sublabel_id in sublabel_ids.items()}
    elements = parse(svg)
    for element in (e for e in elements if e.tag == "circle"):
        node = element.attributes.get("data-node-id")
        if not node:
            raise ValueError("every <circle> needs a data-node-id")
        if node in nodes:
            raise ValueError(f"data-node-id {node} is used twice")
        nodes.add(node)
        if {"data-label-id", "data-label-name"} <= element.attributes.keys():
            raise ValueError(f"node {node} has both data-label-id and data-label-name")
        if "data-label-id" in element.attributes:
            name = known_ids.get(element.attributes["data-label-id"])
            if name is None:
                raise ValueError(
                    f"data-label-id {element.attributes['data-label-id']} is not a sublabel"
                )
        else:
            name = element.attributes.get("data-label-name", "")
            if name not in sublabel_ids:
                raise ValueError(f"node {node} names no sublabel of this skeleton")
        if name in referenced:
            raise ValueError(f"sublabel {name!r} has two nodes")
        referenced.add(name)
    for element in (e for e in elements if e.tag == "line"):
        ends = (element.attributes.get("data-node-from"), element.attributes.get("data-node-to"))
        if not all(end in nodes for end in ends):
            raise ValueError("every <line> joins two nodes by data-node-from and data-node-to")


def bind(svg: str, sublabel_ids: Mapping[str, int]) -> str:
    """`svg` with each `data-label-name` replaced by the sublabel's `data-label-id`."""
    return _NAME_REF.sub(lambda match: f'data-label-id="{sublabel_ids[match.group(1)]}"', svg)
