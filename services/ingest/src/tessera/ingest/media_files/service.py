"""Reading a task's stored media files: how the media was prepared, its manifest, a frame's
context images as they were given, and a video task's original video
(`tessera.platform.contracts.ingest.MediaFiles`)."""

from __future__ import annotations

import asyncio
import io
import tempfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.creation.build import related_prefix
from tessera.ingest.frames import repository as frames_repo
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


async def context_images(
    session: AsyncSession, storage: ObjectStorage, task_id: int, number: int, scratch: Path
) -> bytes:
    """A zip archive of task frame `number`'s context images as they were given, stored
    under their paths among the task's files (`related_images/img1_png/left.png`); 400
    for a frame outside the task, 404 for a frame without context images. The files pass
    through a folder of `scratch`."""
    media = await media_of(session, task_id)
    if not 0 <= number < media.size:
        raise bad_request(f"frame {number} is outside frames 0..{media.size - 1}", "number")
    rows = await frames_repo.frame_rows(session, task_id, [number])
    keys = rows[0].related_keys if rows else []
    if not keys:
        raise NotFound(f"Frame {number} of task {task_id} has no context images.")
    await asyncio.to_thread(scratch.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        files = []
        for index, key in enumerate(keys):
            path = Path(folder) / str(index)
            try:
                await storage.get_file(key, path)
            except ObjectNotFound as exc:
                raise NotFound(f"A context image of task {task_id} is missing.") from exc
            files.append((key.removeprefix(related_prefix(task_id)), path))
        return await asyncio.to_thread(_stored_zip, files)


def _stored_zip(files: list[tuple[str, Path]]) -> bytes:
    """A zip archive of `files` (name, local path), stored as they are."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, path in files:
            archive.write(path, name)
    return buffer.getvalue()


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
