"""The annotations service's internal API (`/api/internal/...`), as other services use it.

- `GET /api/internal/tasks/{task_id}/access` -> `TaskAccess`,
  `GET /api/internal/jobs/{job_id}/access` -> `JobAccess`,
  `GET /api/internal/context` -> `CallerContext`: asked with the caller's own token and
  organization context (`X-Organization`, `?org=`, `?org_id=`), answered as the
  annotations service decides for that caller (401, 403, 404 otherwise).
- `GET /api/{projects|tasks|jobs}/{id}` (the public read, asked the same way) ->
  `DefaultStorages`: where the object's exports go and its imports come from when a
  request names no `location`.
- `POST /api/internal/tasks/{task_id}/segments` with `SegmentsCreate` -> `SegmentsCreated`
  (201 when made, 200 when the same segments were asked before, 409 for other ones):
  administrators only (the ingest service's token).
- `GET /api/internal/tasks/{task_id}/snapshot` and `GET /api/internal/jobs/{job_id}/snapshot`
  (administrators only: the export service's token): a task's or a job's annotations as
  one consistent snapshot, streamed as `application/x-ndjson`, one JSON object a line:

      {"header": SnapshotHeader}
      {"tag": {...}, "job_id": 7}       # tags and shapes by frame, tracks by their
      {"shape": {...}, "job_id": 7}     # first frame; on one frame tags, then shapes,
      {"track": {...}, "job_id": 8}     # then tracks
      ...
      {"end": SnapshotEnd}              # the objects' counts: the stream is complete

  Each object is the one `GET /api/{tasks|jobs}/{id}/annotations` returns, as stored
  (a shape's skeleton elements inside it, a track's keyframes and elements inside it),
  tagged with the job that holds it. A task's snapshot carries the objects of every
  annotation job of the task, unmerged: on the frames that overlapping jobs share, an
  object held by several jobs comes once per job (with each job's `job_id`), and a
  track that crosses into an overlap comes once per job, as each job stores its part.
  The reader merges them (`tessera.geometry.merge.merge_segments`, as the task's GET
  does). A stream that fails after its header ends with `{"error": SnapshotError}`
  instead of the `end` line; one cut short has neither: only the `end` line (with
  counts that match the lines read) says that the snapshot is complete.
  With `?frame=N` (a task frame), the snapshot of what may show on that frame (the
  export service's render of one frame): the header lists only the jobs that hold the
  frame (its `version` theirs), and the objects are that frame's tags and shapes and
  every track that may be visible on it (begun by then and not ended before it by an
  outside keyframe), whole, for the reader to interpolate.

- `GET /api/internal/tasks/{task_id}/import-target` and
  `GET /api/internal/jobs/{job_id}/import-target` -> `ImportTarget` (administrators only:
  the export service's token): what an importer matches a file against (the labels, the
  task's dimension and size, the jobs and the annotations' version).
- `POST /api/internal/tasks/{task_id}/annotations/import?action=replace|append` and
  `POST /api/internal/jobs/{job_id}/annotations/import?action=...` (administrators only:
  the export service's token) with CVAT's LabeledData JSON (`{"version"?, "tags",
  "shapes", "tracks"}`, as `PUT /api/{tasks|jobs}/{id}/annotations` takes it) ->
  `ImportWritten`. `replace` (the default, as CVAT's import) is that PUT: every
  annotation of the task's annotation jobs (or of the job) is deleted and the document
  stored; `append` is `PATCH ?action=create`. All or nothing, with the PUT's validation
  (422 naming the fields), `version` check (409) and `annotations.changed` events. The
  write is attributed to the user whose id the `Tessera-Actor` header carries
  (`tessera.platform.bus.ACTOR_HEADER`: the user who asked for the import), not to the
  service account; without the header, to the caller. No limit on the body's size.

The role rules (`can_see_whole_organization`, `can_manage_organization`) are the
annotations service's; other services read them off a `CallerContext` rather than
restate them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

PREFIX = "/api/internal"
TASK_ACCESS_PATH = "/tasks/{task_id}/access"
JOB_ACCESS_PATH = "/jobs/{job_id}/access"
PROJECT_ACCESS_PATH = "/projects/{project_id}/access"
CONTEXT_PATH = "/context"
SEGMENTS_PATH = "/tasks/{task_id}/segments"
TASK_SNAPSHOT_PATH = "/tasks/{task_id}/snapshot"
JOB_SNAPSHOT_PATH = "/jobs/{job_id}/snapshot"
SNAPSHOT_MEDIA_TYPE = "application/x-ndjson"
TASK_IMPORT_TARGET_PATH = "/tasks/{task_id}/import-target"
JOB_IMPORT_TARGET_PATH = "/jobs/{job_id}/import-target"
TASK_IMPORT_PATH = "/tasks/{task_id}/annotations/import"
JOB_IMPORT_PATH = "/jobs/{job_id}/annotations/import"

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
    """A job the caller sees, the task frames it covers, and whether they may change its
    annotations."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    task_id: int
    start_frame: int
    stop_frame: int
    frames: list[int] | None
    can_change: bool = False

    def task_frames(self) -> list[int]:
        """The task frames of the job, in order."""
        if self.frames is not None:
            return list(self.frames)
        return list(range(self.start_frame, self.stop_frame + 1))


class ProjectAccess(BaseModel):
    """A project the caller sees, with its tasks (by id) and their dimension."""

    model_config = ConfigDict(frozen=True)

    project_id: int
    name: str
    bug_tracker: str = ""
    organization_id: int | None
    owner_id: int | None
    dimension: Literal["2d", "3d"]
    task_ids: list[int]
    can_change: bool = False
    """Whether the caller may change the project (and import a dataset into it): its
    owner or assignee, an organization's maintainer or owner, an administrator."""


class DefaultStorage(BaseModel):
    """A project's or task's default storage of datasets (CVAT's `Storage`): the local
    files of the caller (`local`: a download or an upload) or a cloud storage."""

    model_config = ConfigDict(frozen=True)

    location: Literal["local", "cloud_storage"]
    cloud_storage_id: int | None = None


class DefaultStorages(BaseModel):
    """Where a project's or task's exports and backups go (`target_storage`) and its
    imports come from (`source_storage`) when a request names no `location`, as the
    public `GET /api/{projects|tasks|jobs}/{id}` answers them (a job's are its task's;
    the read's other fields are ignored). None: no default storage, that is local."""

    model_config = ConfigDict(frozen=True)

    target_storage: DefaultStorage | None = None
    source_storage: DefaultStorage | None = None


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


# -- snapshots (export) -----------------------------------------------------------------

SnapshotKind = Literal["tag", "shape", "track"]
SNAPSHOT_KINDS: tuple[SnapshotKind, ...] = ("tag", "shape", "track")


class SnapshotAttribute(BaseModel):
    """An attribute specification of a label."""

    id: int
    name: str
    input_type: str
    mutable: bool
    values: list[str]
    default_value: str


class SnapshotLabel(BaseModel):
    """A label with its attribute specifications; a skeleton with its `sublabels` (its
    points, each a label with `parent_id` set) and its graph (`svg`)."""

    id: int
    name: str
    color: str
    type: str
    attributes: list[SnapshotAttribute]
    svg: str = ""
    sublabels: list[SnapshotLabel] = Field(default_factory=list)
    parent_id: int | None = None


class SnapshotJob(BaseModel):
    """A job whose objects the snapshot carries: its type, frames, version and CVAT's
    derived `status` (`annotation`, `validation` or `completed`)."""

    id: int
    type: str
    start_frame: int
    stop_frame: int
    frames: list[int] | None
    version: int
    status: str = "annotation"

    def task_frames(self) -> list[int]:
        """The task frames of the job, in order."""
        if self.frames is not None:
            return list(self.frames)
        return list(range(self.start_frame, self.stop_frame + 1))


class SnapshotTask(BaseModel):
    """The task, as the snapshot saw it: its fields, owner, project and data options."""

    id: int
    name: str
    status: str
    mode: str
    dimension: str
    media_type: str | None
    size: int
    subset: str
    bug_tracker: str
    project_id: int | None
    project_name: str | None
    organization_id: int | None
    owner: str | None = Field(description="The owner's username.")
    assignee: str | None = Field(description="The assignee's username.")
    segment_size: int
    overlap: int | None
    image_quality: int
    start_frame: int
    stop_frame: int | None
    frame_filter: str
    data_chunk_size: int | None
    compressed_chunk_type: str | None
    original_chunk_type: str | None
    created_date: datetime
    updated_date: datetime


class SnapshotHeader(BaseModel):
    """The first line of a snapshot: the task, its labels (the project's for a task in a
    project) and the jobs whose objects follow (a task's annotation jobs in order of
    their start frame, or the one job asked for). `version` is the annotations' version
    as their GET answers it (a job's; for a task, the sum of its annotation jobs')."""

    scope: Literal["task", "job"]
    version: int
    task: SnapshotTask
    labels: list[SnapshotLabel]
    jobs: list[SnapshotJob]


class SnapshotEnd(BaseModel):
    """The last line of a complete snapshot: how many objects of each kind came."""

    tags: Count
    shapes: Count
    tracks: Count


class SnapshotError(BaseModel):
    """The last line of a snapshot that failed after its header."""

    detail: str


# -- imports (export) -------------------------------------------------------------------

ImportAction = Literal["replace", "append"]
"""`replace`: delete the target's annotations, then store the document (CVAT's import);
`append`: add the document to them."""


class ImportTarget(BaseModel):
    """What an importer matches a file against: the task's labels (the project's for a
    task in a project), dimension and size, the jobs the import writes to (a task's
    annotation jobs in order of their start frame, or the one job asked for) and the
    annotations' `version` as their GET answers it (a job's; for a task, the sum of its
    annotation jobs')."""

    scope: Literal["task", "job"]
    task_id: int
    project_id: int | None
    dimension: Literal["2d", "3d"]
    size: int
    version: int
    labels: list[SnapshotLabel]
    jobs: list[SnapshotJob]


class ImportWritten(BaseModel):
    """What an import stored: the document's top-level objects of each kind (each once,
    however many overlapping jobs hold it), the top-level objects it deleted first
    (`replace`), and the annotations' new version (as `ImportTarget.version`)."""

    tags: Count
    shapes: Count
    tracks: Count
    deleted: Count
    version: int
