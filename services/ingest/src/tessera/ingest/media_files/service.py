"""Reading a task's stored media files: how the media was prepared, its manifest, and a
video task's original video (`tessera.platform.contracts.ingest.MediaFiles`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.frames.service import media_of
from tessera.platform.contracts.ingest import MediaFiles
from tessera.platform.errors import NotFound, bad_request
from tessera.platform.storage import ObjectNotFound, ObjectStorage


@dataclass(frozen=True)
class StoredFile:
    """A stored object to stream: its size and its chunks."""

    size: int
    chunks: AsyncIterator[bytes]


async def media_files(session: AsyncSession, task_id: int) -> MediaFiles:
    """How the task's media was prepared (404 for a task without media)."""
    media = await media_of(session, task_id)
    return MediaFiles(
        media_type=media.media_type,
        dimension=media.dimension,
        sorting_method=media.sorting_method,
        use_cache=media.use_cache,
        compressed_chunk_type=media.compressed_chunk_type,
    )


async def manifest(session: AsyncSession, storage: ObjectStorage, task_id: int) -> StoredFile:
    """The task's `manifest.jsonl` (404 for a task without media or manifest)."""
    media = await media_of(session, task_id)
    if media.manifest_key is None:
        raise NotFound(f"Task {task_id} has no manifest.")
    return await _stored(storage, media.manifest_key, f"The manifest of task {task_id}")


async def video(session: AsyncSession, storage: ObjectStorage, task_id: int) -> StoredFile:
    """The original video file of a video task (400 for an image task)."""
    media = await media_of(session, task_id)
    if media.video_key is None:
        raise bad_request(f"Task {task_id} is not a video task.", "task_id")
    return await _stored(storage, media.video_key, f"The video of task {task_id}")


async def _stored(storage: ObjectStorage, key: str, what: str) -> StoredFile:
    try:
        size = await storage.size(key)
    except ObjectNotFound as exc:
        raise NotFound(f"{what} is missing from storage.") from exc
    return StoredFile(size, storage.stream(key))
