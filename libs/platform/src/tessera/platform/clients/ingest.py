"""The client of the ingest service (`tessera.platform.contracts.ingest`), for the
services that read a task's frames (their names and sizes, their original media, a video
task's frames in one stream, a frame's context images), set a restored task's deleted
frames and write into cloud storages."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path

import httpx
from fastapi import Request

from tessera.platform.clients.forwarding import caller_credentials
from tessera.platform.clients.retry import send_with_retries
from tessera.platform.contracts.ingest import (
    CLOUD_OBJECT_PATH,
    CLOUD_STORAGE_PATH,
    FRAME_RECORD,
    MEDIA_CONTEXT_IMAGES_PATH,
    MEDIA_FILES_PATH,
    MEDIA_MANIFEST_PATH,
    MEDIA_VIDEO_PATH,
    TASK_DATA_PATH,
    TASK_META_PATH,
    VIDEO_FRAMES_PATH,
    CloudObjectWritten,
    DataMeta,
    DataMetaWrite,
    FrameFormat,
    MediaFiles,
    VideoFramesRequest,
)
from tessera.platform.errors import Problem
from tessera.platform.requests import RequestStatus
from tessera.platform.telemetry import http_client

TRIES = 3


class IngestClient:
    """HTTP client of the ingest service, acting with the service token (an administrator's)."""

    def __init__(self, base_url: str, internal_token: str) -> None:
        self._http = http_client(base_url=base_url, timeout=httpx.Timeout(30.0, read=300.0))
        self._headers = {"Authorization": f"Bearer {internal_token}"}

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def task_meta(self, task_id: int) -> DataMeta:
        """The task's frames: names, sizes, deleted frames (404 problem for a task without
        media)."""
        response = await self._get(TASK_META_PATH.format(task_id=task_id), {}, "frame names")
        return DataMeta.model_validate_json(response.content)

    async def set_deleted_frames(self, task_id: int, frames: Sequence[int]) -> DataMeta:
        """Make `frames` (task frame numbers) the task's deleted frames, all of them (CVAT's
        `PATCH /api/tasks/{id}/data/meta`); the task's changed meta. A refusal raises as
        ingest answered it (404 for a task without media, 422 for a frame outside it)."""
        body = DataMetaWrite(deleted_frames=list(frames)).model_dump_json()
        path = TASK_META_PATH.format(task_id=task_id)
        headers = {**self._headers, "Content-Type": "application/json"}
        response = await send_with_retries(
            lambda: self._http.patch(path, content=body, headers=headers), TRIES
        )
        if response.status_code != 200:
            raise _problem(response, "deleted frames")
        return DataMeta.model_validate_json(response.content)

    async def original_frame(self, task_id: int, number: int) -> tuple[bytes, str]:
        """The original file of an image frame (a decoded frame of a video), and its type."""
        params = {"type": "frame", "number": str(number), "quality": "original"}
        response = await self._get(TASK_DATA_PATH.format(task_id=task_id), params, "a frame")
        return response.content, response.headers.get("content-type", "")

    async def context_images(self, task_id: int, number: int) -> list[tuple[str, bytes]]:
        """The context images of task frame `number` as ingest serves them (CVAT's
        `type=context_image`: JPEGs named by their path below the folder the frame's context
        images share, `.jpg` appended): `(name, data)` sorted by name. A frame without
        context images is a 404 problem."""
        params = {"type": "context_image", "number": str(number)}
        path = TASK_DATA_PATH.format(task_id=task_id)
        response = await self._get(path, params, "context images")
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            return sorted(
                (info.filename, archive.read(info))
                for info in archive.infolist()
                if not info.is_dir()
            )

    async def original_context_images(self, task_id: int, number: int) -> list[tuple[str, bytes]]:
        """The context images of task frame `number` as they were given (for a task
        backup): `(path among the task's files, data)`, such as
        `("related_images/img1_png/left.png", ...)`, sorted by path. A frame without
        context images is a 404 problem."""
        path = MEDIA_CONTEXT_IMAGES_PATH.format(task_id=task_id)
        response = await self._get(path, {"number": str(number)}, "context images")
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            return sorted(
                (info.filename, archive.read(info))
                for info in archive.infolist()
                if not info.is_dir()
            )

    async def video_frames(
        self,
        task_id: int,
        numbers: Sequence[int],
        *,
        image_format: FrameFormat,
        quality: int | None = None,
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Task frames `numbers` (increasing, one at least) of a video task as `(number,
        image)`, in order, decoded by ingest in one pass and encoded as `image_format` (at
        `quality`, for JPEG and WebP). Not retried (a stream is read once): a refusal raises
        as ingest answered it (404 for a task without media, 400 for an image task), a
        stream cut short as a transport error or a 502 problem."""
        body = VideoFramesRequest.of_numbers(numbers, image_format, quality)
        path = VIDEO_FRAMES_PATH.format(task_id=task_id)
        headers = {**self._headers, "Content-Type": "application/json"}
        async with self._http.stream(
            "POST", path, content=body.model_dump_json(), headers=headers
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise _problem(response, "video frames")
            expected = iter(numbers)
            async for number, image in _frame_records(response.aiter_bytes()):
                if number != next(expected, None):
                    raise Problem(502, f"The ingest service sent frame {number} out of turn.")
                yield number, image
            if (missing := next(expected, None)) is not None:
                raise Problem(502, f"The ingest service's frames stopped before frame {missing}.")

    async def check_cloud_storage(self, request: Request, storage_id: int) -> None:
        """Raise the caller's refusal (401, 403, 404 problem) unless they see the storage."""
        headers, params = caller_credentials(request)
        response = await self._http.get(
            CLOUD_STORAGE_PATH.format(storage_id=storage_id), headers=headers, params=params
        )
        if response.status_code != 200:
            raise _problem(response, "a cloud storage")

    async def write_cloud_object(
        self, storage_id: int, key: str, chunks: AsyncIterator[bytes]
    ) -> CloudObjectWritten:
        """Write an object into a cloud storage's bucket from a stream (not retried: the
        stream is read once)."""
        response = await self._http.put(
            CLOUD_OBJECT_PATH.format(storage_id=storage_id),
            params={"key": key},
            content=chunks,
            headers={**self._headers, "Content-Type": "application/octet-stream"},
            timeout=httpx.Timeout(60.0, read=None, write=None),
        )
        if response.status_code != 200:
            raise _problem(response, "writing into a cloud storage")
        return CloudObjectWritten.model_validate_json(response.content)

    async def download_cloud_object(self, storage_id: int, key: str, path: Path) -> int:
        """Write an object of a cloud storage's bucket into the file `path`; its size (a
        refusal as ingest's problem: 403, 404 naming the object)."""
        size = 0
        request = self._http.build_request(
            "GET", CLOUD_OBJECT_PATH.format(storage_id=storage_id), params={"key": key},
            headers=self._headers, timeout=httpx.Timeout(60.0, read=300.0),
        )  # fmt: skip
        response = await self._http.send(request, stream=True)
        try:
            if response.status_code != 200:
                await response.aread()
                raise _problem(response, "reading a cloud storage's object")
            with path.open("wb") as out:
                async for block in response.aiter_bytes():
                    await asyncio.to_thread(out.write, block)
                    size += len(block)
        finally:
            await response.aclose()
        return size

    async def media_files(self, task_id: int) -> MediaFiles:
        """How the task's media was prepared (for a task backup; 404 problem without media)."""
        path = MEDIA_FILES_PATH.format(task_id=task_id)
        response = await self._get(path, {}, "media files")
        return MediaFiles.model_validate_json(response.content)

    async def media_manifest(self, task_id: int) -> bytes:
        """The task's `manifest.jsonl` as ingest wrote it (CVAT's format)."""
        path = MEDIA_MANIFEST_PATH.format(task_id=task_id)
        return (await self._get(path, {}, "the manifest")).content

    async def media_video(self, task_id: int) -> AsyncGenerator[bytes]:
        """A video task's original video file, streamed (not retried: a stream is read
        once; a refusal raises as ingest answered it)."""
        path = MEDIA_VIDEO_PATH.format(task_id=task_id)
        async with self._http.stream("GET", path, headers=self._headers) as response:
            if response.status_code != 200:
                await response.aread()
                raise _problem(response, "the video file")
            async for chunk in response.aiter_bytes():
                yield chunk

    async def attach_archive(self, task_id: int, archive: Path, options: dict[str, str]) -> str:
        """Attach media to a task from a zip archive of its files (`POST /api/tasks/{id}/
        data`, one form: the archive as `client_files[0]`, the data options as fields),
        with the service token; the id of ingest's creation request. Not retried."""
        with archive.open("rb") as file:
            response = await self._http.post(
                TASK_DATA_PATH.format(task_id=task_id),
                data=options,
                files={"client_files[0]": (archive.name, file, "application/zip")},
                headers=self._headers,
                timeout=httpx.Timeout(60.0, read=None, write=None),
            )
        if response.status_code != 202:
            raise _problem(response, "attaching media")
        return str(response.json()["rq_id"])

    async def request_status(self, rq_id: str) -> RequestStatus:
        """One of ingest's requests (`GET /api/requests/{rq_id}`), as the service token
        sees it."""
        response = await self._get(f"/api/requests/{rq_id}", {}, "a request")
        return RequestStatus.model_validate_json(response.content)

    async def _get(self, path: str, params: dict[str, str], what: str) -> httpx.Response:
        response = await send_with_retries(
            lambda: self._http.get(path, params=params, headers=self._headers), TRIES
        )
        if response.status_code == 200:
            return response
        raise _problem(response, what)


def _problem(response: httpx.Response, what: str) -> Problem:
    """A refusal as ingest answered it, or 502 for a failure of the ingest service."""
    if 400 <= response.status_code < 500:
        try:
            detail = str(response.json().get("detail", response.text))
        except ValueError:
            detail = response.text
        return Problem(response.status_code, detail)
    return Problem(502, f"The ingest service failed ({what}: HTTP {response.status_code}).")


async def _frame_records(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """The `(number, image)` records of a video frames stream; a record cut short raises a
    502 problem."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= FRAME_RECORD.size:
            number, length = FRAME_RECORD.unpack_from(buffer)
            end = FRAME_RECORD.size + length
            if len(buffer) < end:
                break
            yield number, bytes(buffer[FRAME_RECORD.size : end])
            del buffer[:end]
    if buffer:
        raise Problem(502, "The ingest service's frames stream ends within a frame.")
