"""Review issues: opened on a frame and position of a job with a first comment, moved,
reassigned, resolved and reopened."""

from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.access import Context
from tessera.annotations.comments import repository as comments
from tessera.annotations.issues import repository
from tessera.annotations.issues.schemas import Issue, IssueCreate, IssueUpdate
from tessera.annotations.jobs import repository as jobs_repository
from tessera.annotations.jobs.service import is_task_staff
from tessera.annotations.links import api_url
from tessera.annotations.projects.schemas import CountLink
from tessera.annotations.tables import issues, jobs
from tessera.annotations.users.service import basic_user, check_users
from tessera.annotations.visibility import visible_jobs
from tessera.platform.contracts.annotations import Role
from tessera.platform.errors import NotFound, unprocessable
from tessera.platform.listing import ListQuery, list_query


def visible_issues(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `issues`: the issues of jobs the caller sees."""
    return sa.exists().where(jobs.c.id == issues.c.job_id, visible_jobs(ctx))


def may_review(ctx: Context) -> bool:
    """Everyone who sees a job discusses it, except supervisors, who only watch."""
    return ctx.is_admin or ctx.role != Role.SUPERVISOR


list_query_of_issues = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the issue list's parameters (CVAT's)."""


def _to_schema(request: Request, row: dict[str, Any]) -> Issue:
    return Issue(
        id=row["id"],
        job=row["job_id"],
        frame=row["frame"],
        position=list(row["position"]),
        owner=basic_user(request, row, "owner"),
        assignee=basic_user(request, row, "assignee"),
        created_date=row["created_date"],
        updated_date=row["updated_date"],
        resolved=row["resolved"],
        comments=CountLink(
            count=row["comment_count"], url=api_url(request, "comments", issue_id=row["id"])
        ),
    )


async def issue_row(session: AsyncSession, ctx: Context, issue_id: int) -> dict[str, Any]:
    """The issue's row if the caller sees its job (404 otherwise)."""
    row = await repository.get_issue(session, issue_id, visible_issues(ctx))
    if row is None:
        raise NotFound(f"Issue {issue_id} does not exist.")
    return row


async def job_of(session: AsyncSession, ctx: Context, issue: dict[str, Any]) -> dict[str, Any]:
    """The job (with its task's staff) of an issue the caller sees."""
    job = await jobs_repository.get_job(session, issue["job_id"], visible_jobs(ctx))
    assert job is not None
    return job


async def get_issue(session: AsyncSession, ctx: Context, request: Request, issue_id: int) -> Issue:
    """One issue."""
    return _to_schema(request, await issue_row(session, ctx, issue_id))


async def list_issues(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    query: ListQuery,
) -> tuple[int, list[Issue]]:
    """The issues of the jobs the caller sees that match the list query."""
    count, rows = await repository.list_issues(session, visible_issues(ctx), query)
    return count, [_to_schema(request, row) for row in rows]


async def create_issue(
    session: AsyncSession, ctx: Context, request: Request, body: IssueCreate
) -> Issue:
    """Open an issue on a frame of a job the caller sees, with its first comment."""
    ctx.require(may_review(ctx), "open issues")
    job = await jobs_repository.get_job(session, body.job, visible_jobs(ctx))
    if job is None:
        raise unprocessable([("body.job", f"job {body.job} does not exist")])
    inside = job["start_frame"] <= body.frame <= job["stop_frame"] and (
        not job["frames"] or body.frame in job["frames"]
    )
    if not inside:
        raise unprocessable([("body.frame", f"frame {body.frame} is not a frame of this job")])
    await check_users(session, {"body.assignee": body.assignee}, job["organization_id"])
    issue_id = await repository.insert_issue(
        session,
        {
            "job_id": body.job,
            "frame": body.frame,
            "position": body.position,
            "owner_id": ctx.user_id,
            "assignee_id": body.assignee,
            "resolved": body.resolved,
        },
    )
    await comments.insert_comment(
        session, {"issue_id": issue_id, "owner_id": ctx.user_id, "message": body.message}
    )
    return await get_issue(session, ctx, request, issue_id)


async def update_issue(
    session: AsyncSession, ctx: Context, request: Request, issue_id: int, body: IssueUpdate
) -> Issue:
    """Move, reassign, resolve or reopen an issue: its owner and assignee, the job's
    assignee and the task's staff may."""
    row = await issue_row(session, ctx, issue_id)
    job = await job_of(session, ctx, row)
    people = (row["owner_id"], row["assignee_id"], job["assignee_id"])
    allowed = is_task_staff(ctx, job) or (may_review(ctx) and ctx.user_id in people)
    ctx.require(allowed, f"change issue {issue_id}")
    fields = body.model_fields_set
    if "assignee" in fields:
        await check_users(session, {"body.assignee": body.assignee}, job["organization_id"])
    values = {
        column: getattr(body, name)
        for name, column in (("position", "position"), ("resolved", "resolved"))
        if name in fields and getattr(body, name) is not None
    }
    if "assignee" in fields:
        values["assignee_id"] = body.assignee
    if values:
        await repository.update_issue(session, issue_id, values)
    return await get_issue(session, ctx, request, issue_id)


async def delete_issue(session: AsyncSession, ctx: Context, issue_id: int) -> None:
    """Delete an issue with its comments: its owner and the task's staff may."""
    row = await issue_row(session, ctx, issue_id)
    job = await job_of(session, ctx, row)
    allowed = is_task_staff(ctx, job) or row["owner_id"] == ctx.user_id
    ctx.require(allowed, f"delete issue {issue_id}")
    await repository.delete_issue(session, issue_id)
