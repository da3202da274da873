"""Typed resources of Tessera's API, as the server answers them (CVAT 2.80's field names).

Each model holds the fields users need; `extra="allow"` keeps every other field the
server sends (`model.model_extra`, and `model_dump()` includes them), so a newer server
does not break an older client. `tests/test_models_openapi.py` checks every field here
against the server's merged OpenAPI document, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Resource(BaseModel):
    """What every answered resource shares: unknown fields pass through."""

    model_config = ConfigDict(extra="allow")


T = TypeVar("T", bound=Resource)


class Page(Resource, Generic[T]):
    """One page of a list (`?page=&page_size=`): `next` is the URL of the following page."""

    count: int
    next: str | None = None
    previous: str | None = None
    results: list[T]


class BasicUser(Resource):
    """A user as other resources name them (owner, assignee)."""

    id: int
    username: str
    first_name: str = ""
    last_name: str = ""


class User(BasicUser):
    """A user's profile (`/api/users/self`)."""

    email: str = ""
    is_staff: bool = False
    is_superuser: bool = False
    is_active: bool = True


class About(Resource):
    """`/api/server/about`: `version` is the CVAT API version served, `tessera_version`
    Tessera's own."""

    name: str
    version: str
    tessera_version: str | None = None


class Link(Resource):
    """A link to a related list."""

    url: str


class CountLink(Link):
    """A link to a related list, with its size."""

    count: int


class JobsSummary(CountLink):
    """A task's jobs: how many, how many completed and in validation."""

    completed: int = 0
    validation: int = 0


class Storage(Resource):
    """Where a resource's imports or exports go by default."""

    location: str
    cloud_storage_id: int | None = None


class Project(Resource):
    """A project (`/api/projects/{id}`)."""

    id: int
    url: str
    name: str
    owner: BasicUser | None = None
    assignee: BasicUser | None = None
    status: str
    bug_tracker: str = ""
    organization: int | None = None
    dimension: str | None = None
    created_date: datetime
    updated_date: datetime
    tasks: CountLink
    labels: Link


class Task(Resource):
    """A task (`/api/tasks/{id}`): `size` is its number of frames once its media is in."""

    id: int
    url: str
    name: str
    project_id: int | None = None
    owner: BasicUser | None = None
    assignee: BasicUser | None = None
    status: str
    mode: str = ""
    dimension: str = "2d"
    size: int = 0
    segment_size: int = 0
    overlap: int | None = None
    image_quality: int = 70
    data_chunk_size: int | None = None
    start_frame: int = 0
    stop_frame: int | None = None
    frame_filter: str = ""
    subset: str = ""
    organization: int | None = None
    created_date: datetime
    updated_date: datetime
    jobs: JobsSummary
    labels: Link


class Job(Resource):
    """A job (`/api/jobs/{id}`): a segment of a task's frames, with its stage and state."""

    id: int
    url: str
    task_id: int
    project_id: int | None = None
    assignee: BasicUser | None = None
    stage: str
    state: str
    status: str
    type: str = "annotation"
    frame_count: int = 0
    start_frame: int
    stop_frame: int
    created_date: datetime
    updated_date: datetime


class Attribute(Resource):
    """An attribute of a label."""

    id: int | None = None
    name: str
    input_type: str
    mutable: bool = False
    values: list[str] = Field(default_factory=list)
    default_value: str = ""


class Label(Resource):
    """A label of a project or task (`/api/labels/{id}`)."""

    id: int
    name: str
    color: str = ""
    type: str = "any"
    attributes: list[Attribute] = Field(default_factory=list)
    project_id: int | None = None
    task_id: int | None = None
    parent_id: int | None = None


class LabelSpec(BaseModel):
    """A label to create (CVAT's `LabelRequest`): other CVAT fields (`svg`, `sublabels`)
    pass through."""

    model_config = ConfigDict(extra="allow")

    name: str
    type: str = "any"
    color: str | None = None
    attributes: list[dict[str, Any]] = Field(default_factory=list)


class Operation(Resource):
    """What a background request does: `type` such as `export:dataset`, its target."""

    type: str
    target: str
    project_id: int | None = None
    task_id: int | None = None
    job_id: int | None = None
    format: str | None = None
    function_id: str | None = None


class RequestOwner(Resource):
    """Who started a request."""

    id: int
    username: str | None = None


class Request(Resource):
    """A background request (`/api/requests/{rq_id}`): `status` queued, started, finished
    or failed; `progress` a fraction in [0, 1]; `result_url` to download, `result_id` the
    object made (a restored task)."""

    id: str
    status: str
    message: str = ""
    progress: float | None = None
    operation: Operation
    owner: RequestOwner | None = None
    created_date: datetime
    started_date: datetime | None = None
    finished_date: datetime | None = None
    expiry_date: datetime | None = None
    result_url: str | None = None
    result_id: int | None = None

    @property
    def ended(self) -> bool:
        """Finished or failed."""
        return self.status in ("finished", "failed")


class RequestCreated(Resource):
    """The `202` answer of a request that started background work."""

    rq_id: str


class CloudStorage(Resource):
    """A cloud storage (`/api/cloudstorages/{id}`): a bucket (`resource`) and its keys."""

    id: int
    provider_type: str
    resource: str
    display_name: str
    credentials_type: str
    specific_attributes: str = ""
    description: str = ""
    manifests: list[str] = Field(default_factory=list)
    organization: int | None = None
    created_date: datetime
    updated_date: datetime


class CloudEntry(Resource):
    """One entry of a cloud storage folder: `type` REG (an object) or DIR (a folder)."""

    name: str
    type: str
    mime_type: str = ""


class CloudContent(Resource):
    """A page of a cloud storage folder (`content-v2`); `next` is the next page's token."""

    content: list[CloudEntry]
    next: str | None = None


class FrameMeta(Resource):
    """One frame of a task's media."""

    name: str
    width: int
    height: int
    related_files: int = 0


class DataMeta(Resource):
    """A task's media (`/api/tasks/{id}/data/meta`)."""

    size: int
    image_quality: int
    chunk_size: int
    start_frame: int
    stop_frame: int
    frame_filter: str = ""
    frames: list[FrameMeta] = Field(default_factory=list)
    deleted_frames: list[int] = Field(default_factory=list)
    storage: str = ""
    cloud_storage_id: int | None = None


class FormatInfo(Resource):
    """An importer or exporter (`/api/server/annotation/formats`)."""

    name: str
    ext: str
    version: str
    enabled: bool = True
    dimension: str = "2D"


class Formats(Resource):
    """What the server imports and exports."""

    importers: list[FormatInfo]
    exporters: list[FormatInfo]


class FunctionCallParams(Resource):
    """What an auto-annotation request runs: the function, its threshold, and where: a
    task (one of its jobs, as CVAT), or beyond CVAT a project (`task` None), some jobs
    or some frames."""

    id: str | None = None
    threshold: float | None = None
    task: int | None = None
    job: int | None = None
    project: int | None = None
    jobs: list[int] | None = None
    frames: list[int] | None = None


class FunctionCall(Resource):
    """An auto-annotation request (`/api/lambda/requests/{id}`), as CVAT reports it:
    `progress` in whole percent, `exc_info` why it failed. Its `id` is also a request id
    (`/api/requests/{id}`)."""

    id: str
    function: FunctionCallParams
    status: str | None = None
    progress: int | None = None
    enqueued: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    exc_info: str | None = None


class Function(Resource):
    """An AI function (`/api/lambda/functions`): `kind` detector, interactor or tracker."""

    id: str
    kind: str
    name: str = ""
    description: str = ""


class Shape(Resource):
    """A shape as the annotations endpoints give it (`/api/tasks/{id}/annotations`):
    `points` flat (x1, y1, x2, y2... in pixels), `source` manual, semi-auto, auto, file or
    consensus, `score` the model's confidence (1 for people's shapes). `id` is None only
    in a shape not yet written."""

    id: int | None = None
    type: str
    frame: int
    label_id: int
    points: list[float] = []
    source: str = "manual"
    score: float = 1.0
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    rotation: float = 0.0
    group: int | None = None
    attributes: list[dict[str, Any]] = []
    elements: list[dict[str, Any]] = []


class ReviewShape(Shape):
    """A shape of the review list (`/api/tasks/{id}/annotations/shapes`), with the job
    it is stored in."""

    job_id: int


class Annotations(Resource):
    """A task's (job's) annotations (`GET /api/tasks/{id}/annotations`), or what a
    PATCH of them answers: the `version`, and the tags, shapes and tracks."""

    version: int = 0
    tags: list[dict[str, Any]] = []
    shapes: list[Shape] = []
    tracks: list[dict[str, Any]] = []
