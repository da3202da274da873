"""CVAT's preview thumbnails: `GET /api/tasks/{id}/preview`, `GET /api/jobs/{id}/preview`
and `GET /api/projects/{id}/preview` (cvat-sdk's `get_preview()`), read with the same
access checks as the task's data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from tessera.ingest.previews.service import PREVIEW_MEDIA_TYPE, frame_preview
from tessera.ingest.state import AnnotationsApi, Reader
from tessera.platform.db import DbSession
from tessera.platform.errors import NotFound

router = APIRouter(tags=["task data"])

_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The preview: a JPEG of at most 256 x 256 pixels.",
          "content": {PREVIEW_MEDIA_TYPE: {}}},
    404: {"description": "No such object, or one without data (no preview)."},
}  # fmt: skip


def _send(data: bytes) -> Response:
    return Response(data, media_type=PREVIEW_MEDIA_TYPE)


@router.get(
    "/api/tasks/{task_id}/preview",
    summary="A preview image of a task",
    response_class=Response,
    responses=_IMAGE,
)
async def task_preview(
    task_id: int, request: Request, session: DbSession, client: AnnotationsApi, reader: Reader
) -> Response:
    """The task's first frame as a thumbnail (404 for a task without data)."""
    await client.task_access(request, task_id)
    return _send(await frame_preview(session, reader, task_id, 0))


@router.get(
    "/api/jobs/{job_id}/preview",
    summary="A preview image of a job",
    response_class=Response,
    responses=_IMAGE,
)
async def job_preview(
    job_id: int, request: Request, session: DbSession, client: AnnotationsApi, reader: Reader
) -> Response:
    """The job's first frame as a thumbnail."""
    job = await client.job_access(request, job_id)
    return _send(await frame_preview(session, reader, job.task_id, job.task_frames()[0]))


@router.get(
    "/api/projects/{project_id}/preview",
    summary="A preview image of a project",
    response_class=Response,
    responses=_IMAGE,
)
async def project_preview(
    project_id: int, request: Request, session: DbSession, client: AnnotationsApi, reader: Reader
) -> Response:
    """The preview of the project's newest task, as CVAT picks it (404 for a project
    without tasks, or whose newest task has no data)."""
    project = await client.project_access(request, project_id)
    if not project.task_ids:
        raise NotFound(f"Project image preview not found: project {project_id} has no tasks.")
    return _send(await frame_preview(session, reader, max(project.task_ids), 0))
