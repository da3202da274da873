"""`/api/internal/tasks/{id}/media...`: a task's media as the files it came from, for the
export service's task backups (administrators only: the service token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from tessera.ingest.media_files import service
from tessera.ingest.state import Reader
from tessera.platform.auth import CurrentUser, Principal
from tessera.platform.contracts.ingest import (
    MEDIA_CONTEXT_IMAGES_PATH,
    MEDIA_FILES_PATH,
    MEDIA_MANIFEST_PATH,
    MEDIA_VIDEO_PATH,
    MediaFiles,
)
from tessera.platform.db import DbSession
from tessera.platform.errors import Problem

router = APIRouter(tags=["internal"])


def _admin_only(principal: Principal) -> None:
    if not principal.is_superuser:
        raise Problem(403, "Only the export service (an administrator) reads media files.")


def _send(found: service.StoredFile, media_type: str) -> StreamingResponse:
    return StreamingResponse(
        found.chunks, media_type=media_type, headers={"Content-Length": str(found.size)}
    )


@router.get(MEDIA_FILES_PATH, summary="How a task's media was prepared (export service)")
async def media_files(task_id: int, principal: CurrentUser, session: DbSession) -> MediaFiles:
    """The media's kind, sorting method, chunk caching and chunk type."""
    _admin_only(principal)
    return await service.media_files(session, task_id)


@router.get(
    MEDIA_MANIFEST_PATH,
    summary="A task's manifest.jsonl (export service)",
    response_class=StreamingResponse,
)
async def media_manifest(
    task_id: int, principal: CurrentUser, session: DbSession, reader: Reader
) -> StreamingResponse:
    """The manifest ingest wrote for the task's media, in CVAT's format."""
    _admin_only(principal)
    return _send(await service.manifest(session, reader.storage, task_id), "application/jsonl")


@router.get(
    MEDIA_CONTEXT_IMAGES_PATH,
    summary="A frame's context images as they were given (export service)",
    response_class=Response,
)
async def media_context_images(
    task_id: int,
    principal: CurrentUser,
    session: DbSession,
    reader: Reader,
    number: Annotated[int, Query(description="The task frame")],
) -> Response:
    """A zip archive of the frame's context image files under their paths among the
    task's files (CVAT's `related_images/<frame file with _ for its last .>/...`)."""
    _admin_only(principal)
    data = await service.context_images(
        session, reader.storage, task_id, number, reader.settings.scratch_dir
    )
    return Response(data, media_type="application/zip")


@router.get(
    MEDIA_VIDEO_PATH,
    summary="A video task's original video file (export service)",
    response_class=StreamingResponse,
)
async def media_video(
    task_id: int, principal: CurrentUser, session: DbSession, reader: Reader
) -> StreamingResponse:
    """The video file the task was made from, streamed."""
    _admin_only(principal)
    return _send(await service.video(session, reader.storage, task_id), "video/mp4")
