"""SQL over `memberships`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import invitations, memberships
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import username_of, users
from tessera.platform.listing import Field, ListQuery, ListSpec

_user = users.alias("member")

ROLES = ("worker", "supervisor", "maintainer", "owner")

LIST_SPEC = ListSpec(
    fields={
        "id": Field(memberships.c.id, "int"),
        "user": Field(username_of(memberships.c.user_id)),
        "role": Field(memberships.c.role, choices=ROLES),
    },
    search=("user",),
    simple=("role", "user"),
)
"""CVAT's membership list fields (cvat-sdk 2.80's `MembershipsApi.list`)."""


def _select() -> sa.Select[Any]:
    return sa.select(
        memberships, invitations.c.key.label("invitation"), *basic_columns(_user, "user")
    ).select_from(
        memberships.join(_user, _user.c.id == memberships.c.user_id).outerjoin(
            invitations, invitations.c.membership_id == memberships.c.id
        )
    )


def member_of(user_id: int, *, roles: tuple[str, ...] = ()) -> sa.Select[Any]:
    """The ids of the organizations where `user_id` is an active member (in one of `roles`)."""
    query = sa.select(memberships.c.organization_id).where(
        memberships.c.user_id == user_id, memberships.c.is_active
    )
    return query.where(memberships.c.role.in_(roles)) if roles else query


async def role_of(session: AsyncSession, user_id: int, organization_id: int) -> str | None:
    """The role of an active member, or None."""
    role = await session.scalar(
        sa.select(memberships.c.role).where(
            memberships.c.user_id == user_id,
            memberships.c.organization_id == organization_id,
            memberships.c.is_active,
        )
    )
    return None if role is None else str(role)


async def get_membership(
    session: AsyncSession, membership_id: int, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """One membership with its user and invitation key, if it matches `condition`."""
    row = (
        (await session.execute(_select().where(memberships.c.id == membership_id, condition)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_memberships(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The memberships matching `condition` and the list query, in its order, and their count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(
        sa.select(sa.func.count()).select_from(memberships).where(condition)
    )
    statement = _select().where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def insert_membership(session: AsyncSession, values: dict[str, Any]) -> int:
    """Store a membership; returns its id."""
    membership_id = await session.scalar(
        sa.insert(memberships).values(**values).returning(memberships.c.id)
    )
    return int(membership_id)


async def update_membership(
    session: AsyncSession, membership_id: int, values: dict[str, Any]
) -> None:
    """Change a membership's fields."""
    await session.execute(
        sa.update(memberships).where(memberships.c.id == membership_id).values(**values)
    )


async def delete_membership(session: AsyncSession, membership_id: int) -> None:
    """Delete a membership (and its invitation)."""
    await session.execute(sa.delete(memberships).where(memberships.c.id == membership_id))


async def membership_of(
    session: AsyncSession, user_id: int, organization_id: int
) -> dict[str, Any] | None:
    """The membership (active or invited) of a user in an organization, or None."""
    row = (
        (
            await session.execute(
                sa.select(memberships).where(
                    memberships.c.user_id == user_id,
                    memberships.c.organization_id == organization_id,
                )
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None
