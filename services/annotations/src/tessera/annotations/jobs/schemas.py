"""Schemas of `/api/jobs` (CVAT's JobRead, PatchedJobWriteRequest).

The segments request by which the ingest service turns a task's media into jobs is part
of the service's internal contract, `tessera.platform.contracts.annotations`.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tessera.annotations.projects.schemas import CountLink, Link, Storage
from tessera.annotations.status import Status
from tessera.annotations.users.schemas import BasicUser

Stage = Literal["annotation", "validation", "acceptance"]
State = Literal["new", "in progress", "completed", "rejected"]


class JobUpdate(BaseModel):
    """A partial update of a job (CVAT's field names: `assignee` is a user id)."""

    assignee: int | None = None
    stage: Stage | None = None
    state: State | None = None


class Job(BaseModel):
    """A job as read."""

    url: str
    id: int
    task_id: int
    task_name: str
    project_id: int | None
    project_name: str | None
    assignee: BasicUser | None
    assignee_updated_date: datetime | None
    guide_id: int | None = None
    dimension: str
    mode: str
    media_type: str | None = Field(exclude_if=lambda value: value is None)
    bug_tracker: str | None
    status: Status
    stage: Stage
    state: State
    type: str
    frame_count: int
    start_frame: int
    stop_frame: int
    data_chunk_size: int | None
    data_compressed_chunk_type: str | None
    data_original_chunk_type: str | None
    created_date: datetime
    updated_date: datetime
    organization: int | None
    target_storage: Storage | None
    source_storage: Storage | None
    parent_job_id: int | None = None
    replicas_count: int = 0
    issues: CountLink
    labels: Link
