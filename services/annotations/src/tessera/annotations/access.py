"""Who may do what: the organization a request acts in, and the caller's role there.

As in CVAT, the organization comes from the `X-Organization` header (its slug) or the
`org` (slug) or `org_id` query parameters; an empty `X-Organization` or none at all
means the caller's personal workspace. Objects of another organization answer 404, so
their existence is not revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from tessera.annotations.tables import memberships, organizations
from tessera.platform.auth import CurrentUser, Principal
from tessera.platform.contracts.annotations import (
    Role,
    can_manage_organization,
    can_see_whole_organization,
)
from tessera.platform.db import DbSession
from tessera.platform.errors import NotFound, Problem


@dataclass(frozen=True)
class Context:
    """The caller and the organization the request acts in."""

    principal: Principal
    organization_id: int | None
    role: Role | None

    @property
    def user_id(self) -> int:
        """The caller's user id."""
        return self.principal.user_id

    @property
    def is_admin(self) -> bool:
        """Server administrators may act on everything."""
        return self.principal.is_superuser

    @property
    def sees_whole_organization(self) -> bool:
        """Owners, maintainers and supervisors see every object of their organization."""
        return can_see_whole_organization(self.is_admin, self.role)

    @property
    def manages_organization(self) -> bool:
        """Owners and maintainers change any object of their organization."""
        return can_manage_organization(self.is_admin, self.role)

    def require(self, allowed: bool, action: str) -> None:
        """403 problem+json unless `allowed`."""
        if not allowed:
            raise Problem(403, f"You are not allowed to {action}.")


async def request_context(request: Request, principal: CurrentUser, session: DbSession) -> Context:
    """FastAPI dependency: the caller's organization context for this request."""
    slug = request.headers.get("X-Organization", request.query_params.get("org"))
    raw_id = request.query_params.get("org_id")
    if not slug and not raw_id:
        return Context(principal, None, None)
    if slug:
        condition = organizations.c.slug == slug
        described = f"Organization {slug!r}"
    else:
        if raw_id is None or not raw_id.isdigit():
            raise Problem(
                422,
                "org_id must be an integer",
                errors=[{"field": "query.org_id", "message": "not an integer"}],
            )
        condition = organizations.c.id == int(raw_id)
        described = f"Organization {raw_id}"
    row = (
        await session.execute(
            sa.select(organizations.c.id, memberships.c.role)
            .select_from(organizations)
            .outerjoin(
                memberships,
                sa.and_(
                    memberships.c.organization_id == organizations.c.id,
                    memberships.c.user_id == principal.user_id,
                    memberships.c.is_active.is_(True),
                ),
            )
            .where(condition)
        )
    ).first()
    if row is None or (row.role is None and not principal.is_superuser):
        raise NotFound(f"{described} does not exist or you are not a member of it.")
    return Context(principal, row.id, Role(row.role) if row.role else None)


RequestContext = Annotated[Context, Depends(request_context)]
