"""Memberships: who belongs to which organization in which role.

Owners manage everyone but themselves; maintainers manage supervisors and workers; any
member but the owner may leave. An organization always keeps its one owner.
"""

from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations import events
from tessera.annotations.access import Context
from tessera.annotations.memberships import repository
from tessera.annotations.memberships.schemas import Membership, MembershipUpdate
from tessera.annotations.tables import memberships
from tessera.annotations.users.service import basic_user
from tessera.platform.bus import Outbox
from tessera.platform.errors import NotFound, Problem
from tessera.platform.listing import ListQuery, list_query

MANAGED_BY = {
    "owner": ("maintainer", "supervisor", "worker"),
    "maintainer": ("supervisor", "worker"),
}


def may_manage(ctx: Context, actor_role: str | None, target_role: str) -> bool:
    """Whether someone of `actor_role` (or an admin) may change or remove a `target_role`."""
    if ctx.is_admin:
        return target_role != "owner"
    return target_role in MANAGED_BY.get(actor_role or "", ())


def visible_memberships(ctx: Context) -> sa.ColumnElement[bool]:
    """Memberships of the caller's organizations (this one in an organization context)."""
    condition: sa.ColumnElement[bool] = (
        sa.true()
        if ctx.is_admin
        else sa.or_(
            memberships.c.organization_id.in_(repository.member_of(ctx.user_id)),
            memberships.c.user_id == ctx.user_id,
        )
    )
    if ctx.organization_id is not None:
        condition = sa.and_(condition, memberships.c.organization_id == ctx.organization_id)
    return condition


list_query_of_memberships = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the membership list's parameters (CVAT's; `user` is a username)."""


def _to_schema(request: Request, row: dict[str, Any]) -> Membership:
    user = basic_user(request, row, "user")
    assert user is not None
    return Membership(
        id=row["id"],
        user=user,
        organization=row["organization_id"],
        is_active=row["is_active"],
        joined_date=row["joined_date"],
        role=row["role"],
        invitation=row["invitation"],
    )


async def _membership_row(
    session: AsyncSession, ctx: Context, membership_id: int
) -> dict[str, Any]:
    row = await repository.get_membership(session, membership_id, visible_memberships(ctx))
    if row is None:
        raise NotFound(f"Membership {membership_id} does not exist.")
    return row


async def get_membership(
    session: AsyncSession, ctx: Context, request: Request, membership_id: int
) -> Membership:
    """One membership of the caller's organizations."""
    return _to_schema(request, await _membership_row(session, ctx, membership_id))


async def list_memberships(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    query: ListQuery,
) -> tuple[int, list[Membership]]:
    """The memberships of the caller's organizations that match the list query."""
    count, rows = await repository.list_memberships(session, visible_memberships(ctx), query)
    return count, [_to_schema(request, row) for row in rows]


async def update_membership(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    membership_id: int,
    body: MembershipUpdate,
    *,
    outbox: Outbox,
) -> Membership:
    """Give a member another role (never the owner's, and not one's own)."""
    row = await _membership_row(session, ctx, membership_id)
    actor = await repository.role_of(session, ctx.user_id, row["organization_id"])
    allowed = may_manage(ctx, actor, row["role"]) and (
        ctx.is_admin or (row["user_id"] != ctx.user_id and may_manage(ctx, actor, body.role))
    )
    ctx.require(allowed, f"make this member a {body.role}")
    await repository.update_membership(session, membership_id, {"role": body.role})
    if body.role != row["role"]:
        await events.membership_changed(
            outbox, session, row, old_role=row["role"], new_role=body.role
        )
    return await get_membership(session, ctx, request, membership_id)


async def delete_membership(
    session: AsyncSession, ctx: Context, outbox: Outbox, membership_id: int
) -> None:
    """Remove a member, or leave an organization (its owner cannot)."""
    row = await _membership_row(session, ctx, membership_id)
    if row["role"] == "owner":
        raise Problem(409, "The owner cannot leave the organization; delete it instead.")
    actor = await repository.role_of(session, ctx.user_id, row["organization_id"])
    leaving = row["user_id"] == ctx.user_id
    ctx.require(leaving or may_manage(ctx, actor, row["role"]), "remove this member")
    await repository.delete_membership(session, membership_id)
    if row["is_active"]:
        await events.membership_changed(outbox, session, row, old_role=row["role"], new_role=None)
