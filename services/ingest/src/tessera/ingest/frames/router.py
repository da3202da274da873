"""`GET /api/{tasks|jobs}/{id}/data` (frames, chunks, context images), `data/meta` and its
`PATCH` (deleted frames), and the internal stream of a video task's frames that the export
service reads."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from tessera.ingest.frames.service import Payload
from tessera.ingest.state import AnnotationsApi, Reader
from tessera.platform.auth import CurrentUser
from tessera.platform.contracts.ingest import (
    VIDEO_FRAMES_MEDIA_TYPE,
    DataMeta,
    DataMetaWrite,
    VideoFramesRequest,
)
from tessera.platform.db import DbSession
from tessera.platform.errors import Problem, bad_request

router = APIRouter(tags=["task data"])

DataType = Literal["chunk", "frame", "context_image"]
Quality = Literal["compressed", "original"]


def _send(payload: Payload) -> Response:
    return Response(payload.data, media_type=payload.media_type)


@router.get("/api/tasks/{task_id}/data", summary="A frame, chunk or context image of a task")
async def task_data(
    task_id: int,
    request: Request,
    session: DbSession,
    *,
    client: AnnotationsApi,
    reader: Reader,
    type: Annotated[DataType, Query()],
    number: Annotated[int | None, Query()] = None,
    quality: Annotated[Quality, Query()] = "compressed",
) -> Response:
    """`type=chunk|frame|context_image`, `number` (task chunk or task frame), `quality`."""
    await client.task_access(request, task_id)
    if number is None:
        raise bad_request("number is required", "number")
    if type == "chunk":
        return _send(await reader.task_chunk(session, task_id, number, quality))
    if type == "frame":
        return _send(await reader.frame(session, task_id, number, quality))
    return _send(await reader.context_images(session, task_id, number))


@router.get("/api/tasks/{task_id}/data/meta", summary="Frames and chunking of a task's media")
async def task_meta(
    task_id: int, request: Request, session: DbSession, client: AnnotationsApi, reader: Reader
) -> DataMeta:
    """Frame names and sizes, chunk size, frame range."""
    await client.task_access(request, task_id)
    return await reader.meta(session, task_id, None)


@router.patch("/api/tasks/{task_id}/data/meta", summary="Mark frames of a task deleted")
async def patch_task_meta(
    task_id: int,
    body: DataMetaWrite,
    request: Request,
    session: DbSession,
    *,
    client: AnnotationsApi,
    reader: Reader,
) -> DataMeta:
    """`deleted_frames` become the task's deleted frames (task frame numbers, all of them:
    an empty list restores every frame), as CVAT's `PATCH data/meta`; for those who may
    change the task."""
    access = await client.task_access(request, task_id)
    if not access.can_change:
        raise Problem(403, f"You are not allowed to change the data of task {task_id}.")
    return await reader.set_deleted_frames(session, task_id, None, body.deleted_frames)


@router.get("/api/jobs/{job_id}/data", summary="A frame, chunk or context image of a job")
async def job_data(
    job_id: int,
    request: Request,
    session: DbSession,
    *,
    client: AnnotationsApi,
    reader: Reader,
    type: Annotated[DataType, Query()],
    number: Annotated[int | None, Query()] = None,
    index: Annotated[int | None, Query()] = None,
    quality: Annotated[Quality, Query()] = "compressed",
) -> Response:
    """Chunks by `index` in the job (or task chunk `number`); frames and context images by
    task frame `number`, as in CVAT."""
    job = await client.job_access(request, job_id)
    if type == "chunk":
        if (index is None) == (number is None):
            raise bad_request("give exactly one of index and number", "index")
        return _send(await reader.job_chunk(session, job, index=index, number=number,
                                            quality=quality))  # fmt: skip
    if number is None:
        raise bad_request("number is required", "number")
    if number not in job.task_frames():
        raise bad_request(f"frame {number} is not a frame of job {job_id}", "number")
    if type == "frame":
        return _send(await reader.frame(session, job.task_id, number, quality))
    return _send(await reader.context_images(session, job.task_id, number))


@router.get("/api/jobs/{job_id}/data/meta", summary="Frames and chunking of a job's media")
async def job_meta(
    job_id: int, request: Request, session: DbSession, client: AnnotationsApi, reader: Reader
) -> DataMeta:
    """The job's frames, frame range and chunk size."""
    job = await client.job_access(request, job_id)
    return await reader.meta(session, job.task_id, job)


@router.patch("/api/jobs/{job_id}/data/meta", summary="Mark frames of a job deleted")
async def patch_job_meta(
    job_id: int,
    body: DataMetaWrite,
    request: Request,
    session: DbSession,
    *,
    client: AnnotationsApi,
    reader: Reader,
) -> DataMeta:
    """`deleted_frames` (task frame numbers, all among the job's) become the deleted frames
    of the job's frames, the task's others staying, as CVAT's `PATCH data/meta` of a job;
    for those who may change the job's annotations."""
    job = await client.job_access(request, job_id)
    if not job.can_change:
        raise Problem(403, f"You are not allowed to change the data of job {job_id}.")
    return await reader.set_deleted_frames(session, job.task_id, job, body.deleted_frames)


internal_router = APIRouter(prefix="/api/internal/tasks", tags=["internal"])


@internal_router.post(
    "/{task_id}/frames",
    summary="Frames of a video task, decoded in one pass (export service)",
    response_class=StreamingResponse,
)
async def video_frames(
    task_id: int,
    body: VideoFramesRequest,
    principal: CurrentUser,
    session: DbSession,
    reader: Reader,
) -> StreamingResponse:
    """The frames in `body.ranges`, encoded as `body.format`, streamed as length-prefixed
    records (`tessera.platform.contracts.ingest`)."""
    if not principal.is_superuser:
        raise Problem(403, "Only the export service (an administrator) reads frame streams.")
    frames = await reader.video_frames(session, task_id, body)
    return StreamingResponse(frames, media_type=VIDEO_FRAMES_MEDIA_TYPE)
