"""The routing table and the merged OpenAPI document."""

import re

import pytest

from tessera.gateway.openapi import merge_openapi
from tessera.gateway.routing import RoutingTable, routing_table


@pytest.mark.parametrize(
    ("path", "query", "service"),
    [
        ("/api/tasks/12/data", {}, "ingest"),
        ("/api/tasks/12/data/meta", {}, "ingest"),
        ("/api/jobs/3/data", {"type": "chunk"}, "ingest"),
        ("/api/cloudstorages", {}, "ingest"),
        ("/api/tasks/12/preview", {}, "ingest"),
        ("/api/jobs/3/preview", {}, "ingest"),
        ("/api/projects/2/preview", {}, "ingest"),
        ("/api/tasks/12/frames/3/render", {"format": "png"}, "export"),
        ("/api/jobs/3/frames/0/render", {}, "export"),
        ("/api/tasks/12/frames/3", {}, "annotations"),
        ("/api/cloudstorages/4/content-v2", {}, "ingest"),
        ("/api/projects/1/dataset/export", {"format": "COCO 1.0"}, "export"),
        ("/api/tasks/1/dataset", {}, "export"),
        ("/api/tasks/1/backup/export", {}, "export"),
        ("/api/projects/2/backup/download", {"rq_id": "export-x"}, "export"),
        ("/api/jobs/1/backup/export", {}, "annotations"),
        ("/api/tasks/backup", {"filename": "b.zip"}, "export"),
        ("/api/projects/backup/0b6f3c1e-2a4d-4c8e-9f1a-3b5c7d9e1f20", {}, "export"),
        ("/api/tasks/1/annotations", {"format": "COCO 1.0"}, "export"),
        ("/api/jobs/1/annotations/", {"format": "CVAT for images 1.1"}, "export"),
        ("/api/tasks/1/annotations", {}, "annotations"),
        # The review list (Tessera's own), even with a `format` in its query.
        ("/api/jobs/1/annotations/shapes", {"source": "auto", "sort": "score"}, "annotations"),
        ("/api/tasks/1/annotations/shapes", {"format": "COCO 1.0"}, "annotations"),
        ("/api/requests", {}, "export"),
        ("/api/requests/abc-def", {}, "export"),
        ("/api/requests/ingest-abc-def", {}, "ingest"),
        ("/api/lambda/functions", {}, "inference"),
        ("/api/lambda/requests/9", {}, "inference"),
        ("/api/tasks", {}, "annotations"),
        ("/api/tasks/12", {}, "annotations"),
        ("/api/tasks/12/database", {}, "annotations"),
        ("/api/tasks/abc/data", {}, "annotations"),
        ("/api/server/about", {}, "annotations"),
        ("/api/auth/api_tokens", {}, "annotations"),
    ],
)
def test_each_path_goes_to_its_owner(path: str, query: dict[str, str], service: str) -> None:
    assert routing_table().service_for(path, query) == service
    slashed = path if path.endswith("/") else f"{path}/"
    assert routing_table().service_for(slashed, query) == service, slashed


@pytest.mark.parametrize(
    ("path", "headers", "service"),
    [
        ("/api/tasks/1/annotations/", {"upload-length": "10", "tus-resumable": "1.0.0"}, "export"),
        ("/api/jobs/1/annotations", {"upload-length": "10"}, "export"),
        ("/api/tasks/1/annotations/", {"content-length": "10"}, "annotations"),
        ("/api/tasks/1/annotations/0b6f3c1e-2a4d-4c8e-9f1a-3b5c7d9e1f20", {}, "export"),
        ("/api/tasks/1/annotations/0b6f3c1e-2a4d-4c8e-9f1a-3b5c7d9e1f20/", {}, "export"),
        # a project's dataset import: Upload-Start/-Finish, the TUS creation and appends
        ("/api/projects/1/dataset/", {"upload-start": ""}, "export"),
        ("/api/projects/1/dataset/", {"upload-length": "10", "tus-resumable": "1.0.0"}, "export"),
        ("/api/projects/1/dataset/0b6f3c1e-2a4d-4c8e-9f1a-3b5c7d9e1f20", {}, "export"),
    ],
)
def test_an_import_upload_goes_to_export(path: str, headers: dict[str, str], service: str) -> None:
    assert routing_table().service_for(path, {}, headers) == service


def test_every_rule_takes_the_trailing_slash() -> None:
    samples = {
        "ingest": "/api/requests/ingest-3f2a",
        "share": "/api/server/share",
        "data": "/api/tasks/3/data",
        "annotations": "/api/jobs/3/annotations",
    }
    for route in routing_table().routes:
        matched = [s for s in samples.values() if route.path.match(s)]
        for sample in matched:
            assert route.path.match(f"{sample}/"), (route.path.pattern, sample)


def test_a_table_naming_an_unknown_service_is_refused() -> None:
    text = """
default = "annotations"
services = ["annotations"]
[[route]]
service = "nope"
path = "^/api/x$"
"""
    with pytest.raises(ValueError, match="nope"):
        RoutingTable.parse(text)


def _document(paths: dict[str, object], schemas: dict[str, object]) -> dict[str, object]:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas}, "tags": []}


def test_merge_keeps_only_owned_paths_and_renames_clashing_schemas() -> None:
    ref = {"$ref": "#/components/schemas/Request"}
    documents = {
        "annotations": _document(
            {
                "/api/tasks": {
                    "get": {
                        "responses": {"200": {"content": {"application/json": {"schema": ref}}}}
                    }
                },
                "/healthz": {"get": {}},
            },
            {"Request": {"type": "object", "properties": {"a": {"type": "integer"}}}},
        ),
        "export": _document(
            {
                "/api/requests/{id}": {
                    "get": {
                        "responses": {"200": {"content": {"application/json": {"schema": ref}}}}
                    }
                },
                "/api/tasks/{id}/annotations": {"post": {"summary": "import"}},
                "/api/tasks": {"post": {"summary": "not export's"}},
            },
            {"Request": {"type": "object", "properties": {"b": {"type": "string"}}}},
        ),
    }
    merged = merge_openapi(routing_table(), documents)
    assert set(merged["paths"]) == {
        "/api/tasks",
        "/api/requests/{id}",
        "/api/tasks/{id}/annotations",
    }
    assert "post" not in merged["paths"]["/api/tasks"]
    assert set(merged["components"]["schemas"]) == {"Request", "export_Request"}
    export_schema = merged["paths"]["/api/requests/{id}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]
    assert export_schema["schema"] == {"$ref": "#/components/schemas/export_Request"}
    assert all(re.match(r"^/api/", path) for path in merged["paths"])
