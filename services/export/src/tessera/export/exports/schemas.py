"""What an export request asks for, as CVAT 2.80's clients send it, and what it answers."""

from __future__ import annotations

import hashlib
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict

from tessera.export.backups import BACKUP_FORMAT
from tessera.platform.contracts.ingest import FrameFormat

Target = Literal["project", "task", "job"]
Location = Literal["local", "cloud_storage"]
FrameSelection = Literal["all", "annotated"]
TARGET_PATHS: dict[Target, str] = {"project": "projects", "task": "tasks", "job": "jobs"}


class ExportOptionsIn(BaseModel):
    """Tessera's choices beyond CVAT's: `frames=annotated` leaves out frames with nothing
    on them (cvat#5528); `image_format` and `image_quality` are how a video task's frames
    are saved with `save_images` (PNG by default; JPEG or WebP at a quality of 1..100).
    An image task's images are copied as they are, whatever these say."""

    model_config = ConfigDict(frozen=True)

    frames: FrameSelection = "all"
    image_format: FrameFormat = "png"
    image_quality: int | None = None


class Destination(BaseModel):
    """Where the archive goes besides the download: an object of a cloud storage."""

    model_config = ConfigDict(frozen=True)

    cloud_storage_id: int
    key: str


class ExportParams(BaseModel):
    """One export: what is exported, in which format, with or without images, and where
    the archive goes (downloaded, or also written into a cloud storage). A backup is an
    export in `BACKUP_FORMAT` (`tessera.export.backups`)."""

    model_config = ConfigDict(frozen=True)

    target: Target
    target_id: int
    format: str
    save_images: bool
    options: ExportOptionsIn = ExportOptionsIn()
    destination: Destination | None = None

    @property
    def key(self) -> str:
        """A digest of what the archive holds: equal archives have equal keys."""
        return _digest(self.model_dump(mode="json", exclude={"destination"}))

    @property
    def request_key(self) -> str:
        """A digest of the whole request: the same request has the same key."""
        return _digest(self.model_dump(mode="json"))

    @property
    def backup(self) -> bool:
        """Whether the export is a backup of the task or project."""
        return self.format == BACKUP_FORMAT

    @property
    def operation_type(self) -> str:
        """CVAT's request type: `export:backup` of a backup, else `export:dataset` with
        images and `export:annotations` without."""
        if self.backup:
            return "export:backup"
        return "export:dataset" if self.save_images else "export:annotations"

    def download_path(self, rq_id: str) -> str:
        """The `result_url` path of a finished export."""
        resource = "backup" if self.backup else "dataset"
        path = f"/api/{TARGET_PATHS[self.target]}/{self.target_id}/{resource}/download"
        return f"{path}?rq_id={rq_id}"


def _digest(value: object) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ExportCreated(BaseModel):
    """The `202` answer: the request to poll at `/api/requests/{rq_id}`."""

    rq_id: str
