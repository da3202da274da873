"""`/api/internal/{projects|tasks|jobs}/{id}/access` and `/api/internal/context`: what
the caller may do with a task's media or export, and the organization context of a request.

The ingest service asks with the caller's own token and organization headers, so the
answer is the caller's, decided by the same visibility rules as every other endpoint.
The answers are the models of `tessera.platform.contracts.annotations`, which the
callers parse.
"""

from fastapi import APIRouter

from tessera.annotations.access import RequestContext
from tessera.annotations.media_access import service
from tessera.platform.contracts import annotations as contract
from tessera.platform.contracts.annotations import (
    CallerContext,
    JobAccess,
    ProjectAccess,
    TaskAccess,
)
from tessera.platform.db import DbSession

router = APIRouter(prefix=contract.PREFIX, tags=["internal"])


@router.get(contract.TASK_ACCESS_PATH, summary="The caller's access to a task (ingest)")
async def task_access(task_id: int, ctx: RequestContext, session: DbSession) -> TaskAccess:
    """The task's facts ingest needs, and whether the caller may change its data."""
    return await service.task_access(session, ctx, task_id)


@router.get(contract.JOB_ACCESS_PATH, summary="The caller's access to a job (ingest)")
async def job_access(job_id: int, ctx: RequestContext, session: DbSession) -> JobAccess:
    """The job's task and frames, if the caller sees the job."""
    return await service.job_access(session, ctx, job_id)


@router.get(contract.PROJECT_ACCESS_PATH, summary="The caller's access to a project (export)")
async def project_access(project_id: int, ctx: RequestContext, session: DbSession) -> ProjectAccess:
    """The project's tasks, if the caller sees the project."""
    return await service.project_access(session, ctx, project_id)


@router.get(contract.CONTEXT_PATH, summary="The caller's organization context (ingest)")
async def caller_context(ctx: RequestContext) -> CallerContext:
    """Who is asking and in which organization, with their role (404 for a stranger)."""
    return CallerContext(
        user_id=ctx.user_id,
        username=ctx.principal.username,
        is_admin=ctx.is_admin,
        organization_id=ctx.organization_id,
        role=ctx.role,
    )
