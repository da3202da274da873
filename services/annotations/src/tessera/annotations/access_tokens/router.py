"""`/api/auth/api_tokens`: personal access tokens, as CVAT exposes them."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access_tokens import service
from tessera.annotations.access_tokens.schemas import ApiToken, ApiTokenCreate, ApiTokenUpdate
from tessera.platform.auth import CurrentUser
from tessera.platform.db import DbSession
from tessera.platform.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api/auth/api_tokens", tags=["auth"])


@router.get("", summary="List API tokens")
async def list_tokens(
    request: Request,
    principal: CurrentUser,
    session: DbSession,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[ApiToken]:
    """The caller's tokens that are not revoked, newest first."""
    count, tokens = await service.list_tokens(
        session, principal, offset=params.offset, limit=params.limit
    )
    return Page[ApiToken].build(request, params, count, tokens)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API token")
async def create_token(
    body: ApiTokenCreate, principal: CurrentUser, session: DbSession
) -> ApiToken:
    """Create a token for the caller. Its `value` is in this response only."""
    return await service.create_token(session, principal, body)


@router.get("/self", summary="Get details of the token used for this request")
async def get_current_token(principal: CurrentUser, session: DbSession) -> ApiToken:
    """The token that authenticated this very request."""
    return await service.get_token(session, principal, principal.token_id)


@router.get("/{token_id}", summary="Get API token details")
async def get_token(token_id: int, principal: CurrentUser, session: DbSession) -> ApiToken:
    """One of the caller's tokens."""
    return await service.get_token(session, principal, token_id)


@router.patch("/{token_id}", summary="Update an API token")
async def update_token(
    token_id: int, body: ApiTokenUpdate, principal: CurrentUser, session: DbSession
) -> ApiToken:
    """Change a token's name, expiry or read-only flag."""
    return await service.update_token(session, principal, token_id, body)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke an API token")
async def revoke_token(token_id: int, principal: CurrentUser, session: DbSession) -> Response:
    """Revoke a token; it no longer authenticates anywhere."""
    await service.revoke_token(session, principal, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
