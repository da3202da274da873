"""The annotations service's internal API (`/api/internal/...`), as other services use it.

- `GET /api/internal/tasks/{task_id}/access` -> `TaskAccess`,
  `GET /api/internal/jobs/{job_id}/access` -> `JobAccess`,
  `GET /api/internal/context` -> `CallerContext`: asked with the caller's own token and
  organization context (`X-Organization`, `?org=`, `?org_id=`), answered as the
  annotations service decides for that caller (401, 403, 404 otherwise).
- `POST /api/internal/tasks/{task_id}/segments` with `SegmentsCreate` -> `SegmentsCreated`
  (201 when made, 200 when the same segments were asked before, 409 for other ones):
  administrators only (the ingest service's token).

The role rules (`can_see_whole_organization`, `can_manage_organization`) are the
annotations service's; other services read them off a `CallerContext` rather than
restate them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

PREFIX = "/api/internal"
TASK_ACCESS_PATH = "/tasks/{task_id}/access"
JOB_ACCESS_PATH = "/jobs/{job_id}/access"
CONTEXT_PATH = "/context"
SEGMENTS_PATH = "/tasks/{task_id}/segments"

FrameFilter = Annotated[
    str, Field(pattern=r"^(step=[1-9][0-9]*)?$", description='Empty, or "step=N" (N >= 1).')
]
ImageQuality = Annotated[int, Field(ge=5, le=100)]
Frame = Annotated[int, Field(ge=0, le=2**31 - 1)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
ChunkType = Literal["video", "imageset"]


class Role(StrEnum):
    """Membership roles in an organization, from most to least privileged."""

    OWNER = "owner"
    MAINTAINER = "maintainer"
    SUPERVISOR = "supervisor"
    WORKER = "worker"


def can_see_whole_organization(is_admin: bool, role: Role | None) -> bool:
    """Administrators, and owners, maintainers and supervisors of the organization, see
    every object of it."""
    return is_admin or role in (Role.OWNER, Role.MAINTAINER, Role.SUPERVISOR)


def can_manage_organization(is_admin: bool, role: Role | None) -> bool:
    """Administrators, and owners and maintainers of the organization, change any object
    of it."""
    return is_admin or role in (Role.OWNER, Role.MAINTAINER)


class TaskAccess(BaseModel):
    """A task the caller sees, the facts ingest needs about it, and whether they may change it."""

    model_config = ConfigDict(frozen=True)

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

    model_config = ConfigDict(frozen=True)

    job_id: int
    task_id: int
    start_frame: int
    stop_frame: int
    frames: list[int] | None

    def task_frames(self) -> list[int]:
        """The task frames of the job, in order."""
        if self.frames is not None:
            return list(self.frames)
        return list(range(self.start_frame, self.stop_frame + 1))


class CallerContext(BaseModel):
    """The caller and the organization their request acts in (None: their personal
    workspace), with their role there."""

    model_config = ConfigDict(frozen=True)

    user_id: int
    username: str
    is_admin: bool
    organization_id: int | None
    role: Role | None

    @property
    def sees_whole_organization(self) -> bool:
        """Whether the caller sees every object of the organization."""
        return can_see_whole_organization(self.is_admin, self.role)

    @property
    def manages_organization(self) -> bool:
        """Whether the caller may change any object of the organization."""
        return can_manage_organization(self.is_admin, self.role)


class Segment(BaseModel):
    """A range of task frames (0-based, inclusive); `frames` when only some of them."""

    start_frame: Frame
    stop_frame: Frame
    frames: list[Frame] | None = None

    @field_validator("stop_frame")
    @classmethod
    def _stop_after_start(cls, stop: int, info: ValidationInfo) -> int:
        start = info.data.get("start_frame")
        if start is not None and stop < start:
            raise ValueError("must not be less than start_frame")
        return stop

    @field_validator("frames")
    @classmethod
    def _frames_in_range(cls, frames: list[int] | None, info: ValidationInfo) -> list[int] | None:
        start, stop = info.data.get("start_frame"), info.data.get("stop_frame")
        if frames is None or start is None or stop is None:
            return frames
        if not frames or frames != sorted(set(frames)):
            raise ValueError("must be distinct frames in increasing order")
        if frames[0] < start or frames[-1] > stop:
            raise ValueError("must lie between start_frame and stop_frame")
        return frames


class SegmentsCreate(BaseModel):
    """What ingest knows once a task's media is prepared: its size, kind, chunks, segments.

    `image_quality`, `start_frame`, `stop_frame` and `frame_filter`, when given, record
    the data options ingest applied; `segment_size` and `overlap`, when given, the ones it
    cut the segments with (as CVAT does, the task shows these from then on: a segment size
    of 0 becomes the task size, the overlap is clamped to half a segment).
    """

    size: int = Field(ge=1, le=2**31 - 1, description="Frames in the task.")
    media_type: Literal["image", "video"]
    dimension: Literal["2d", "3d"] = "2d"
    chunk_size: int = Field(ge=1, le=2**31 - 1)
    compressed_chunk_type: ChunkType = "imageset"
    original_chunk_type: ChunkType = "imageset"
    image_quality: ImageQuality | None = None
    start_frame: Frame | None = None
    stop_frame: Frame | None = None
    frame_filter: FrameFilter | None = None
    segment_size: Count | None = Field(default=None, description="Segment size used.")
    overlap: Count | None = Field(default=None, description="Overlap of segments used.")
    segments: list[Segment] = Field(min_length=1)


class CreatedJob(BaseModel):
    """A job made from a segment."""

    id: int
    start_frame: int
    stop_frame: int
    frame_count: int


class SegmentsCreated(BaseModel):
    """The jobs made for a task, in segment order."""

    task_id: int
    jobs: list[CreatedJob]
