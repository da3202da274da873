"""Schemas of `/api/tasks` (CVAT's TaskRead and TaskWriteRequest, plus the data options).

The data options (`image_quality`, `start_frame`, `stop_frame`, `frame_filter`,
`segment_size`, `overlap`) may be set when the task is created or changed until media is
attached; the ingest service reads them when it makes the task's chunks and segments.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator

from tessera.annotations.labels.schemas import LabelRequest
from tessera.annotations.projects.schemas import (
    Link,
    ObjectName,
    Storage,
    UrlOrEmpty,
    WithStorages,
)
from tessera.annotations.users.schemas import BasicUser
from tessera.platform.contracts.annotations import Count, Frame, FrameFilter, ImageQuality

Subset = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]


def _stop_after_start(stop: int | None, info: ValidationInfo) -> int | None:
    start = info.data.get("start_frame")
    if stop is not None and start is not None and stop < start:
        raise ValueError("must not be less than start_frame")
    return stop


class TaskCreate(WithStorages):
    """A new task: in a project (which gives it its labels) or with its own labels."""

    name: ObjectName
    project_id: int | None = None
    owner_id: int | None = None
    assignee_id: int | None = None
    bug_tracker: UrlOrEmpty = ""
    dataset_repository: UrlOrEmpty = ""
    subset: Subset = ""
    labels: list[LabelRequest] = Field(default_factory=list)
    segment_size: Count = 0
    overlap: Count | None = None
    image_quality: ImageQuality = 70
    start_frame: Frame = 0
    stop_frame: Frame | None = None
    frame_filter: FrameFilter = ""

    _stop = field_validator("stop_frame")(_stop_after_start)


class TaskUpdate(WithStorages):
    """A partial update of a task; `labels` are merged into the task's own labels."""

    name: ObjectName | None = None
    project_id: int | None = None
    owner_id: int | None = None
    assignee_id: int | None = None
    bug_tracker: UrlOrEmpty | None = None
    dataset_repository: UrlOrEmpty | None = None
    subset: Subset | None = None
    labels: list[LabelRequest] = Field(default_factory=list)
    segment_size: Count | None = None
    overlap: Count | None = None
    image_quality: ImageQuality | None = None
    start_frame: Frame | None = None
    stop_frame: Frame | None = None
    frame_filter: FrameFilter | None = None

    _stop = field_validator("stop_frame")(_stop_after_start)


class JobsSummary(BaseModel):
    """The jobs of a task, counted."""

    count: int
    completed: int
    validation: int
    url: str


class Task(BaseModel):
    """A task as read (CVAT's fields, plus `dataset_repository` and the data options)."""

    url: str
    id: int
    name: str
    project_id: int | None
    project_name: str | None
    owner: BasicUser | None
    assignee: BasicUser | None
    assignee_updated_date: datetime | None
    bug_tracker: str
    dataset_repository: str
    created_date: datetime
    updated_date: datetime
    overlap: int | None
    segment_size: int
    status: Literal["annotation", "validation", "completed"]
    size: int
    mode: str
    dimension: str
    media_type: str | None = Field(exclude_if=lambda value: value is None)
    data: int | None
    data_chunk_size: int | None
    data_compressed_chunk_type: str | None
    data_original_chunk_type: str | None
    data_cloud_storage_id: int | None = None
    image_quality: int
    start_frame: int
    stop_frame: int | None
    frame_filter: str
    subset: str
    guide_id: int | None = None
    validation_mode: str | None = None
    organization: int | None
    organization_id: int | None
    target_storage: Storage | None
    source_storage: Storage | None
    jobs: JobsSummary
    labels: Link
