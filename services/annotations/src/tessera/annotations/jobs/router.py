"""`/api/jobs`, and `/api/internal/tasks/{id}/segments` for the ingest service."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from tessera.annotations.access import RequestContext
from tessera.annotations.events import EventOutbox
from tessera.annotations.jobs import service
from tessera.annotations.jobs.schemas import Job, JobUpdate, SegmentsCreate, SegmentsCreated
from tessera.annotations.jobs.service import JobFilters
from tessera.platform.auth import CurrentUser
from tessera.platform.db import DbSession
from tessera.platform.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
internal_router = APIRouter(prefix="/api/internal", tags=["internal"])


@router.get("", summary="List jobs")
async def list_jobs(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    params: Annotated[PageParams, Depends(page_params)],
    filters: Annotated[JobFilters, Depends()],
) -> Page[Job]:
    """The jobs the caller sees in the organization context, newest first."""
    count, results = await service.list_jobs(
        session, ctx, request, filters, offset=params.offset, limit=params.page_size
    )
    return Page[Job].build(request, params, count, results)


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
    "/tasks/{task_id}/segments",
    status_code=status.HTTP_201_CREATED,
    summary="Make the jobs of a task from its segments (ingest service, administrators)",
)
async def create_segment_jobs(
    task_id: int, body: SegmentsCreate, principal: CurrentUser, session: DbSession
) -> SegmentsCreated:
    """Record the task's media facts and make one job per segment, once per task."""
    return await service.create_segment_jobs(session, principal, task_id, body)
