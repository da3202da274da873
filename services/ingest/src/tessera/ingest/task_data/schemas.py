"""The data request of a task (CVAT's `DataRequest`), and what ingest answers."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tessera.platform.contracts.annotations import ImageQuality

SortingMethod = Literal["lexicographical", "natural", "predefined", "random"]
_STEP = re.compile(r"^step\s*=\s*([1-9]\d*)$")


class DataRequest(BaseModel):
    """Where a task's media comes from and how it is cut (the body of Upload-Finish).

    Files come from earlier uploads (Upload-Multiple or TUS), from `server_files` on
    the connected share (or, with `cloud_storage_id`, keys and folders of that cloud
    storage's bucket), or from `remote_files` URLs. `stop_frame` 0 means "to the end",
    as in CVAT.
    """

    model_config = ConfigDict(extra="ignore")

    image_quality: ImageQuality
    chunk_size: int | None = Field(default=None, ge=1, le=10_000)
    start_frame: int = Field(default=0, ge=0)
    stop_frame: int = Field(default=0, ge=0)
    frame_filter: str = Field(default="", max_length=256)
    server_files: list[str] = Field(default_factory=list)
    remote_files: list[str] = Field(default_factory=list)
    server_files_exclude: list[str] = Field(default_factory=list)
    use_zip_chunks: bool = False
    use_cache: bool = False
    copy_data: bool = False
    sorting_method: SortingMethod = "lexicographical"
    upload_file_order: list[str] = Field(default_factory=list)
    cloud_storage_id: int | None = None
    filename_pattern: str | None = Field(default=None, min_length=1)
    storage_method: Literal["cache", "file_system"] | None = None
    job_file_mapping: list[list[str]] | None = None
    validation_params: dict[str, object] | None = None

    @field_validator("frame_filter")
    @classmethod
    def _step_only(cls, value: str) -> str:
        """Empty, or `step=N` written as the task stores it (`step = 3` is `step=3`)."""
        if not value.strip():
            return ""
        match = _STEP.match(value.strip())
        if match is None:
            raise ValueError("must be empty or 'step=N' with N >= 1")
        return f"step={match.group(1)}"

    @field_validator("job_file_mapping")
    @classmethod
    def _no_mapping(cls, value: list[list[str]] | None) -> list[list[str]] | None:
        if value:
            raise ValueError("jobs from an explicit file mapping are not supported yet")
        return value

    @field_validator("validation_params")
    @classmethod
    def _no_validation(cls, value: dict[str, object] | None) -> dict[str, object] | None:
        if value:
            raise ValueError("ground-truth validation frames are not supported yet")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DataRequest:
        if self.stop_frame and self.stop_frame < self.start_frame:
            raise ValueError("stop_frame must not be less than start_frame")
        if self.cloud_storage_id is not None and not self.server_files:
            raise ValueError("cloud_storage_id needs server_files: the bucket's keys or folders")
        if self.upload_file_order and self.sorting_method != "predefined":
            raise ValueError("upload_file_order is only for sorting_method 'predefined'")
        return self

    @property
    def step(self) -> int:
        """The frame step of `frame_filter` (1 when empty)."""
        match = _STEP.match(self.frame_filter)
        return int(match.group(1)) if match else 1


class DataResponse(BaseModel):
    """The `202` answer to a data request."""

    rq_id: str
