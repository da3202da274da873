"""SQL over `iam.users`."""

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import memberships
from tessera.platform.auth import users

BASIC_FIELDS = ("id", "username", "first_name", "last_name")


async def get_user(session: AsyncSession, user_id: int) -> dict[str, Any] | None:
    """One user's row, or None."""
    row = (await session.execute(sa.select(users).where(users.c.id == user_id))).mappings().first()
    return dict(row) if row else None


def basic_columns(alias: sa.FromClause, prefix: str) -> list[sa.Label[Any]]:
    """The BasicUser columns of a `users` alias, labelled `{prefix}__{field}`."""
    return [alias.c[name].label(f"{prefix}__{name}") for name in BASIC_FIELDS]


async def usable_user_ids(
    session: AsyncSession, user_ids: Iterable[int], organization_id: int | None
) -> set[int]:
    """Those of `user_ids` that are active users (and active members of the organization)."""
    query = sa.select(users.c.id).where(users.c.id.in_(set(user_ids)), users.c.is_active)
    if organization_id is not None:
        query = query.join(memberships, memberships.c.user_id == users.c.id).where(
            memberships.c.organization_id == organization_id, memberships.c.is_active
        )
    return set((await session.scalars(query)).all())


async def find_by_email(session: AsyncSession, email: str) -> int | None:
    """The id of the active user with this e-mail address (case-insensitive), or None."""
    found = await session.scalar(
        sa.select(users.c.id)
        .where(sa.func.lower(users.c.email) == email.lower(), users.c.is_active)
        .order_by(users.c.id)
        .limit(1)
    )
    return None if found is None else int(found)
