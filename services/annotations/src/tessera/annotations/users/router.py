"""`/api/users`."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.users import service
from tessera.annotations.users.schemas import BasicUser, User, UserUpdate
from tessera.annotations.users.service import list_query_of_users
from tessera.platform.auth import CurrentUser
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get("", summary="List users")
async def list_users(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_users)],
) -> Page[User | BasicUser]:
    """Every user to an administrator, the members of the organization in an organization
    context, oneself in a personal workspace (newest first unless sorted). Administrators
    get whole users, others `BasicUser`s."""
    count, results = await service.list_users(session, ctx, request, query)
    return Page[User | BasicUser].build(request, query.page, count, results)


@router.get("/self", summary="Get details of the user who makes the request")
async def get_self(principal: CurrentUser, request: Request, session: DbSession) -> User:
    """The caller's own profile."""
    return await service.get_self(session, principal, request)


@router.get("/{user_id}", summary="Get user details")
async def get_user(
    user_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> User | BasicUser:
    """One user: whole to an administrator or to oneself, a `BasicUser` to others."""
    return await service.get_user(session, ctx, request, user_id)


@router.patch("/{user_id}", summary="Update a user")
async def update_user(
    user_id: int, body: UserUpdate, request: Request, ctx: RequestContext, session: DbSession
) -> User | BasicUser:
    """Users change their own `first_name` and `last_name`; administrators change any
    field of anyone (but cannot demote or deactivate themselves)."""
    return await service.update_user(session, ctx, request, user_id, body)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a user")
async def delete_user(user_id: int, ctx: RequestContext, session: DbSession) -> Response:
    """Delete a user (administrators only, not themselves): their tokens and memberships go
    with them, and what they owned or were assigned keeps no owner or assignee."""
    await service.delete_user(session, ctx, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
