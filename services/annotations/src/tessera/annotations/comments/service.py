"""Comments of review issues."""

from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.access import Context
from tessera.annotations.comments import repository
from tessera.annotations.comments.schemas import Comment, CommentCreate, CommentUpdate
from tessera.annotations.issues import repository as issues_repository
from tessera.annotations.issues.service import issue_row, job_of, may_review, visible_issues
from tessera.annotations.jobs.service import is_task_staff
from tessera.annotations.tables import comments, issues
from tessera.annotations.users.service import basic_user
from tessera.platform.errors import NotFound, unprocessable
from tessera.platform.listing import ListQuery, list_query


def visible_comments(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `comments`: the comments of issues the caller sees."""
    return sa.exists().where(issues.c.id == comments.c.issue_id, visible_issues(ctx))


list_query_of_comments = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the comment list's parameters (CVAT's)."""


def _to_schema(request: Request, row: dict[str, Any]) -> Comment:
    return Comment(
        id=row["id"],
        issue=row["issue_id"],
        owner=basic_user(request, row, "owner"),
        message=row["message"],
        created_date=row["created_date"],
        updated_date=row["updated_date"],
    )


async def _comment_row(session: AsyncSession, ctx: Context, comment_id: int) -> dict[str, Any]:
    row = await repository.get_comment(session, comment_id, visible_comments(ctx))
    if row is None:
        raise NotFound(f"Comment {comment_id} does not exist.")
    return row


async def get_comment(
    session: AsyncSession, ctx: Context, request: Request, comment_id: int
) -> Comment:
    """One comment."""
    return _to_schema(request, await _comment_row(session, ctx, comment_id))


async def list_comments(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    query: ListQuery,
) -> tuple[int, list[Comment]]:
    """The comments of issues the caller sees that match the list query."""
    count, rows = await repository.list_comments(session, visible_comments(ctx), query)
    return count, [_to_schema(request, row) for row in rows]


async def create_comment(
    session: AsyncSession, ctx: Context, request: Request, body: CommentCreate
) -> Comment:
    """Comment on an issue the caller sees."""
    ctx.require(may_review(ctx), "comment on issues")
    if await issues_repository.get_issue(session, body.issue, visible_issues(ctx)) is None:
        raise unprocessable([("body.issue", f"issue {body.issue} does not exist")])
    comment_id = await repository.insert_comment(
        session, {"issue_id": body.issue, "owner_id": ctx.user_id, "message": body.message}
    )
    return await get_comment(session, ctx, request, comment_id)


async def update_comment(
    session: AsyncSession, ctx: Context, request: Request, comment_id: int, body: CommentUpdate
) -> Comment:
    """Correct one's own comment."""
    row = await _comment_row(session, ctx, comment_id)
    ctx.require(row["owner_id"] == ctx.user_id or ctx.is_admin, f"change comment {comment_id}")
    await repository.update_comment(session, comment_id, {"message": body.message})
    return await get_comment(session, ctx, request, comment_id)


async def delete_comment(session: AsyncSession, ctx: Context, comment_id: int) -> None:
    """Delete a comment: its owner and the task's staff may."""
    row = await _comment_row(session, ctx, comment_id)
    job = await job_of(session, ctx, await issue_row(session, ctx, row["issue_id"]))
    allowed = row["owner_id"] == ctx.user_id or is_task_staff(ctx, job)
    ctx.require(allowed, f"delete comment {comment_id}")
    await repository.delete_comment(session, comment_id)
