"""`/api/internal/{tasks|jobs}/{id}/snapshot`: a consistent snapshot of a task's or a job's
annotations, streamed as NDJSON, for the export service (administrators only).

The format is `tessera.platform.contracts.annotations`'s; the export service reads it
with `tessera.platform.clients.annotations.AnnotationsClient.snapshot`.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from tessera.annotations.snapshots import service
from tessera.platform.auth import CurrentUser
from tessera.platform.contracts import annotations as contract
from tessera.platform.db import Database, get_database
from tessera.platform.errors import Problem

router = APIRouter(prefix=contract.PREFIX, tags=["internal"])
SnapshotDatabase = Annotated[Database, Depends(get_database)]
OneFrame = Annotated[
    int | None,
    Query(ge=0, le=2**31 - 1, description="Only what may show on this task frame (a render)"),
]

_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A header line (`SnapshotHeader`), one line per object in frame order "
        '(`{"tag"|"shape"|"track": {...}, "job_id": N}`), and an `end` line (`SnapshotEnd`).',
        "content": {contract.SNAPSHOT_MEDIA_TYPE: {}},
    },
    403: {"description": "The caller is not an administrator."},
    404: {"description": "No such task or job."},
}


async def _stream(
    database: Database, scope: service.Scope, id_: int, frame: int | None
) -> StreamingResponse:
    lines = service.snapshot(database, scope, id_, frame)
    header = await anext(lines)  # a missing task or job is a 404, before the stream starts

    async def body() -> AsyncIterator[bytes]:
        try:
            yield header
            async for chunk in lines:
                yield chunk
        finally:
            await lines.aclose()

    return StreamingResponse(body(), media_type=contract.SNAPSHOT_MEDIA_TYPE)


def _admin_only(principal: CurrentUser) -> None:
    if not principal.is_superuser:
        raise Problem(403, "Only the export service (an administrator) reads snapshots.")


@router.get(
    contract.TASK_SNAPSHOT_PATH,
    response_class=StreamingResponse,
    responses=_STREAM,
    summary="A consistent snapshot of a task's annotations (export service, administrators)",
)
async def task_snapshot(
    task_id: int, principal: CurrentUser, database: SnapshotDatabase, frame: OneFrame = None
) -> StreamingResponse:
    """The task, its labels and annotation jobs, then every object of those jobs (with a
    `frame`: the jobs holding it, and what may show on it)."""
    _admin_only(principal)
    return await _stream(database, "task", task_id, frame)


@router.get(
    contract.JOB_SNAPSHOT_PATH,
    response_class=StreamingResponse,
    responses=_STREAM,
    summary="A consistent snapshot of a job's annotations (export service, administrators)",
)
async def job_snapshot(
    job_id: int, principal: CurrentUser, database: SnapshotDatabase, frame: OneFrame = None
) -> StreamingResponse:
    """The job's task, its labels and the job, then every object of the job (with a
    `frame`: what may show on it, if the job holds it)."""
    _admin_only(principal)
    return await _stream(database, "job", job_id, frame)
