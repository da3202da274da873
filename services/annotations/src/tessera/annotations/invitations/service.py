"""Invitations: owners and maintainers invite registered users; the invitee accepts
(becoming an active member) or declines. An invitation expires after a week unless
resent."""

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations import events
from tessera.annotations.access import Context
from tessera.annotations.invitations import repository
from tessera.annotations.invitations.schemas import (
    AcceptedInvitation,
    Invitation,
    InvitationCreate,
    OrganizationInfo,
)
from tessera.annotations.memberships import repository as memberships
from tessera.annotations.memberships.service import may_manage
from tessera.annotations.tables import invitations
from tessera.annotations.tables import memberships as membership_table
from tessera.annotations.users import repository as users
from tessera.annotations.users.service import basic_user
from tessera.platform.bus import Outbox
from tessera.platform.errors import NotFound, Problem, unprocessable
from tessera.platform.listing import ListQuery, list_query

EXPIRY = timedelta(days=7)

list_query_of_invitations = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the invitation list's parameters (CVAT's)."""


def visible_invitations(ctx: Context) -> sa.ColumnElement[bool]:
    """Invitations to the caller, sent by the caller, or into organizations they manage."""
    condition: sa.ColumnElement[bool] = (
        sa.true()
        if ctx.is_admin
        else sa.or_(
            membership_table.c.user_id == ctx.user_id,
            invitations.c.owner_id == ctx.user_id,
            membership_table.c.organization_id.in_(
                memberships.member_of(ctx.user_id, roles=("owner", "maintainer"))
            ),
        )
    )
    if ctx.organization_id is not None:
        condition = sa.and_(condition, membership_table.c.organization_id == ctx.organization_id)
    return condition


def _expired(row: dict[str, Any]) -> bool:
    if row["accepted"]:
        return False
    sent: datetime = row["sent_date"] or row["created_date"]
    return sent + EXPIRY < datetime.now(UTC)


def _to_schema(request: Request, row: dict[str, Any]) -> Invitation:
    user = basic_user(request, row, "user")
    assert user is not None
    return Invitation(
        key=row["key"],
        created_date=row["created_date"],
        owner=basic_user(request, row, "owner"),
        role=row["role"],
        user=user,
        organization=row["organization_id"],
        organization_info=OrganizationInfo(
            id=row["organization_id"], slug=row["organization_slug"]
        ),
        expired=_expired(row),
        accepted=row["accepted"],
    )


async def _invitation_row(session: AsyncSession, ctx: Context, key: str) -> dict[str, Any]:
    row = await repository.get_invitation(session, key, visible_invitations(ctx))
    if row is None:
        raise NotFound("This invitation does not exist.")
    return row


async def get_invitation(
    session: AsyncSession, ctx: Context, request: Request, key: str
) -> Invitation:
    """One invitation the caller may see."""
    return _to_schema(request, await _invitation_row(session, ctx, key))


async def list_invitations(
    session: AsyncSession, ctx: Context, request: Request, query: ListQuery
) -> tuple[int, list[Invitation]]:
    """The invitations the caller may see that match the list query."""
    count, rows = await repository.list_invitations(session, visible_invitations(ctx), query)
    return count, [_to_schema(request, row) for row in rows]


async def create_invitation(
    session: AsyncSession, ctx: Context, request: Request, body: InvitationCreate
) -> Invitation:
    """Invite a user into the context's organization: owners invite any role but owner,
    maintainers supervisors and workers."""
    if ctx.organization_id is None:
        raise unprocessable(
            [("query.org", "invitations are made in an organization: send X-Organization")]
        )
    ctx.require(may_manage(ctx, ctx.role, body.role), f"invite a {body.role}")
    user_id = await users.find_by_email(session, body.email)
    if user_id is None:
        raise unprocessable([("body.email", "no active user has this e-mail address")])
    existing = await memberships.membership_of(session, user_id, ctx.organization_id)
    if existing is not None:
        state = "a member" if existing["is_active"] else "invited"
        raise Problem(409, f"This user is already {state}.")
    membership_id = await memberships.insert_membership(
        session,
        {
            "user_id": user_id,
            "organization_id": ctx.organization_id,
            "role": body.role,
            "is_active": False,
            "invited_by_id": ctx.user_id,
        },
    )
    key = secrets.token_hex(32)
    await repository.insert_invitation(
        session, key=key, membership_id=membership_id, owner_id=ctx.user_id
    )
    return await get_invitation(session, ctx, request, key)


async def _pending_for_invitee(session: AsyncSession, ctx: Context, key: str) -> dict[str, Any]:
    row = await _invitation_row(session, ctx, key)
    ctx.require(row["user_id"] == ctx.user_id, "answer an invitation of someone else")
    if row["accepted"] or row["is_active"]:
        raise Problem(409, "This invitation is already accepted.")
    return row


async def accept_invitation(
    session: AsyncSession, ctx: Context, outbox: Outbox, key: str
) -> AcceptedInvitation:
    """The invitee joins the organization in the offered role (`memberships.changed`)."""
    row = await _pending_for_invitee(session, ctx, key)
    if _expired(row):
        raise Problem(409, "This invitation has expired; ask for it to be resent.")
    await memberships.update_membership(
        session, row["membership_id"], {"is_active": True, "joined_date": sa.func.now()}
    )
    await repository.update_invitation(session, key, {"accepted": True})
    await events.membership_changed(
        outbox, session, {**row, "id": row["membership_id"]}, old_role=None, new_role=row["role"]
    )
    return AcceptedInvitation(organization_slug=row["organization_slug"])


async def decline_invitation(session: AsyncSession, ctx: Context, key: str) -> None:
    """The invitee refuses: the invitation and its pending membership go."""
    row = await _pending_for_invitee(session, ctx, key)
    await memberships.delete_membership(session, row["membership_id"])


async def _managed(session: AsyncSession, ctx: Context, key: str, action: str) -> dict[str, Any]:
    row = await _invitation_row(session, ctx, key)
    actor = await memberships.role_of(session, ctx.user_id, row["organization_id"])
    allowed = row["owner_id"] == ctx.user_id or may_manage(ctx, actor, row["role"])
    ctx.require(allowed, f"{action} this invitation")
    return row


async def resend_invitation(session: AsyncSession, ctx: Context, key: str) -> None:
    """Send a pending invitation again: it is valid for another week."""
    row = await _managed(session, ctx, key, "resend")
    if row["accepted"]:
        raise Problem(409, "This invitation is already accepted.")
    await repository.update_invitation(session, key, {"sent_date": sa.func.now()})


async def delete_invitation(session: AsyncSession, ctx: Context, key: str) -> None:
    """Withdraw an invitation; a pending membership goes with it."""
    row = await _managed(session, ctx, key, "delete")
    if row["accepted"]:
        await repository.delete_invitation(session, key)
    else:
        await memberships.delete_membership(session, row["membership_id"])
