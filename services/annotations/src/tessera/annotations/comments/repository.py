"""SQL over `comments`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import comments
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import users

_owner = users.alias("owner")


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
    session: AsyncSession, condition: sa.ColumnElement[bool], *, offset: int, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """The comments matching `condition`, oldest first, and their total count."""
    count = await session.scalar(sa.select(sa.func.count()).select_from(comments).where(condition))
    rows = (
        (
            await session.execute(
                _select().where(condition).order_by(comments.c.id).offset(offset).limit(limit)
            )
        )
        .mappings()
        .all()
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
