"""What CVAT's auto-annotation request endpoints take and answer, as CVAT 2.80's server
does (cvat-sdk 2.80's `FunctionCallRequest`, `FunctionCall` and `FunctionCallParams`),
with a wider scope beyond CVAT.

- `POST /api/lambda/requests`: `FunctionCallRequest` in, `FunctionCall` out (200, as
  CVAT answers, not 202).
- `GET /api/lambda/requests` (a JSON list, not a page, as CVAT's) and
  `GET /api/lambda/requests/{id}`: `FunctionCall`.

Beyond CVAT, a request may cover a whole project (`project` instead of `task`), several
jobs (`jobs`) or some frames of a task (`frames`); the answer's `function` then says so
in members CVAT does not have (`project`, `jobs`, `frames`), which cvat-sdk keeps as
additional properties of its `FunctionCallParams`. A CVAT request (`task`, optionally
`job`) is answered exactly as CVAT answers it: without them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator
from typing_extensions import TypedDict

from tessera.inference.detectors.detection import ShapeType
from tessera.inference.functions.schemas import LabelMappingEntry

JobId = Annotated[int, Field(ge=1)]
FrameNumber = Annotated[int, Field(ge=0)]


class FunctionCallRequest(BaseModel):
    """A request to annotate a task (or some of its jobs or frames), or a project (or
    some of its tasks' jobs), with a detector function.

    One of `task` and `project` is required. `job` (as in CVAT) is one job of `task`;
    `jobs` (beyond CVAT) are jobs of `task`, or of the tasks of `project`; `frames` (beyond
    CVAT) are task frame numbers of `task`, neither deleted nor with `jobs`. `threshold`
    is the least confidence kept (the function's own when absent or 0). `mapping` says
    which task label each model label goes to (by default: the task's label of the same
    name; a project's tasks share its labels). `cleanup` deletes the annotations of the
    task (of each job, of each task of the project) before its first shapes are written;
    otherwise the shapes are added to them. Annotations cannot be deleted frame by frame,
    so `cleanup` does not go with `frames`. `conv_mask_to_poly` turns masks into polygons
    (`convMaskToPoly`, CVAT's deprecated spelling, is read too).

    Beyond CVAT: `shape_type`, as for online calls (the text detector's `rectangle` or
    `polygon`). CVAT's `max_distance` (re-identification) and `roi` are taken and not used
    (CVAT's server does not use `roi` for requests either).
    """

    model_config = ConfigDict(extra="ignore")

    function: str = Field(min_length=1)
    task: int | None = Field(default=None, ge=1)
    job: int | None = Field(default=None, ge=1)
    project: int | None = Field(default=None, ge=1)
    jobs: list[JobId] | None = Field(default=None, min_length=1)
    frames: list[FrameNumber] | None = Field(default=None, min_length=1)
    threshold: float | None = Field(default=None, ge=0, le=1)
    mapping: dict[str, LabelMappingEntry] | None = None
    cleanup: bool = False
    conv_mask_to_poly: bool = False
    max_distance: int | None = None
    shape_type: ShapeType | None = None

    @model_validator(mode="before")
    @classmethod
    def _deprecated_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict) and "convMaskToPoly" in data and "conv_mask_to_poly" not in data:
            return {**data, "conv_mask_to_poly": data["convMaskToPoly"]}
        return data


class FunctionCallParamsJson(TypedDict):
    """`FunctionCallParams` as answered: CVAT's members, then the members a request
    beyond CVAT's has (each only when it has it)."""

    id: str | None
    threshold: float | None
    task: int | None
    job: NotRequired[int]
    project: NotRequired[int]
    jobs: NotRequired[list[int]]
    frames: NotRequired[list[int]]


class FunctionCallParams(BaseModel):
    """What a request runs: the function, its threshold, the task (None for a project's
    request) and, only when given, the job; beyond CVAT, only when given, the project,
    the jobs and the frames."""

    id: str | None
    threshold: float | None
    task: int | None
    job: int | None = None
    project: int | None = None
    jobs: list[int] | None = None
    frames: list[int] | None = None

    @model_serializer
    def _without_absent_members(self) -> FunctionCallParamsJson:
        # CVAT leaves `job` out rather than sending null (cvat-sdk's type is not nullable);
        # the members beyond CVAT are left out likewise.
        data: FunctionCallParamsJson = {"id": self.id, "threshold": self.threshold,
                                        "task": self.task}  # fmt: skip
        if self.job is not None:
            data["job"] = self.job
        if self.project is not None:
            data["project"] = self.project
        if self.jobs is not None:
            data["jobs"] = self.jobs
        if self.frames is not None:
            data["frames"] = self.frames
        return data


class FunctionCall(BaseModel):
    """An auto-annotation request as CVAT reports it: `status` (queued, started,
    finished, failed), `progress` in whole percent (0..100) of the frames of every task
    it covers, when it was queued, started and ended, and `exc_info`: why it failed (a
    cancelled request is failed, saying who cancelled it)."""

    id: str
    function: FunctionCallParams
    status: str | None
    progress: int | None
    enqueued: datetime | None
    started: datetime | None
    ended: datetime | None
    exc_info: str | None
