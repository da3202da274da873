"""One OpenAPI document for the whole API, merged from the services' own documents.

Each service contributes only the paths the routing table sends to it. Component
schemas that two services define differently are renamed `<service>_<name>` in the
document of the service that defines the second one, with its references rewritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tessera.gateway import __version__
from tessera.gateway.routing import RoutingTable

COMPONENT_KINDS = ("schemas", "securitySchemes", "responses", "parameters", "requestBodies")


def _rename_refs(document: Any, renames: Mapping[str, str]) -> Any:
    text = json.dumps(document)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    return json.loads(text)


def _owns(table: RoutingTable, service: str, path: str) -> bool:
    """Whether `service` owns a templated path, with or without a query or header
    condition."""
    concrete = re.sub(r"\{[^}/]+\}", "1", path)
    if table.service_for(concrete, {}) == service:
        return True
    return any(
        r.service == service and r.conditional and r.path.match(concrete) for r in table.routes
    )


def merge_openapi(table: RoutingTable, documents: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge per-service documents (keyed by service name) into one."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Tessera API",
            "version": __version__,
            "description": "Annotation backend for images, video and point clouds, "
            "compatible with CVAT's REST API.",
        },
        "paths": {},
        "components": {},
        "tags": [],
    }
    seen_tags: set[str] = set()
    for service in table.services:
        document = documents.get(service)
        if document is None:
            continue
        schemas = document.get("components", {}).get("schemas", {})
        known = merged["components"].setdefault("schemas", {})
        renames = {
            name: f"{service}_{name}"
            for name, body in schemas.items()
            if known.get(name, body) != body
        }
        if renames:
            document = _rename_refs(document, renames)
        for kind in COMPONENT_KINDS:
            for name, body in document.get("components", {}).get(kind, {}).items():
                merged["components"].setdefault(kind, {})[
                    renames.get(name, name) if kind == "schemas" else name
                ] = body
        for path, item in document.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            if _owns(table, service, path):
                merged["paths"].setdefault(path, {}).update(item)
        for tag in document.get("tags", []):
            if tag["name"] not in seen_tags:
                seen_tags.add(tag["name"])
                merged["tags"].append(tag)
    return merged
