"""SQL over `comments`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import comments, issues
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import username_of, users
from tessera.platform.listing import Field, ListQuery, ListSpec

_owner = users.alias("owner")


def _of_issue(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """`column` of `issues` for the comment's issue, as a correlated subquery."""
    return sa.select(column).where(issues.c.id == comments.c.issue_id).scalar_subquery()


LIST_SPEC = ListSpec(
    fields={
        "id": Field(comments.c.id, "int"),
        "owner": Field(username_of(comments.c.owner_id)),
        "issue_id": Field(comments.c.issue_id, "int"),
        "job_id": Field(_of_issue(issues.c.job_id), "int"),
        "frame_id": Field(_of_issue(issues.c.frame), "int"),
    },
    search=("owner",),
    simple=("frame_id", "issue_id", "job_id", "owner"),
)
"""CVAT's comment list fields (cvat-sdk 2.80's `CommentsApi.list`)."""


def _select() -> sa.Select[Any]:
    return sa.select(comments, *basic_columns(_owner, "owner")).select_from(
        comments.outerjoin(_owner, _owner.c.id == comments.c.owner_id)
    )


async def get_comment(
    session: AsyncSession, comment_id: int, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """One comment with its owner, if it matches `condition`."""
    row = (
        (await session.execute(_select().where(comments.c.id == comment_id, condition)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_comments(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The comments matching `condition` and the list query, in its order, and their count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(sa.select(sa.func.count()).select_from(comments).where(condition))
    statement = _select().where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def insert_comment(session: AsyncSession, values: dict[str, Any]) -> int:
    """Store a comment; returns its id."""
    comment_id = await session.scalar(sa.insert(comments).values(**values).returning(comments.c.id))
    return int(comment_id)


async def update_comment(session: AsyncSession, comment_id: int, values: dict[str, Any]) -> None:
    """Change a comment's fields (and its `updated_date`)."""
    await session.execute(
        sa.update(comments)
        .where(comments.c.id == comment_id)
        .values(**values, updated_date=sa.func.now())
    )


async def delete_comment(session: AsyncSession, comment_id: int) -> None:
    """Delete a comment."""
    await session.execute(sa.delete(comments).where(comments.c.id == comment_id))
