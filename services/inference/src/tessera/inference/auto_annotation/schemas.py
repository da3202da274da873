"""What CVAT's auto-annotation request endpoints take and answer, as CVAT 2.80's server
does (cvat-sdk 2.80's `FunctionCallRequest`, `FunctionCall` and `FunctionCallParams`).

- `POST /api/lambda/requests`: `FunctionCallRequest` in, `FunctionCall` out (200, as
  CVAT answers, not 202).
- `GET /api/lambda/requests` (a JSON list, not a page, as CVAT's) and
  `GET /api/lambda/requests/{id}`: `FunctionCall`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from tessera.inference.detectors.detection import ShapeType
from tessera.inference.functions.schemas import LabelMappingEntry


class FunctionCallRequest(BaseModel):
    """A request to annotate a task (or one of its jobs) with a detector function.

    `task` is required, as in CVAT (a job's task, when `job` is given). `threshold` is the
    least confidence kept (the function's own when absent or 0). `mapping` says which
    task label each model label goes to (by default: the task's label of the same name).
    `cleanup` deletes the task's (the job's) annotations before the first shapes are
    written; otherwise the shapes are added to them. `conv_mask_to_poly` turns masks into
    polygons (`convMaskToPoly`, CVAT's deprecated spelling, is read too).

    Beyond CVAT: `shape_type`, as for online calls (the text detector's `rectangle` or
    `polygon`). CVAT's `max_distance` (re-identification) and `roi` are taken and not used
    (CVAT's server does not use `roi` for requests either).
    """

    model_config = ConfigDict(extra="ignore")

    function: str = Field(min_length=1)
    task: int = Field(ge=1)
    job: int | None = Field(default=None, ge=1)
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


class FunctionCallParams(BaseModel):
    """What a request runs: the function, its threshold, the task and (only when given)
    the job."""

    id: str | None
    threshold: float | None
    task: int | None
    job: int | None = None

    @model_serializer
    def _without_absent_job(self) -> dict[str, Any]:
        # CVAT leaves `job` out rather than sending null (cvat-sdk's type is not nullable).
        data: dict[str, Any] = {"id": self.id, "threshold": self.threshold, "task": self.task}
        if self.job is not None:
            data["job"] = self.job
        return data


class FunctionCall(BaseModel):
    """An auto-annotation request as CVAT reports it: `status` (queued, started,
    finished, failed), `progress` in whole percent (0..100), when it was queued, started
    and ended, and `exc_info`: why it failed (a cancelled request is failed, saying who
    cancelled it)."""

    id: str
    function: FunctionCallParams
    status: str | None
    progress: int | None
    enqueued: datetime | None
    started: datetime | None
    ended: datetime | None
    exc_info: str | None
