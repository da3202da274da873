"""`/api/memberships`."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.events import EventOutbox
from tessera.annotations.memberships import service
from tessera.annotations.memberships.schemas import Membership, MembershipUpdate
from tessera.annotations.memberships.service import list_query_of_memberships
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/memberships", tags=["memberships"])


@router.get("", summary="List memberships")
async def list_memberships(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_memberships)],
) -> Page[Membership]:
    """Memberships of the caller's organizations (of this one in an organization context),
    newest first unless sorted."""
    count, results = await service.list_memberships(session, ctx, request, query)
    return Page[Membership].build(request, query.page, count, results)


@router.get("/{membership_id}", summary="Get membership details")
async def get_membership(
    membership_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> Membership:
    """One membership."""
    return await service.get_membership(session, ctx, request, membership_id)


@router.patch("/{membership_id}", summary="Change a member's role")
async def update_membership(
    membership_id: int,
    body: MembershipUpdate,
    *,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    outbox: EventOutbox,
) -> Membership:
    """Owners change anyone's role but their own; maintainers, supervisors' and workers'."""
    return await service.update_membership(
        session, ctx, request, membership_id, body, outbox=outbox
    )


@router.delete(
    "/{membership_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a member"
)
async def delete_membership(
    membership_id: int, ctx: RequestContext, session: DbSession, outbox: EventOutbox
) -> Response:
    """Remove a member, or leave the organization."""
    await service.delete_membership(session, ctx, outbox, membership_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
