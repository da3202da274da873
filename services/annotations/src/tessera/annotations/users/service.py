"""Users: reading profiles, referring to users from other resources."""

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.links import api_url
from tessera.annotations.users import repository
from tessera.annotations.users.schemas import BasicUser, User
from tessera.platform.errors import NotFound, unprocessable


async def get_user(session: AsyncSession, user_id: int) -> User:
    """The profile of `user_id`; 404 when it does not exist."""
    row = await repository.get_user(session, user_id)
    if row is None:
        raise NotFound(f"User {user_id} does not exist.")
    groups = ["admin"] if row["is_superuser"] else ["user"]
    return User(groups=groups, **{key: row[key] for key in User.model_fields if key != "groups"})


def basic_user(request: Request, row: Mapping[str, Any], prefix: str) -> BasicUser | None:
    """The BasicUser selected with `repository.basic_columns(..., prefix)`, or None."""
    user_id = row[f"{prefix}__id"]
    if user_id is None:
        return None
    return BasicUser(
        url=api_url(request, f"users/{user_id}"),
        id=user_id,
        username=row[f"{prefix}__username"],
        first_name=row[f"{prefix}__first_name"],
        last_name=row[f"{prefix}__last_name"],
    )


async def check_users(
    session: AsyncSession, references: Mapping[str, int | None], organization_id: int | None
) -> None:
    """422 naming each field of `references` (field -> user id) that is not a usable user.

    In an organization the user must also be an active member of it.
    """
    wanted = {field: user_id for field, user_id in references.items() if user_id is not None}
    if not wanted:
        return
    usable = await repository.usable_user_ids(session, wanted.values(), organization_id)
    where = "an active member of this organization" if organization_id else "an active user"
    errors = [
        (field, f"user {user_id} is not {where}")
        for field, user_id in wanted.items()
        if user_id not in usable
    ]
    if errors:
        raise unprocessable(errors)
