"""Personal access tokens: create, list, read, update, revoke."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.access_tokens import repository
from tessera.annotations.access_tokens.schemas import (
    ApiToken,
    ApiTokenCreate,
    ApiTokenOwner,
    ApiTokenUpdate,
)
from tessera.platform.auth import Principal, new_token, token_digest
from tessera.platform.errors import NotFound


def _to_schema(row: dict[str, Any], value: str | None = None) -> ApiToken:
    return ApiToken(
        id=row["id"],
        name=row["name"],
        created_date=row["created_date"],
        updated_date=row["updated_date"],
        expiry_date=row["expiry_date"],
        last_used_date=row["last_used_date"],
        read_only=row["read_only"],
        owner=ApiTokenOwner(id=row["owner_id"], username=row["owner_username"]),
        value=value,
    )


async def get_token(session: AsyncSession, principal: Principal, token_id: int) -> ApiToken:
    """One of the caller's usable tokens; 404 for any other."""
    row = await repository.get_token(session, principal.user_id, token_id)
    if row is None:
        raise NotFound(f"API token {token_id} does not exist.")
    return _to_schema(row)


async def create_token(
    session: AsyncSession, principal: Principal, request: ApiTokenCreate
) -> ApiToken:
    """Make a token for the caller; the value is returned here and never again."""
    value = new_token()
    token_id = await repository.insert_token(
        session,
        owner_id=principal.user_id,
        name=request.name,
        digest=token_digest(value),
        expiry_date=request.expiry_date,
        read_only=request.read_only,
    )
    row = await repository.get_token(session, principal.user_id, token_id)
    assert row is not None
    return _to_schema(row, value)


async def list_tokens(
    session: AsyncSession, principal: Principal, *, offset: int, limit: int | None
) -> tuple[int, list[ApiToken]]:
    """The caller's usable tokens, newest first."""
    count, rows = await repository.list_tokens(
        session, principal.user_id, offset=offset, limit=limit
    )
    return count, [_to_schema(row) for row in rows]


async def update_token(
    session: AsyncSession, principal: Principal, token_id: int, request: ApiTokenUpdate
) -> ApiToken:
    """Rename a token, change its expiry or its read-only flag."""
    values = request.model_dump(exclude_unset=True)
    if values and not await repository.update_token(session, principal.user_id, token_id, values):
        raise NotFound(f"API token {token_id} does not exist.")
    return await get_token(session, principal, token_id)


async def revoke_token(session: AsyncSession, principal: Principal, token_id: int) -> None:
    """Revoke a token: it stops authenticating at once, in every service."""
    if not await repository.update_token(session, principal.user_id, token_id, {"revoked": True}):
        raise NotFound(f"API token {token_id} does not exist.")
