"""Schemas of `/api/issues` (CVAT's IssueRead, IssueWriteRequest): review issues pinned to
a frame and a position of a job."""

import math
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from tessera.annotations.projects.schemas import CountLink
from tessera.annotations.users.schemas import BasicUser
from tessera.platform.contracts.annotations import Frame

Message = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


def _points(position: list[float]) -> list[float]:
    if len(position) < 2 or len(position) % 2:
        raise ValueError("must be x, y pairs: at least one point")
    if not all(math.isfinite(value) for value in position):
        raise ValueError("must be finite numbers")
    return position


Position = Annotated[list[float], AfterValidator(_points)]


class IssueCreate(BaseModel):
    """A new issue on a job's frame; `message` is its first comment."""

    job: int
    frame: Frame
    position: Position
    message: Message
    assignee: int | None = None
    resolved: bool = False


class IssueUpdate(BaseModel):
    """A partial update of an issue: move it, reassign it, resolve or reopen it."""

    position: Position | None = None
    assignee: int | None = None
    resolved: bool | None = None


class Issue(BaseModel):
    """An issue as read."""

    id: int
    job: int
    frame: int
    position: list[float]
    owner: BasicUser | None
    assignee: BasicUser | None
    created_date: datetime
    updated_date: datetime
    resolved: bool
    comments: CountLink = Field(description="The issue's comments: `/api/comments?issue_id=`.")
