"""Users: reading profiles."""

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.users import repository
from tessera.annotations.users.schemas import User
from tessera.platform.errors import NotFound


async def get_user(session: AsyncSession, user_id: int) -> User:
    """The profile of `user_id`; 404 when it does not exist."""
    row = await repository.get_user(session, user_id)
    if row is None:
        raise NotFound(f"User {user_id} does not exist.")
    groups = ["admin"] if row["is_superuser"] else ["user"]
    return User(groups=groups, **{key: row[key] for key in User.model_fields if key != "groups"})
