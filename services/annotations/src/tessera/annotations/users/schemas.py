"""Schemas of `/api/users` (CVAT's User, BasicUser and PatchedUserRequest)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints

Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=150, pattern=r"^[\w.@+-]+$"),
]
"""Django's rule, as CVAT's: letters, digits and `@ . + - _`, at most 150."""
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=150)]
EmailOrEmpty = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^$|^[^@\s]+@[^@\s]+$")
]


class BasicUser(BaseModel):
    """A user as other resources refer to one (owner, assignee), and as a user who is not
    an administrator sees the others."""

    url: str
    id: int
    username: str
    first_name: str
    last_name: str


class User(BasicUser):
    """A user as CVAT's API shows one to an administrator, and to the user themself."""

    email: str
    groups: list[str]
    is_staff: bool
    is_superuser: bool
    is_active: bool
    last_login: datetime | None
    date_joined: datetime


class UserUpdate(BaseModel):
    """A partial update of a user: a user changes their own names; an administrator
    changes anything of anyone."""

    username: Username | None = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: EmailOrEmpty | None = None
    is_active: bool | None = None
    is_staff: bool | None = None
    is_superuser: bool | None = None


PERSONAL_DATA = frozenset({"first_name", "last_name"})
"""What users may change of themselves (CVAT's `update:personal_data`)."""
