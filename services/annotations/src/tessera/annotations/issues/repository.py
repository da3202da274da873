"""SQL over `issues`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import comments, issues, jobs
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import username_of, users
from tessera.platform.listing import Field, ListQuery, ListSpec

_owner = users.alias("owner")
_assignee = users.alias("assignee")

LIST_SPEC = ListSpec(
    fields={
        "id": Field(issues.c.id, "int"),
        "assignee": Field(username_of(issues.c.assignee_id)),
        "owner": Field(username_of(issues.c.owner_id)),
        "frame_id": Field(issues.c.frame, "int"),
        "job_id": Field(issues.c.job_id, "int"),
        "task_id": Field(
            sa.select(jobs.c.task_id).where(jobs.c.id == issues.c.job_id).scalar_subquery(), "int"
        ),
        "resolved": Field(issues.c.resolved, "bool"),
    },
    search=("assignee", "owner"),
    simple=("assignee", "frame_id", "job_id", "owner", "resolved", "task_id"),
)
"""CVAT's issue list fields (cvat-sdk 2.80's `IssuesApi.list`)."""


def _select() -> sa.Select[Any]:
    comment_count = (
        sa.select(sa.func.count()).select_from(comments).where(comments.c.issue_id == issues.c.id)
    )
    return sa.select(
        issues,
        *basic_columns(_owner, "owner"),
        *basic_columns(_assignee, "assignee"),
        comment_count.scalar_subquery().label("comment_count"),
    ).select_from(
        issues.outerjoin(_owner, _owner.c.id == issues.c.owner_id).outerjoin(
            _assignee, _assignee.c.id == issues.c.assignee_id
        )
    )


async def get_issue(
    session: AsyncSession, issue_id: int, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """One issue with its people and comment count, if it matches `condition`."""
    row = (
        (await session.execute(_select().where(issues.c.id == issue_id, condition)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_issues(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The issues matching `condition` and the list query, in its order, and their count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(sa.select(sa.func.count()).select_from(issues).where(condition))
    statement = _select().where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def insert_issue(session: AsyncSession, values: dict[str, Any]) -> int:
    """Store an issue; returns its id."""
    issue_id = await session.scalar(sa.insert(issues).values(**values).returning(issues.c.id))
    return int(issue_id)


async def update_issue(session: AsyncSession, issue_id: int, values: dict[str, Any]) -> None:
    """Change an issue's fields (and its `updated_date`)."""
    await session.execute(
        sa.update(issues)
        .where(issues.c.id == issue_id)
        .values(**values, updated_date=sa.func.now())
    )


async def delete_issue(session: AsyncSession, issue_id: int) -> None:
    """Delete an issue with its comments."""
    await session.execute(sa.delete(issues).where(issues.c.id == issue_id))
