"""Schemas of `/api/comments` (CVAT's CommentRead, CommentWriteRequest)."""

from datetime import datetime

from pydantic import BaseModel

from tessera.annotations.issues.schemas import Message
from tessera.annotations.users.schemas import BasicUser


class CommentCreate(BaseModel):
    """A new comment on an issue."""

    issue: int
    message: Message


class CommentUpdate(BaseModel):
    """A corrected comment."""

    message: Message


class Comment(BaseModel):
    """A comment as read."""

    id: int
    issue: int
    owner: BasicUser | None
    message: str
    created_date: datetime
    updated_date: datetime
