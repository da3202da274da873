"""SQL over `iam.users`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.platform.auth import users


async def get_user(session: AsyncSession, user_id: int) -> dict[str, Any] | None:
    """One user's row, or None."""
    row = (await session.execute(sa.select(users).where(users.c.id == user_id))).mappings().first()
    return dict(row) if row else None
