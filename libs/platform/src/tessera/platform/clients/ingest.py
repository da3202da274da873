"""The client of the ingest service (`tessera.platform.contracts.ingest`), for the
services that read a task's frames (their names and sizes, and their original media) and
write into cloud storages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import Request

from tessera.platform.clients.forwarding import caller_credentials
from tessera.platform.clients.retry import send_with_retries
from tessera.platform.contracts.ingest import (
    CLOUD_OBJECT_PATH,
    CLOUD_STORAGE_PATH,
    TASK_DATA_PATH,
    TASK_META_PATH,
    CloudObjectWritten,
    DataMeta,
)
from tessera.platform.errors import Problem
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

    async def original_frame(self, task_id: int, number: int) -> tuple[bytes, str]:
        """The original file of an image frame (a decoded frame of a video), and its type."""
        params = {"type": "frame", "number": str(number), "quality": "original"}
        response = await self._get(TASK_DATA_PATH.format(task_id=task_id), params, "a frame")
        return response.content, response.headers.get("content-type", "")

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
