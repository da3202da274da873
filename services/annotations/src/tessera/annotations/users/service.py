"""Users: listing and reading them, changing and deleting them, and referring to users
from other resources.

As CVAT: an administrator lists every user (in an organization context, its members);
anyone else lists the members of the organization they act in, or only themself in
their personal workspace. A user is seen by administrators, by themself, and by the
members of an organization they belong to (in that organization's context); anyone else
gets 404. Administrators see whole users (`User`); others see `BasicUser`s, but the
whole of themself when they ask for their own id.
"""

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.access import Context
from tessera.annotations.links import api_url
from tessera.annotations.users import repository
from tessera.annotations.users.schemas import PERSONAL_DATA, BasicUser, User, UserUpdate
from tessera.platform.auth import Principal, users
from tessera.platform.errors import NotFound, Problem, unprocessable
from tessera.platform.listing import ListQuery, list_query

list_query_of_users = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the user list's parameters (CVAT's)."""


def listed_users(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `users`: whom the caller lists in the organization context."""
    if ctx.organization_id is not None:
        return users.c.id.in_(repository.members_of(ctx.organization_id))
    return sa.true() if ctx.is_admin else users.c.id == ctx.user_id


def viewable_users(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `users`: whom the caller may look at by id."""
    if ctx.is_admin:
        return sa.true()
    if ctx.organization_id is None:
        return users.c.id == ctx.user_id
    return sa.or_(
        users.c.id == ctx.user_id, users.c.id.in_(repository.members_of(ctx.organization_id))
    )


def _whole(request: Request, row: Mapping[str, Any]) -> User:
    return User(
        url=api_url(request, f"users/{row['id']}"),
        groups=["admin"] if row["is_superuser"] else ["user"],
        **{key: row[key] for key in User.model_fields if key not in ("url", "groups")},
    )


def _basic(request: Request, row: Mapping[str, Any]) -> BasicUser:
    return BasicUser(
        url=api_url(request, f"users/{row['id']}"),
        **{key: row[key] for key in BasicUser.model_fields if key != "url"},
    )


async def get_self(session: AsyncSession, principal: Principal, request: Request) -> User:
    """The caller's own profile."""
    row = await repository.get_user(session, principal.user_id)
    if row is None:
        raise NotFound(f"User {principal.user_id} does not exist.")
    return _whole(request, row)


async def _user_row(session: AsyncSession, ctx: Context, user_id: int) -> dict[str, Any]:
    row = await repository.get_user(session, user_id, viewable_users(ctx))
    if row is None:
        raise NotFound(f"User {user_id} does not exist.")
    return row


async def get_user(
    session: AsyncSession, ctx: Context, request: Request, user_id: int
) -> User | BasicUser:
    """One user the caller may see: whole to an administrator or to themself."""
    row = await _user_row(session, ctx, user_id)
    return _whole(request, row) if ctx.is_admin or user_id == ctx.user_id else _basic(request, row)


async def list_users(
    session: AsyncSession, ctx: Context, request: Request, query: ListQuery
) -> tuple[int, list[User | BasicUser]]:
    """The users the caller lists that match the list query."""
    count, rows = await repository.list_users(session, listed_users(ctx), query)
    present = _whole if ctx.is_admin else _basic
    return count, [present(request, row) for row in rows]


async def update_user(
    session: AsyncSession, ctx: Context, request: Request, user_id: int, body: UserUpdate
) -> User | BasicUser:
    """Change a user: their own names for anyone, anything of anyone for an administrator.

    An administrator cannot take away their own rights or deactivate themself.
    """
    await _user_row(session, ctx, user_id)
    values = body.model_dump(exclude_none=True)
    if not ctx.is_admin:
        ctx.require(user_id == ctx.user_id, "change other users")
        beyond = sorted(set(values) - PERSONAL_DATA)
        ctx.require(not beyond, f"change {', '.join(beyond)} (an administrator's change)")
    elif user_id == ctx.user_id and (
        values.get("is_superuser") is False or values.get("is_active") is False
    ):
        raise Problem(409, "Administrators cannot demote or deactivate themselves.")
    if "username" in values and await repository.username_taken(
        session, values["username"], other_than=user_id
    ):
        raise unprocessable([("body.username", f"the username {values['username']!r} is taken")])
    if values:
        await repository.update_user(session, user_id, values)
    return await get_user(session, ctx, request, user_id)


async def delete_user(session: AsyncSession, ctx: Context, user_id: int) -> None:
    """Delete a user (administrators only, and not themselves)."""
    await _user_row(session, ctx, user_id)
    ctx.require(ctx.is_admin, "delete users")
    if user_id == ctx.user_id:
        raise Problem(409, "Administrators cannot delete themselves.")
    await repository.delete_user(session, user_id)


def basic_user(request: Request, row: Mapping[str, Any], prefix: str) -> BasicUser | None:
    """The BasicUser selected with `repository.basic_columns(..., prefix)`, or None."""
    user_id = row[f"{prefix}__id"]
    if user_id is None:
        return None
    return BasicUser(
        url=api_url(request, f"users/{user_id}"),
        id=user_id,
        username=row[f"{prefix}__username"],
        first_name=row[f"{prefix}__first_name"],
        last_name=row[f"{prefix}__last_name"],
    )


async def check_users(
    session: AsyncSession, references: Mapping[str, int | None], organization_id: int | None
) -> None:
    """422 naming each field of `references` (field -> user id) that is not a usable user.

    In an organization the user must also be an active member of it.
    """
    wanted = {field: user_id for field, user_id in references.items() if user_id is not None}
    if not wanted:
        return
    usable = await repository.usable_user_ids(session, wanted.values(), organization_id)
    where = "an active member of this organization" if organization_id else "an active user"
    errors = [
        (field, f"user {user_id} is not {where}")
        for field, user_id in wanted.items()
        if user_id not in usable
    ]
    if errors:
        raise unprocessable(errors)
