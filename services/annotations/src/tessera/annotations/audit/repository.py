"""SQL over `audit_log`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import audit_log
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import users

_actor = users.alias("actor")


async def insert_entry(session: AsyncSession, values: dict[str, Any]) -> None:
    """Store one entry; an entry of the same message id already stored is kept as it is."""
    await session.execute(insert(audit_log).values(**values).on_conflict_do_nothing())


async def list_entries(
    session: AsyncSession, condition: sa.ColumnElement[bool], *, offset: int, limit: int | None
) -> tuple[int, list[dict[str, Any]]]:
    """The entries matching `condition`, newest first, with their actor, and their count."""
    count = await session.scalar(sa.select(sa.func.count()).select_from(audit_log).where(condition))
    rows = (
        (
            await session.execute(
                sa.select(audit_log, *basic_columns(_actor, "actor"))
                .select_from(audit_log.outerjoin(_actor, _actor.c.id == audit_log.c.actor_id))
                .where(condition)
                .order_by(audit_log.c.id.desc())
                .offset(offset)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    return int(count or 0), [dict(row) for row in rows]
