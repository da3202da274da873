"""The ingest service's API as other services use it: a task's frames and their media.

The export service reads `GET /api/tasks/{id}/data/meta` (frame names and sizes, deleted
frames) and, to put images into an archive, `GET /api/tasks/{id}/data?type=frame&
quality=original`, with the service token: CVAT's public endpoints, answered with the
models here. It checks that a caller sees a cloud storage with `GET /api/cloudstorages/{id}`
(the caller's own credentials) and writes an archive into it with the internal
`PUT /api/internal/cloudstorages/{id}/objects?key=` (the service token; the body is the
object), so that the storage's credentials never leave ingest.
"""

from __future__ import annotations

from pydantic import BaseModel

TASK_META_PATH = "/api/tasks/{task_id}/data/meta"
TASK_DATA_PATH = "/api/tasks/{task_id}/data"
VIDEO_FRAME_NAME = "frame_{:06d}"
"""The name CVAT gives frame N of a video task (its exports' file names)."""


class FrameMeta(BaseModel):
    """One frame of `data/meta` (for video, the video itself)."""

    width: int
    height: int
    name: str
    related_files: int
    has_related_context: bool


class DataMeta(BaseModel):
    """`GET /api/{tasks|jobs}/{id}/data/meta`: CVAT's `DataMetaRead`."""

    chunks_updated_date: str
    chunk_size: int
    size: int
    image_quality: int
    start_frame: int
    stop_frame: int
    frame_filter: str
    frames: list[FrameMeta]
    deleted_frames: list[int]
    included_frames: list[int] | None
    storage: str
    cloud_storage_id: int | None
    chapters: None = None

    def frame_sizes(self) -> list[FrameMeta]:
        """Each task frame's name and size, by task frame number: a video's one entry
        stands for all its frames, named as CVAT names them (`frame_000000`, ...)."""
        if len(self.frames) == self.size:
            return list(self.frames)
        if len(self.frames) != 1:
            raise ValueError(f"data meta lists {len(self.frames)} frames for {self.size}")
        video = self.frames[0]
        return [
            video.model_copy(update={"name": VIDEO_FRAME_NAME.format(index)})
            for index in range(self.size)
        ]


CLOUD_OBJECT_PATH = "/api/internal/cloudstorages/{storage_id}/objects"
CLOUD_STORAGE_PATH = "/api/cloudstorages/{storage_id}"


class CloudObjectWritten(BaseModel):
    """`PUT /api/internal/cloudstorages/{id}/objects?key=`: what was written where."""

    storage_id: int
    key: str
    size: int
