"""Frames, chunks and meta of a task or a job, as CVAT's data endpoints serve them.

Task chunk `k` holds task frames `k * chunk_size ...`; a job's chunk `index` holds the
job's frames `index * chunk_size ...`. Chunks are stored objects: made at creation, or
on first request (`use_cache`, and job chunks that do not coincide with a task chunk),
then kept and evicted least recently used first beyond the configured budget.

A video is read from a local copy, indexed once per process; the export service reads
many of its frames in one decoding pass (`MediaReader.video_frames`).
"""

from __future__ import annotations

import asyncio
import functools
import io
import mimetypes
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.cloud_storages.bucket import CloudError
from tessera.ingest.cloud_storages.service import CloudStorages
from tessera.ingest.config import IngestSettings
from tessera.ingest.creation.build import chunk_key, related_prefix, video_chunk, zip_chunk
from tessera.ingest.frames import repository as repo
from tessera.ingest.media.chunks import compress_frame
from tessera.ingest.media.pointclouds import POINTCLOUD_MEDIA_TYPE
from tessera.ingest.media.related import write_context_images_chunk
from tessera.ingest.media.video import VideoIndex, index_video, read_frames
from tessera.platform.contracts.annotations import JobAccess
from tessera.platform.contracts.ingest import (
    FRAME_RECORD,
    DataMeta,
    FrameFormat,
    FrameMeta,
    VideoFramesRequest,
)
from tessera.platform.db import Database
from tessera.platform.errors import NotFound, Problem, bad_request, unprocessable
from tessera.platform.storage import ObjectStorage

T = TypeVar("T")


@dataclass(frozen=True)
class Payload:
    """Bytes to send and their media type."""

    data: bytes
    media_type: str


async def media_of(session: AsyncSession, task_id: int) -> sa.Row[Any]:
    """The task's ready media; 404 when it has none (yet)."""
    media = await repo.ready_media(session, task_id)
    if media is None:
        raise NotFound(f"Task {task_id} has no data yet.")
    return media


class MediaReader:
    """Reads frames and builds chunks of tasks; one per service process."""

    def __init__(
        self,
        database: Database,
        storage: ObjectStorage,
        settings: IngestSettings,
        clouds: CloudStorages,
    ) -> None:
        self.database = database
        self.storage = storage
        self.settings = settings
        self.clouds = clouds
        self._videos: dict[str, asyncio.Future[Path]] = {}
        self._indexes: dict[str, asyncio.Future[VideoIndex]] = {}

    async def meta(self, session: AsyncSession, task_id: int, job: JobAccess | None) -> DataMeta:
        """`data/meta` of the task, or of one of its jobs."""
        media = await media_of(session, task_id)
        rows = await repo.frame_rows(session, task_id)
        frames = [FrameMeta(width=r.width, height=r.height, name=r.name,
                            related_files=len(r.related_keys),
                            has_related_context=bool(r.related_keys)) for r in rows]  # fmt: skip
        step = _step(media.frame_filter)
        size, start, stop, included = media.size, media.start_frame, media.stop_frame, None
        deleted = list(media.deleted_frames)
        if job is not None:
            task_frames = job.task_frames()
            size = len(task_frames)
            start = media.start_frame + job.start_frame * step
            stop = min(media.stop_frame, media.start_frame + job.stop_frame * step)
            included = list(job.frames) if job.frames is not None else None
            deleted = sorted(set(deleted).intersection(task_frames))
            if media.media_type == "image":
                frames = [frames[i] for i in task_frames]
        return DataMeta(
            chunks_updated_date=media.created_date.isoformat(), chunk_size=media.chunk_size,
            size=size, image_quality=media.image_quality, start_frame=start, stop_frame=stop,
            frame_filter=media.frame_filter, frames=frames, deleted_frames=deleted,
            included_frames=included, storage=media.storage,
            cloud_storage_id=media.cloud_storage_id,
        )  # fmt: skip

    async def set_deleted_frames(
        self, session: AsyncSession, task_id: int, job: JobAccess | None, frames: list[int]
    ) -> DataMeta:
        """Mark `frames` (task frame numbers) deleted, as CVAT's `PATCH data/meta` does: for
        a task, they are all its deleted frames; for a job, those among the job's frames
        (the task's others stay). 422 naming `body.deleted_frames` for a frame outside the
        task or job; the changed `data/meta` of the task or job."""
        media = await media_of(session, task_id)
        if job is None:
            allowed: set[int] | range = range(media.size)
            within, where = None, f"task {task_id} (frames 0..{media.size - 1})"
        else:
            within = job.task_frames()
            allowed, where = set(within), f"job {job.job_id}"
        outside = sorted({frame for frame in frames if frame not in allowed})
        if outside:
            shown = ", ".join(map(str, outside[:10])) + (", ..." if len(outside) > 10 else "")
            raise unprocessable([("body.deleted_frames", f"{shown}: not frames of {where}")])
        if await repo.set_deleted_frames(session, task_id, within, frames) is None:
            raise NotFound(f"Task {task_id} has no data yet.")
        return await self.meta(session, task_id, job)

    async def frame(
        self, session: AsyncSession, task_id: int, number: int, quality: str
    ) -> Payload:
        """One task frame as an image."""
        media = await media_of(session, task_id)
        if not 0 <= number < media.size:
            raise bad_request(f"frame {number} is outside frames 0..{media.size - 1}", "number")
        if media.media_type == "video":
            video, index = await self._indexed_video(media)
            source = _source_numbers(media)[number]
            pixels = await asyncio.to_thread(lambda: next(read_frames(video, index, [source]))[1])
            image = Image.fromarray(pixels)
            if quality == "original":
                return Payload(await asyncio.to_thread(_encode, image, "png", None), "image/png")
            data = await asyncio.to_thread(compress_frame, image, media.image_quality or 1)
            return Payload(data, "image/jpeg")
        (row,) = await repo.frame_rows(session, task_id, [number])
        original = await self._original(media, row)
        if media.dimension == "3d":
            return Payload(original, POINTCLOUD_MEDIA_TYPE)
        if quality == "original":
            kind = mimetypes.guess_type(row.name)[0] or "application/octet-stream"
            return Payload(original, kind)
        image = await asyncio.to_thread(Image.open, io.BytesIO(original))
        data = await asyncio.to_thread(compress_frame, image, media.image_quality or 1)
        return Payload(data, "image/jpeg")

    async def video_frames(
        self, session: AsyncSession, task_id: int, request: VideoFramesRequest
    ) -> AsyncIterator[bytes]:
        """The frames of a video task that `request` asks for, as the records of a video
        frames stream (`tessera.platform.contracts.ingest`), decoded in one pass in order.

        The request is checked before anything is decoded: 404 for a task without media,
        400 for an image task, 422 for frames beyond the task's. The frames are decoded and
        encoded one at a time on a thread of the stream's own, as the stream is read.
        """
        media = await media_of(session, task_id)
        if media.media_type != "video":
            raise Problem(400, f"Task {task_id} is not a video task: read its frames one by one.")
        last = request.ranges[-1][1]
        if last >= media.size:
            raise unprocessable(
                [("body.ranges", f"frame {last} is outside frames 0..{media.size - 1}")]
            )
        video, index = await self._indexed_video(media)
        numbers = request.numbers
        sources = _source_numbers(media)
        frames = _frame_records(
            video, index, numbers, [sources[number] for number in numbers],
            image_format=request.format, quality=request.effective_quality,
        )  # fmt: skip
        return _on_own_thread(frames)

    async def task_chunk(
        self, session: AsyncSession, task_id: int, number: int, quality: str
    ) -> Payload:
        """Task chunk `number`."""
        media = await media_of(session, task_id)
        count = -(-media.size // media.chunk_size)
        if not 0 <= number < count:
            raise bad_request(f"chunk {number} is outside chunks 0..{count - 1}", "number")
        frames = list(range(number * media.chunk_size,
                            min((number + 1) * media.chunk_size, media.size)))  # fmt: skip
        return await self._chunk(session, media, quality, number, frames)

    async def job_chunk(
        self,
        session: AsyncSession,
        job: JobAccess,
        *,
        index: int | None,
        number: int | None,
        quality: str,
    ) -> Payload:
        """A job's chunk by its `index` in the job, or by task chunk `number` (deprecated)."""
        if (index is None) == (number is None):
            raise bad_request("give exactly one of index and number", "index")
        media = await media_of(session, job.task_id)
        task_frames = job.task_frames()
        size = media.chunk_size
        if index is not None:
            count = -(-len(task_frames) // size)
            if not 0 <= index < count:
                raise bad_request(f"chunk {index} is outside chunks 0..{count - 1}", "index")
            frames = task_frames[index * size : (index + 1) * size]
        else:
            first, last = task_frames[0] // size, task_frames[-1] // size
            if not first <= number <= last:
                raise bad_request(f"chunk {number} is outside chunks {first}..{last}", "number")
            frames = [f for f in task_frames if f // size == number]
        aligned = frames[0] % size == 0 and frames == list(
            range(frames[0], frames[0] + len(frames))
        )
        full = len(frames) == size or frames[-1] == media.size - 1
        if aligned and full:
            return await self._chunk(session, media, quality, frames[0] // size, frames)
        if index is not None:
            return await self._chunk(session, media, f"job-{job.job_id}-{quality}", index, frames)
        assert number is not None
        kind = f"job-{job.job_id}-by-task-chunk-{quality}"
        return await self._chunk(session, media, kind, number, frames)

    async def _chunk(
        self, session: AsyncSession, media: Any, kind: str, number: int, frames: list[int]
    ) -> Payload:
        quality = kind.rsplit("-", 1)[-1]
        found = await repo.chunk(session, media.task_id, kind, number)
        if found is not None:
            return Payload(await self.storage.get(found.object_key), _chunk_type(found.object_key))
        data, extension = await self._build(session, media, quality, frames)
        key = chunk_key(media.task_id, kind, number, extension)
        await self.storage.put(key, data, content_type=_chunk_type(key))
        async with self.database.transaction() as other:
            await repo.add_cached_chunk(
                other, media.task_id, quality=kind, number=number, key=key, size=len(data)
            )
            evicted = await repo.evict_cached(other, self.settings.chunk_cache_bytes)
        for old in evicted:
            await self.storage.delete(old)
        return Payload(data, _chunk_type(key))

    async def _build(
        self, session: AsyncSession, media: Any, quality: str, frames: list[int]
    ) -> tuple[bytes, str]:
        if media.media_type == "video":
            video, index = await self._indexed_video(media)
            numbers = [_source_numbers(media)[f] for f in frames]
            return await asyncio.to_thread(functools.partial(
                video_chunk, video, index, numbers, quality=quality,
                compressed_type=media.compressed_chunk_type, image_quality=media.image_quality,
            ))  # fmt: skip
        rows = await repo.frame_rows(session, media.task_id, frames)
        with tempfile.TemporaryDirectory(dir=self._scratch()) as folder:
            paths = []
            for i, row in enumerate(rows):
                path = Path(folder) / f"{i:06d}{Path(row.name).suffix}"
                await asyncio.to_thread(path.write_bytes, await self._original(media, row))
                paths.append(path)
            level = None if quality == "original" else (media.image_quality or 1)
            return await asyncio.to_thread(zip_chunk, paths, level, media.dimension), "zip"

    async def context_images(self, session: AsyncSession, task_id: int, number: int) -> Payload:
        """The context images of task frame `number` as CVAT serves them (a ZIP of JPEGs);
        404 when the frame has none."""
        media = await media_of(session, task_id)
        if not 0 <= number < media.size:
            raise bad_request(f"frame {number} is outside frames 0..{media.size - 1}", "number")
        rows = await repo.frame_rows(session, task_id, [number])
        keys = rows[0].related_keys if rows else []
        if not keys:
            raise NotFound(f"Frame {number} of task {task_id} has no context images.")
        with tempfile.TemporaryDirectory(dir=self._scratch()) as folder:
            images = []
            for i, key in enumerate(keys):
                path = Path(folder) / f"{i:06d}{Path(key).suffix}"
                await self.storage.get_file(key, path)
                images.append((key.removeprefix(related_prefix(task_id)), path))
            return Payload(await asyncio.to_thread(_context_zip, images), "application/zip")

    async def _original(self, media: Any, row: Any) -> bytes:
        """A frame's original bytes: stored, or in the task's cloud storage bucket."""
        if row.object_key is not None:
            return await self.storage.get(row.object_key)
        bucket = await self.clouds.shared_bucket(media.cloud_storage_id)
        try:
            return await bucket.read(row.name)
        except CloudError as exc:
            raise Problem(502, f"The task's cloud storage could not be read: {exc}") from exc

    def _scratch(self) -> Path:
        self.settings.scratch_dir.mkdir(parents=True, exist_ok=True)
        return self.settings.scratch_dir

    async def _indexed_video(self, media: Any) -> tuple[Path, VideoIndex]:
        """A local copy of the task's video (downloaded once per process) and its index
        (made once per process)."""
        key = media.video_key
        video = await _once(self._videos, key, lambda: self._download(key))
        index = await _once(self._indexes, key, lambda: asyncio.to_thread(index_video, video))
        return video, index

    async def _download(self, key: str) -> Path:
        folder = self._scratch() / "videos"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / key.replace("/", "_")
        partial = path.with_suffix(path.suffix + ".part")
        await self.storage.get_file(key, partial)
        partial.replace(path)
        return path

    def close(self) -> None:
        """Remove the local copies of videos."""
        shutil.rmtree(self.settings.scratch_dir / "videos", ignore_errors=True)


async def _once(
    made: dict[str, asyncio.Future[T]], key: str, make: Callable[[], Awaitable[T]]
) -> T:
    """`made[key]`, made by `make()` on first use and shared by every caller meanwhile; a
    failure is not kept (the next caller tries again)."""
    pending = made.get(key)
    if pending is None:
        pending = made[key] = asyncio.ensure_future(make())
    try:
        return await asyncio.shield(pending)
    except Exception:
        made.pop(key, None)
        raise


def _frame_records(
    video: Path,
    index: VideoIndex,
    numbers: Sequence[int],
    sources: Sequence[int],
    *,
    image_format: FrameFormat,
    quality: int | None,
) -> Generator[bytes]:
    """Task frames `numbers` (video frames `sources`, increasing) decoded in one pass,
    each encoded and preceded by its `FRAME_RECORD`."""
    decoded = read_frames(video, index, sources)
    for number, (_, pixels) in zip(numbers, decoded, strict=True):
        data = _encode(Image.fromarray(pixels), image_format, quality)
        yield FRAME_RECORD.pack(number, len(data)) + data


async def _on_own_thread(items: Generator[bytes]) -> AsyncIterator[bytes]:
    """`items`, each made on a thread of their own when it is asked for (at most one at a
    time); the iterator is closed on that thread too, after the item it may be making
    when the reader stops (a client gone), so nothing is left open."""
    loop = asyncio.get_running_loop()
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video-frames")
    try:
        while (item := await loop.run_in_executor(thread, next, items, None)) is not None:
            yield item
    finally:
        thread.submit(items.close)
        thread.shutdown(wait=False)


def _step(frame_filter: str) -> int:
    _, _, value = frame_filter.partition("=")
    return int(value) if value.strip().isdigit() else 1


def _source_numbers(media: Any) -> list[int]:
    return list(range(media.start_frame, media.stop_frame + 1, _step(media.frame_filter)))


def _chunk_type(key: str) -> str:
    return "video/mp4" if key.endswith(".mp4") else "application/zip"


def _context_zip(images: Sequence[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    write_context_images_chunk(images, buffer)
    return buffer.getvalue()


def _encode(image: Image.Image, image_format: FrameFormat, quality: int | None) -> bytes:
    """A decoded frame as PNG, or as JPEG or WebP at `quality`."""
    buffer = io.BytesIO()
    if image_format == "png":
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format=image_format.upper(), quality=quality)
    return buffer.getvalue()
