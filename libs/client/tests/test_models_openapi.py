"""The client's models against the merged OpenAPI document, built here as the gateway
builds it (each service's own document, merged by `tessera.gateway.openapi`), so a field
renamed or dropped on the server fails this test instead of a user's script.

The end-to-end module (`test_e2e_fleet.py`) checks the same against the document a
running gateway serves at `/api/schema`.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from pydantic import BaseModel

from tessera.client import models
from tessera.gateway.openapi import merge_openapi
from tessera.gateway.routing import routing_table

from .openapi_models import MODEL_ENDPOINTS, all_problems, endpoint_schema, model_problems

SERVICES = ("annotations", "ingest", "export", "inference")


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    """The merged OpenAPI document of the services in this checkout."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("TESSERA_ENV", "dev")
        documents = {
            service: importlib.import_module(f"tessera.{service}.app").create_app().openapi()
            for service in SERVICES
        }
    return merge_openapi(routing_table(), documents)


def test_every_model_field_is_in_the_servers_openapi(merged: dict[str, Any]) -> None:
    assert all_problems(merged) == []


def test_every_resource_model_is_checked() -> None:
    checked = {model for model, *_ in MODEL_ENDPOINTS}
    top_level = {
        models.Project, models.Task, models.Job, models.Label, models.Request,
        models.RequestCreated, models.CloudStorage, models.CloudContent, models.DataMeta,
        models.User, models.About, models.Formats, models.FunctionCall, models.Annotations,
    }  # fmt: skip
    assert top_level <= checked


def test_the_check_finds_a_drifted_field(merged: dict[str, Any]) -> None:
    class Drifted(models.Task):
        renamed_on_the_server: int

    class DriftedJob(models.Job):
        assignee: models.User | None = None  # User has `email`, BasicUser does not

    schema = endpoint_schema(merged, "/api/tasks/{}", "get", "200")
    assert model_problems(Drifted, schema, merged, "Task") == [
        "Task.renamed_on_the_server: not in the server's schema"
    ]
    problems = model_problems(
        DriftedJob, endpoint_schema(merged, "/api/jobs/{}", "get", "200"), merged, "Job"
    )
    assert "Job.assignee.email: not in the server's schema" in problems
    assert issubclass(Drifted, BaseModel)
