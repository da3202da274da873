"""SQL over `organizations`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import organizations, tasks
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import users

_owner = users.alias("owner")


def _select() -> sa.Select[Any]:
    return sa.select(organizations, *basic_columns(_owner, "owner")).select_from(
        organizations.outerjoin(_owner, _owner.c.id == organizations.c.owner_id)
    )


async def get_organization(
    session: AsyncSession, organization_id: int, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """One organization with its owner, if it matches `condition`."""
    row = (
        (await session.execute(_select().where(organizations.c.id == organization_id, condition)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_organizations(
    session: AsyncSession, condition: sa.ColumnElement[bool], *, offset: int, limit: int | None
) -> tuple[int, list[dict[str, Any]]]:
    """The organizations matching `condition`, newest first, and their total count."""
    count = await session.scalar(
        sa.select(sa.func.count()).select_from(organizations).where(condition)
    )
    rows = (
        (
            await session.execute(
                _select()
                .where(condition)
                .order_by(organizations.c.id.desc())
                .offset(offset)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def slug_taken(session: AsyncSession, slug: str, *, other_than: int | None = None) -> bool:
    """Whether another organization has this slug."""
    query = sa.select(organizations.c.id).where(organizations.c.slug == slug)
    if other_than is not None:
        query = query.where(organizations.c.id != other_than)
    return await session.scalar(query) is not None


async def insert_organization(session: AsyncSession, values: dict[str, Any]) -> int:
    """Store an organization; returns its id."""
    organization_id = await session.scalar(
        sa.insert(organizations).values(**values).returning(organizations.c.id)
    )
    return int(organization_id)


async def update_organization(
    session: AsyncSession, organization_id: int, values: dict[str, Any]
) -> None:
    """Change an organization's fields (and its `updated_date`)."""
    await session.execute(
        sa.update(organizations)
        .where(organizations.c.id == organization_id)
        .values(**values, updated_date=sa.func.now())
    )


async def delete_organization(session: AsyncSession, organization_id: int) -> list[dict[str, Any]]:
    """Delete an organization with everything in it; returns its deleted tasks."""
    deleted = (
        (
            await session.execute(
                sa.delete(tasks)
                .where(tasks.c.organization_id == organization_id)
                .returning(tasks.c.id, tasks.c.project_id, tasks.c.organization_id)
            )
        )
        .mappings()
        .all()
    )
    await session.execute(sa.delete(organizations).where(organizations.c.id == organization_id))
    return [dict(row) for row in deleted]
