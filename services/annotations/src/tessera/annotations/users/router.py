"""`/api/users`."""

from fastapi import APIRouter

from tessera.annotations.users import service
from tessera.annotations.users.schemas import User
from tessera.platform.auth import CurrentUser
from tessera.platform.db import DbSession

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get("/self", summary="Get details of the user who makes the request")
async def get_self(principal: CurrentUser, session: DbSession) -> User:
    """The caller's own profile."""
    return await service.get_user(session, principal.user_id)
