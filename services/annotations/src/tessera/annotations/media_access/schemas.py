"""What the ingest service learns about a task or job on behalf of its caller."""

from typing import Literal

from pydantic import BaseModel


class TaskAccess(BaseModel):
    """A task the caller sees, the facts ingest needs about it, and whether they may change it."""

    task_id: int
    project_id: int | None
    organization_id: int | None
    owner_id: int | None
    segment_size: int
    overlap: int | None
    dimension: Literal["2d", "3d"]
    size: int
    has_jobs: bool
    can_change: bool


class JobAccess(BaseModel):
    """A job the caller sees and the task frames it covers."""

    job_id: int
    task_id: int
    start_frame: int
    stop_frame: int
    frames: list[int] | None


class CallerContext(BaseModel):
    """The caller and the organization their request acts in, with their role there."""

    user_id: int
    username: str
    is_admin: bool
    organization_id: int | None
    role: Literal["owner", "maintainer", "supervisor", "worker"] | None
