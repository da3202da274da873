"""SQL over `iam.access_tokens`."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.platform.auth import access_tokens, users

_COLUMNS = (
    access_tokens.c.id,
    access_tokens.c.name,
    access_tokens.c.created_date,
    access_tokens.c.updated_date,
    access_tokens.c.expiry_date,
    access_tokens.c.last_used_date,
    access_tokens.c.read_only,
    access_tokens.c.owner_id,
    users.c.username.label("owner_username"),
)


def _usable(owner_id: int) -> sa.ColumnElement[bool]:
    return sa.and_(access_tokens.c.owner_id == owner_id, access_tokens.c.revoked.is_(False))


async def insert_token(
    session: AsyncSession,
    *,
    owner_id: int,
    name: str,
    digest: bytes,
    expiry_date: datetime | None,
    read_only: bool,
) -> int:
    """Store a new token; returns its id."""
    token_id = await session.scalar(
        sa.insert(access_tokens)
        .values(
            owner_id=owner_id,
            name=name,
            digest=digest,
            expiry_date=expiry_date,
            read_only=read_only,
        )
        .returning(access_tokens.c.id)
    )
    return int(token_id)


async def get_token(session: AsyncSession, owner_id: int, token_id: int) -> dict[str, Any] | None:
    """One usable token of `owner_id`, or None."""
    row = (
        (
            await session.execute(
                sa.select(*_COLUMNS)
                .join(users, users.c.id == access_tokens.c.owner_id)
                .where(_usable(owner_id), access_tokens.c.id == token_id)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_tokens(
    session: AsyncSession, owner_id: int, *, offset: int, limit: int | None
) -> tuple[int, list[dict[str, Any]]]:
    """The usable tokens of `owner_id`, newest first, and their total count."""
    count = await session.scalar(
        sa.select(sa.func.count()).select_from(access_tokens).where(_usable(owner_id))
    )
    rows = (
        (
            await session.execute(
                sa.select(*_COLUMNS)
                .join(users, users.c.id == access_tokens.c.owner_id)
                .where(_usable(owner_id))
                .order_by(access_tokens.c.id.desc())
                .offset(offset)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def update_token(
    session: AsyncSession, owner_id: int, token_id: int, values: dict[str, Any]
) -> bool:
    """Apply `values` to a usable token; False when there is no such token."""
    result = await session.execute(
        sa.update(access_tokens)
        .where(_usable(owner_id), access_tokens.c.id == token_id)
        .values(**values, updated_date=sa.func.now())
        .returning(access_tokens.c.id)
    )
    return result.first() is not None
