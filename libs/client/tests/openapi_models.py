"""Checks the client's models against an OpenAPI document of the server (the gateway's
merged one): every field a model declares must be in the schema the endpoint answers,
and a field the model requires must be required there too. Nested models are followed
through `$ref`, `anyOf` and arrays."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel

from tessera.client import models

# Each model, and the endpoint whose answer it reads: (path, method, status).
MODEL_ENDPOINTS: list[tuple[type[BaseModel], str, str, str]] = [
    (models.Project, "/api/projects/{}", "get", "200"),
    (models.Page[models.Project], "/api/projects", "get", "200"),
    (models.Task, "/api/tasks/{}", "get", "200"),
    (models.Page[models.Task], "/api/tasks", "get", "200"),
    (models.Job, "/api/jobs/{}", "get", "200"),
    (models.Label, "/api/labels/{}", "get", "200"),
    (models.Request, "/api/requests/{}", "get", "200"),
    (models.Page[models.Request], "/api/requests", "get", "200"),
    (models.RequestCreated, "/api/tasks/{}/dataset/export", "post", "202"),
    (models.RequestCreated, "/api/tasks/{}/backup/export", "post", "202"),
    (models.CloudStorage, "/api/cloudstorages/{}", "get", "200"),
    (models.CloudContent, "/api/cloudstorages/{}/content-v2", "get", "200"),
    (models.DataMeta, "/api/tasks/{}/data/meta", "get", "200"),
    (models.User, "/api/users/self", "get", "200"),
    (models.Page[models.BasicUser], "/api/users", "get", "200"),
    (models.BasicUser, "/api/users/{}", "get", "200"),
    (models.About, "/api/server/about", "get", "200"),
    (models.Formats, "/api/server/annotation/formats", "get", "200"),
    (models.FunctionCall, "/api/lambda/requests/{}", "get", "200"),
    (models.FunctionCall, "/api/lambda/requests", "post", "200"),
    (models.Page[models.ReviewShape], "/api/tasks/{}/annotations/shapes", "get", "200"),
    (models.Page[models.ReviewShape], "/api/jobs/{}/annotations/shapes", "get", "200"),
    (models.Annotations, "/api/tasks/{}/annotations", "get", "200"),
]


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/"))


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def _object_schema(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema inside a property's schema (through $ref, anyOf, arrays)."""
    schema = _resolve(schema, document)
    if schema.get("type") == "array" and "items" in schema:
        return _object_schema(schema["items"], document)
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found = _object_schema(option, document)
        if found is not None:
            return found
    if "properties" in schema or schema.get("type") == "object":
        return schema
    return None


def _nested(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            found = _nested(argument)
            if found is not None:
                return found
    return None


def endpoint_schema(
    document: dict[str, Any], path: str, method: str, status: str
) -> dict[str, Any]:
    """The JSON schema of an endpoint's answer."""
    wanted = _normal(path)
    for candidate, operations in document["paths"].items():
        if _normal(candidate) == wanted and method in operations:
            content = operations[method]["responses"][status]["content"]
            return _resolve(content["application/json"]["schema"], document)
    raise KeyError(f"{method.upper()} {path} is not in the document")


def model_problems(
    model: type[BaseModel], schema: dict[str, Any], document: dict[str, Any], where: str
) -> list[str]:
    """What in `model` the schema does not have (or does not promise)."""
    schema = _resolve(schema, document)
    properties = schema.get("properties")
    if properties is None:
        return []  # an opaque object (a custom serializer): nothing to compare
    required = set(schema.get("required", []))
    problems = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in properties:
            problems.append(f"{where}.{key}: not in the server's schema")
            continue
        if field.is_required() and key not in required:
            problems.append(f"{where}.{key}: required by the client, optional on the server")
        nested = _nested(field.annotation)
        if nested is not None:
            inner = _object_schema(properties[key], document)
            if inner is None:
                problems.append(f"{where}.{key}: an object here, not on the server")
            else:
                problems.extend(model_problems(nested, inner, document, f"{where}.{key}"))
    return problems


def all_problems(document: dict[str, Any]) -> list[str]:
    """Every disagreement between the client's models and `document`."""
    problems = []
    for model, path, method, status in MODEL_ENDPOINTS:
        try:
            schema = endpoint_schema(document, path, method, status)
        except KeyError as missing:
            problems.append(str(missing))
            continue
        where = f"{model.__name__} ({method.upper()} {path})"
        problems.extend(model_problems(model, schema, document, where))
    return problems
