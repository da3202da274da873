"""`/api/organizations`."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.events import EventOutbox
from tessera.annotations.organizations import service
from tessera.annotations.organizations.schemas import (
    Organization,
    OrganizationCreate,
    OrganizationUpdate,
)
from tessera.platform.auth import CurrentUser
from tessera.platform.db import DbSession
from tessera.platform.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api/organizations", tags=["organizations"])


@router.get("", summary="List organizations")
async def list_organizations(
    request: Request,
    principal: CurrentUser,
    session: DbSession,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[Organization]:
    """The organizations the caller is a member of, newest first."""
    count, results = await service.list_organizations(
        session, principal, request, offset=params.offset, limit=params.limit
    )
    return Page[Organization].build(request, params, count, results)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an organization")
async def create_organization(
    body: OrganizationCreate, request: Request, principal: CurrentUser, session: DbSession
) -> Organization:
    """Create an organization; the caller becomes its owner."""
    return await service.create_organization(session, principal, request, body)


@router.get("/{organization_id}", summary="Get organization details")
async def get_organization(
    organization_id: int, request: Request, principal: CurrentUser, session: DbSession
) -> Organization:
    """One organization."""
    return await service.get_organization(session, principal, request, organization_id)


@router.patch("/{organization_id}", summary="Update an organization")
async def update_organization(
    organization_id: int,
    body: OrganizationUpdate,
    request: Request,
    principal: CurrentUser,
    session: DbSession,
) -> Organization:
    """Change the slug, name, description or contact of an organization."""
    return await service.update_organization(session, principal, request, organization_id, body)


@router.delete(
    "/{organization_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an organization",
)
async def delete_organization(
    organization_id: int, principal: CurrentUser, session: DbSession, outbox: EventOutbox
) -> Response:
    """Delete an organization with its projects, tasks, jobs and memberships."""
    await service.delete_organization(session, principal, outbox, organization_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
