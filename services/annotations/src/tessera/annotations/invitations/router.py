"""`/api/invitations`: invitations into organizations, accepted or declined by the invitee."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.events import EventOutbox
from tessera.annotations.invitations import service
from tessera.annotations.invitations.schemas import (
    AcceptedInvitation,
    Invitation,
    InvitationCreate,
)
from tessera.annotations.invitations.service import list_query_of_invitations
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/invitations", tags=["invitations"])
NO_CONTENT = status.HTTP_204_NO_CONTENT


@router.get("", summary="List invitations")
async def list_invitations(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_invitations)],
) -> Page[Invitation]:
    """Invitations to the caller, from the caller, or into organizations the caller manages
    (newest first unless sorted)."""
    count, results = await service.list_invitations(session, ctx, request, query)
    return Page[Invitation].build(request, query.page, count, results)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Invite a user")
async def create_invitation(
    body: InvitationCreate, request: Request, ctx: RequestContext, session: DbSession
) -> Invitation:
    """Invite a registered user (by e-mail address) into the organization context."""
    return await service.create_invitation(session, ctx, request, body)


@router.get("/{key}", summary="Get invitation details")
async def get_invitation(
    key: str, request: Request, ctx: RequestContext, session: DbSession
) -> Invitation:
    """One invitation."""
    return await service.get_invitation(session, ctx, request, key)


@router.post("/{key}/accept", summary="Accept an invitation")
async def accept_invitation(
    key: str, ctx: RequestContext, session: DbSession, outbox: EventOutbox
) -> AcceptedInvitation:
    """The invitee joins the organization."""
    return await service.accept_invitation(session, ctx, outbox, key)


@router.post("/{key}/decline", status_code=NO_CONTENT, summary="Decline an invitation")
async def decline_invitation(key: str, ctx: RequestContext, session: DbSession) -> Response:
    """The invitee refuses; the invitation goes."""
    await service.decline_invitation(session, ctx, key)
    return Response(status_code=NO_CONTENT)


@router.post("/{key}/resend", status_code=NO_CONTENT, summary="Resend an invitation")
async def resend_invitation(key: str, ctx: RequestContext, session: DbSession) -> Response:
    """Renew a pending invitation for another week."""
    await service.resend_invitation(session, ctx, key)
    return Response(status_code=NO_CONTENT)


@router.delete("/{key}", status_code=NO_CONTENT, summary="Delete an invitation")
async def delete_invitation(key: str, ctx: RequestContext, session: DbSession) -> Response:
    """Withdraw an invitation."""
    await service.delete_invitation(session, ctx, key)
    return Response(status_code=NO_CONTENT)
