"""Schemas of `/api/jobs` (CVAT's JobRead, PatchedJobWriteRequest) and of the segments
request by which the ingest service turns a task's media into jobs."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from tessera.annotations.projects.schemas import CountLink, Link, Storage
from tessera.annotations.status import Status
from tessera.annotations.tasks.schemas import Count, Frame, FrameFilter, ImageQuality
from tessera.annotations.users.schemas import BasicUser

Stage = Literal["annotation", "validation", "acceptance"]
State = Literal["new", "in progress", "completed", "rejected"]
ChunkType = Literal["video", "imageset"]


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
