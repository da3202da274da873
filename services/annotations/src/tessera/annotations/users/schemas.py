"""Schemas of `/api/users`."""

from datetime import datetime

from pydantic import BaseModel


class User(BaseModel):
    """A user as CVAT's API shows one."""

    id: int
    username: str
    first_name: str
    last_name: str
    email: str
    groups: list[str]
    is_staff: bool
    is_superuser: bool
    is_active: bool
    last_login: datetime | None
    date_joined: datetime


class BasicUser(BaseModel):
    """A user as other resources refer to one (owner, assignee)."""

    url: str
    id: int
    username: str
    first_name: str
    last_name: str
