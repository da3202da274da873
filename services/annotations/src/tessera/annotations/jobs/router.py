"""`/api/jobs`, and `/api/internal/tasks/{id}/segments` for the ingest service."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.events import EventOutbox
from tessera.annotations.jobs import service
from tessera.annotations.jobs.schemas import Job, JobUpdate
from tessera.annotations.jobs.service import list_query_of_jobs
from tessera.platform.auth import CurrentUser
from tessera.platform.contracts import annotations as contract
from tessera.platform.contracts.annotations import SegmentsCreate, SegmentsCreated
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
internal_router = APIRouter(prefix=contract.PREFIX, tags=["internal"])


@router.get("", summary="List jobs")
async def list_jobs(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_jobs)],
) -> Page[Job]:
    """The jobs the caller sees in the organization context (newest first unless sorted)."""
    count, results = await service.list_jobs(session, ctx, request, query)
    return Page[Job].build(request, query.page, count, results)


@router.get("/{job_id}", summary="Get job details")
async def get_job(job_id: int, request: Request, ctx: RequestContext, session: DbSession) -> Job:
    """One job."""
    return await service.get_job(session, ctx, request, job_id)


@router.patch("/{job_id}", summary="Update a job")
async def update_job(
    job_id: int,
    body: JobUpdate,
    *,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    outbox: EventOutbox,
) -> Job:
    """Change the stage, state or assignee of a job."""
    return await service.update_job(session, ctx, request, job_id, body, outbox=outbox)


@internal_router.post(
    contract.SEGMENTS_PATH,
    status_code=status.HTTP_201_CREATED,
    summary="Make the jobs of a task from its segments (ingest service, administrators)",
    responses={
        200: {"description": "The same segments were asked before: the jobs made then."},
        409: {"description": "The task has jobs made from other segments or media."},
    },
)
async def create_segment_jobs(
    task_id: int,
    body: SegmentsCreate,
    principal: CurrentUser,
    session: DbSession,
    response: Response,
) -> SegmentsCreated:
    """Record the task's media facts and make one job per segment, once per task.

    Idempotent: the same request again answers 200 with the same jobs and changes nothing.
    """
    made, created = await service.create_segment_jobs(session, principal, task_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return made
