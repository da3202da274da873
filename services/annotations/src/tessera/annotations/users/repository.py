"""SQL over `iam.users`."""

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import memberships
from tessera.platform.auth import users
from tessera.platform.listing import Field, ListQuery, ListSpec

BASIC_FIELDS = ("id", "username", "first_name", "last_name")

LIST_SPEC = ListSpec(
    fields={
        "id": Field(users.c.id, "int"),
        "username": Field(users.c.username),
        "first_name": Field(users.c.first_name),
        "last_name": Field(users.c.last_name),
        "is_active": Field(users.c.is_active, "bool"),
    },
    search=("username", "first_name", "last_name"),
    simple=("username", "first_name", "last_name", "is_active"),
)
"""CVAT's user list fields (cvat-sdk 2.80's `UsersApi.list`): newest first unless sorted."""

_COLUMNS = tuple(column for column in users.c if column.name != "password_hash")


def members_of(organization_id: int) -> sa.Select[Any]:
    """The ids of the active members of an organization."""
    return sa.select(memberships.c.user_id).where(
        memberships.c.organization_id == organization_id, memberships.c.is_active
    )


async def get_user(
    session: AsyncSession, user_id: int, condition: sa.ColumnElement[bool] | None = None
) -> dict[str, Any] | None:
    """One user's row (without the password hash), if it matches `condition`; or None."""
    query = sa.select(*_COLUMNS).where(users.c.id == user_id)
    if condition is not None:
        query = query.where(condition)
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_users(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The users matching `condition` and the list query, in its order, and their count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(sa.select(sa.func.count()).select_from(users).where(condition))
    statement = sa.select(*_COLUMNS).where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def username_taken(session: AsyncSession, username: str, *, other_than: int) -> bool:
    """Whether another user has this username."""
    found = await session.scalar(
        sa.select(users.c.id).where(users.c.username == username, users.c.id != other_than)
    )
    return found is not None


async def update_user(session: AsyncSession, user_id: int, values: dict[str, Any]) -> None:
    """Change a user's fields."""
    await session.execute(sa.update(users).where(users.c.id == user_id).values(**values))


async def delete_user(session: AsyncSession, user_id: int) -> None:
    """Delete a user: their tokens and memberships go with them; what they own or are
    assigned loses its owner or assignee."""
    await session.execute(sa.delete(users).where(users.c.id == user_id))


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
