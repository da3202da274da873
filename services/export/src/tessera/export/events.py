"""The export service's own event, `export.finished` (`tessera.platform.contracts.export`).

Every export request that finishes or fails publishes it, committed with the request's
status (`RequestStore.finish` and `fail` take it), so it is published once per request
and never for a request cancelled meanwhile. It is built from the request's parameters
and from what its queued message recorded when the export was asked for: the exported
object's place (`scope`: its task, project, job and organization ids), the download's
file name (`filename`) and the address the export was asked at (`base_url`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from tessera.export.exports.schemas import ExportParams
from tessera.platform.contracts.export import EXPORT_FINISHED, ExportFinished
from tessera.platform.requests import OutboxEvents


def export_finished(
    rq_id: str, params: ExportParams, payload: Mapping[str, Any], result_path: str | None
) -> tuple[str, dict[str, Any]]:
    """`export.finished` of a finished export; `result_path` is the download's path (None
    for an archive written into a cloud storage)."""
    return _event(rq_id, params, payload, status="finished", result_path=result_path)


def export_failed(
    rq_id: str, params: ExportParams, payload: Mapping[str, Any], message: str
) -> tuple[str, dict[str, Any]]:
    """`export.finished` of a failed export, saying why."""
    return _event(rq_id, params, payload, status="failed", message=message)


def failure_events(rq_id: str, payload: dict[str, Any], message: str) -> OutboxEvents:
    """The events of an export the work queue fails (`WorkerPool`'s `failure_events`)."""
    params = ExportParams.model_validate(payload["params"])
    return [export_failed(rq_id, params, payload, message)]


def _event(
    rq_id: str,
    params: ExportParams,
    payload: Mapping[str, Any],
    *,
    status: Literal["finished", "failed"],
    message: str | None = None,
    result_path: str | None = None,
) -> tuple[str, dict[str, Any]]:
    destination = params.destination
    # A message queued before `scope` was recorded names the exported object only.
    scope: Mapping[str, int | None] = payload.get("scope") or {
        f"{params.target}_id": params.target_id
    }
    base_url = str(payload.get("base_url", ""))
    event = ExportFinished(
        rq_id=rq_id,
        status=status,
        message=message,
        format=params.format,
        target=params.target,
        task_id=scope.get("task_id"),
        project_id=scope.get("project_id"),
        job_id=scope.get("job_id"),
        organization_id=scope.get("organization_id"),
        result_url=None if result_path is None else base_url.rstrip("/") + result_path,
        location="local" if destination is None else "cloud_storage",
        cloud_storage_id=None if destination is None else destination.cloud_storage_id,
        filename=payload.get("filename") if destination is None else destination.key,
    )
    return EXPORT_FINISHED, event.model_dump(mode="json")
