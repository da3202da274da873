"""The ingest service's API as other services use it: a task's frames and their media.

The export service reads `GET /api/tasks/{id}/data/meta` (frame names and sizes, deleted
frames) and, to put images into an archive, `GET /api/tasks/{id}/data?type=frame&
quality=original`, with the service token: CVAT's public endpoints, answered with the
models here. It checks that a caller sees a cloud storage with `GET /api/cloudstorages/{id}`
(the caller's own credentials) and writes an archive into it with the internal
`PUT /api/internal/cloudstorages/{id}/objects?key=` (the service token; the body is the
object), so that the storage's credentials never leave ingest. A restored backup's deleted
frames are set with CVAT's `PATCH /api/tasks/{id}/data/meta` (`DataMetaWrite`).

To put a video task's frames into an archive, it asks the internal
`POST /api/internal/tasks/{id}/frames` (the service token) for the frames it needs
(`VideoFramesRequest`: inclusive ranges of task frame numbers, an image format and a
quality). Ingest decodes the video once, in order, and answers `200` with a stream of
`VIDEO_FRAMES_MEDIA_TYPE`: for each frame asked, in frame order, a `FRAME_RECORD`
(the task frame number and the byte length of the image, two unsigned 32-bit big-endian
integers) followed by the encoded image. The stream ends after the last frame; a stream
cut short is a failure of ingest.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Sequence
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, ValidationInfo, field_validator

TASK_META_PATH = "/api/tasks/{task_id}/data/meta"
TASK_DATA_PATH = "/api/tasks/{task_id}/data"
VIDEO_FRAME_NAME = "frame_{:06d}"
"""The name CVAT gives frame N of a video task (its exports' file names), N being the
frame's number in the video, not in the task (`DataMeta.source_frame`)."""
_STEP = re.compile(r"step\s*=\s*([1-9]\d*)")


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

    @property
    def frame_step(self) -> int:
        """The step of `frame_filter` (`step=N`), 1 without one (CVAT's
        `Data.get_frame_step`)."""
        found = _STEP.search(self.frame_filter)
        return int(found.group(1)) if found else 1

    def source_frame(self, index: int) -> int:
        """The number in the media of task frame `index`: `start_frame + index * step`
        (CVAT's `abs_frame_id`, the frame number its exports write: a video task cut
        from frame 10 with `step=2` has frames 10, 12, ...). Of a task's data meta; a
        job's gives the job's frames when they are a range."""
        return self.start_frame + index * self.frame_step

    def frame_sizes(self, extension: str = "", *, offset: int = 0) -> list[FrameMeta]:
        """Each task frame's name and size, by task frame number: a video's one entry
        stands for all its frames, named as CVAT names them, by their number in the video
        (`frame_000010`, `frame_000012`, ... for a task from frame 10 with `step=2`; with
        `offset` added, which CVAT adds to a project's later tasks), with `extension`
        appended (the type its frames are saved as, when they are)."""
        if len(self.frames) == self.size:
            return list(self.frames)
        if len(self.frames) != 1:
            raise ValueError(f"data meta lists {len(self.frames)} frames for {self.size}")
        video = self.frames[0]
        return [
            video.model_copy(
                update={
                    "name": VIDEO_FRAME_NAME.format(offset + self.source_frame(index)) + extension
                }
            )
            for index in range(self.size)
        ]


class DataMetaWrite(BaseModel):
    """`PATCH /api/{tasks|jobs}/{id}/data/meta`: CVAT's `DataMetaWriteRequest`, the frames
    to mark deleted (task frame numbers). A task's replace all of its deleted frames; a
    job's, those among the job's frames. The answer is the changed `DataMeta`."""

    deleted_frames: list[Annotated[int, Field(ge=0)]]


CLOUD_OBJECT_PATH = "/api/internal/cloudstorages/{storage_id}/objects"
CLOUD_STORAGE_PATH = "/api/cloudstorages/{storage_id}"


class CloudObjectWritten(BaseModel):
    """`PUT /api/internal/cloudstorages/{id}/objects?key=`: what was written where."""

    storage_id: int
    key: str
    size: int


VIDEO_FRAMES_PATH = "/api/internal/tasks/{task_id}/frames"
VIDEO_FRAMES_MEDIA_TYPE = "application/vnd.tessera.video-frames"
FRAME_RECORD = struct.Struct(">II")
"""What precedes each image of a video frames stream: its task frame number, its length."""

FrameFormat = Literal["png", "jpeg", "webp"]
FRAME_MEDIA_TYPES: dict[FrameFormat, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}
FRAME_EXTENSIONS: dict[FrameFormat, str] = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
DEFAULT_FRAME_QUALITY = 95
"""The quality of JPEG and WebP frames when none is asked for."""


class VideoFramesRequest(BaseModel):
    """`POST /api/internal/tasks/{id}/frames`: which frames of a video task, encoded how.

    `ranges` are inclusive `[first, last]` task frame numbers, increasing and apart (a
    range starts after the previous one's last frame plus one). `quality` (1..100) is
    for JPEG and WebP (`DEFAULT_FRAME_QUALITY` when none is given); PNG takes none.
    """

    ranges: list[tuple[int, int]] = Field(min_length=1)
    format: FrameFormat = "png"
    quality: int | None = Field(default=None, ge=1, le=100)

    @field_validator("ranges")
    @classmethod
    def _ordered(cls, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for first, last in ranges:
            if not 0 <= first <= last:
                raise ValueError(f"[{first}, {last}] is not a range of frame numbers")
        for (_, last), (first, _) in itertools.pairwise(ranges):
            if first <= last + 1:
                raise ValueError(f"a range starting at {first} follows one ending at {last}")
        return ranges

    @field_validator("quality")
    @classmethod
    def _lossy_only(cls, quality: int | None, info: ValidationInfo) -> int | None:
        if quality is not None and info.data.get("format") == "png":
            raise ValueError("png frames take no quality")
        return quality

    @property
    def numbers(self) -> list[int]:
        """Every task frame number asked for, in order."""
        return [number for first, last in self.ranges for number in range(first, last + 1)]

    @property
    def effective_quality(self) -> int | None:
        """The quality to encode with: the one asked for, the default for a lossy format."""
        if self.format == "png":
            return None
        return DEFAULT_FRAME_QUALITY if self.quality is None else self.quality

    @classmethod
    def of_numbers(
        cls, numbers: Sequence[int], image_format: FrameFormat, quality: int | None
    ) -> Self:
        """The request for task frames `numbers` (strictly increasing): their runs as ranges."""
        ranges: list[tuple[int, int]] = []
        for number in numbers:
            if ranges and number == ranges[-1][1] + 1:
                ranges[-1] = (ranges[-1][0], number)
            else:
                ranges.append((number, number))
        return cls(ranges=ranges, format=image_format, quality=quality)


MEDIA_FILES_PATH = "/api/internal/tasks/{task_id}/media"
MEDIA_MANIFEST_PATH = "/api/internal/tasks/{task_id}/media/manifest"
MEDIA_VIDEO_PATH = "/api/internal/tasks/{task_id}/media/video"
MEDIA_CONTEXT_IMAGES_PATH = "/api/internal/tasks/{task_id}/media/context_images"


class MediaFiles(BaseModel):
    """`GET /api/internal/tasks/{id}/media` (the service token): how a task's media was
    prepared, beyond `DataMeta`, as a task backup records it (CVAT's `task.json` `data`).

    With it, a backup reads the files the media came from: an image task's originals
    (`GET /api/tasks/{id}/data?type=frame&quality=original`, by frame), each frame's
    context images as they were given (`GET MEDIA_CONTEXT_IMAGES_PATH?number=`: a zip
    archive, stored, of the files under their paths among the task's files, such as
    `related_images/img1_png/left.png`; 404 for a frame without any), a video task's
    video file (`GET MEDIA_VIDEO_PATH`, streamed), and the task's `manifest.jsonl` as
    ingest wrote it (`GET MEDIA_MANIFEST_PATH`, CVAT's format).
    """

    media_type: Literal["image", "video"]
    dimension: Literal["2d", "3d"]
    sorting_method: str
    use_cache: bool
    compressed_chunk_type: str
