"""Organizations: create (the creator owns it), read, list, change, delete."""

from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations import events
from tessera.annotations.memberships import repository as memberships
from tessera.annotations.organizations import repository
from tessera.annotations.organizations.schemas import (
    Organization,
    OrganizationCreate,
    OrganizationUpdate,
)
from tessera.annotations.tables import organizations
from tessera.annotations.users.service import basic_user
from tessera.platform.auth import Principal
from tessera.platform.bus import Outbox
from tessera.platform.contracts.annotations import Role
from tessera.platform.errors import NotFound, Problem, unprocessable


def _visible(principal: Principal) -> sa.ColumnElement[bool]:
    if principal.is_superuser:
        return sa.true()
    return organizations.c.id.in_(memberships.member_of(principal.user_id))


def _to_schema(request: Request, row: dict[str, Any]) -> Organization:
    return Organization(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        description=row["description"],
        created_date=row["created_date"],
        updated_date=row["updated_date"],
        contact=row["contact"],
        owner=basic_user(request, row, "owner"),
    )


async def get_organization(
    session: AsyncSession, principal: Principal, request: Request, organization_id: int
) -> Organization:
    """One organization the caller is a member of."""
    return _to_schema(request, await _organization_row(session, principal, organization_id))


async def list_organizations(
    session: AsyncSession, principal: Principal, request: Request, *, offset: int, limit: int | None
) -> tuple[int, list[Organization]]:
    """The organizations the caller is a member of, newest first."""
    count, rows = await repository.list_organizations(
        session, _visible(principal), offset=offset, limit=limit
    )
    return count, [_to_schema(request, row) for row in rows]


async def create_organization(
    session: AsyncSession, principal: Principal, request: Request, body: OrganizationCreate
) -> Organization:
    """Create an organization owned by the caller."""
    if await repository.slug_taken(session, body.slug):
        raise unprocessable([("body.slug", f"the slug {body.slug!r} is taken")])
    organization_id = await repository.insert_organization(
        session,
        {
            "slug": body.slug,
            "name": body.name or body.slug,
            "description": body.description,
            "contact": body.contact,
            "owner_id": principal.user_id,
        },
    )
    await memberships.insert_membership(
        session,
        {
            "user_id": principal.user_id,
            "organization_id": organization_id,
            "role": Role.OWNER,
            "is_active": True,
            "joined_date": sa.func.now(),
        },
    )
    return await get_organization(session, principal, request, organization_id)


async def _organization_row(
    session: AsyncSession, principal: Principal, organization_id: int
) -> dict[str, Any]:
    row = await repository.get_organization(session, organization_id, _visible(principal))
    if row is None:
        raise NotFound(f"Organization {organization_id} does not exist.")
    return row


async def _role(session: AsyncSession, principal: Principal, organization_id: int) -> str | None:
    await _organization_row(session, principal, organization_id)
    return await memberships.role_of(session, principal.user_id, organization_id)


async def update_organization(
    session: AsyncSession,
    principal: Principal,
    request: Request,
    organization_id: int,
    body: OrganizationUpdate,
) -> Organization:
    """Change an organization; its owner and maintainers may."""
    role = await _role(session, principal, organization_id)
    if not (principal.is_superuser or role in (Role.OWNER, Role.MAINTAINER)):
        raise Problem(403, f"You are not allowed to change organization {organization_id}.")
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    if "slug" in values and await repository.slug_taken(
        session, values["slug"], other_than=organization_id
    ):
        raise unprocessable([("body.slug", f"the slug {values['slug']!r} is taken")])
    if values:
        await repository.update_organization(session, organization_id, values)
    return await get_organization(session, principal, request, organization_id)


async def delete_organization(
    session: AsyncSession, principal: Principal, outbox: Outbox, organization_id: int
) -> None:
    """Delete an organization with its projects, tasks and memberships; its owner may."""
    role = await _role(session, principal, organization_id)
    if not (principal.is_superuser or role == Role.OWNER):
        raise Problem(403, f"You are not allowed to delete organization {organization_id}.")
    deleted = await repository.delete_organization(session, organization_id)
    await events.tasks_deleted(outbox, session, deleted)
