"""The client of the annotations service's internal API (`tessera.platform.contracts.annotations`).

Access is asked with the caller's own credentials (their bearer token and organization
context), so the answer is exactly what the annotations service would decide for them;
its refusals (401, 403, 404) reach the caller unchanged. Making jobs uses the service
token given to the client (an administrator's). Answers are cached for a few seconds per
caller, because a client reading a task fetches many chunks in a row.
"""

from __future__ import annotations

import asyncio
import time
from typing import TypeVar

import httpx
from fastapi import Request
from pydantic import BaseModel

from tessera.platform.contracts.annotations import (
    CONTEXT_PATH,
    JOB_ACCESS_PATH,
    PREFIX,
    SEGMENTS_PATH,
    TASK_ACCESS_PATH,
    CallerContext,
    JobAccess,
    SegmentsCreate,
    SegmentsCreated,
    TaskAccess,
)
from tessera.platform.errors import Problem
from tessera.platform.telemetry import http_client

ACCESS_TTL_S = 5.0
SEGMENTS_TRIES = 3
CACHE_LIMIT = 10_000
_RETRIED = (502, 503, 504)
_FORWARDED = ("authorization", "x-organization")
_FORWARDED_QUERY = ("org", "org_id")

Answer = TypeVar("Answer", bound=BaseModel)
CacheKey = tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


class AnnotationsClient:
    """HTTP client of the annotations service, for the services that act on its tasks."""

    def __init__(self, base_url: str, internal_token: str) -> None:
        self._http = http_client(base_url=base_url, timeout=30.0)
        self._internal = {"Authorization": f"Bearer {internal_token}"}
        self._cache: dict[CacheKey, tuple[float, BaseModel]] = {}

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def task_access(self, request: Request, task_id: int) -> TaskAccess:
        """The caller's access to a task; their 401/403/404 as a problem."""
        path = PREFIX + TASK_ACCESS_PATH.format(task_id=task_id)
        return await self._ask(request, path, TaskAccess)

    async def job_access(self, request: Request, job_id: int) -> JobAccess:
        """The caller's access to a job; their 401/403/404 as a problem."""
        return await self._ask(request, PREFIX + JOB_ACCESS_PATH.format(job_id=job_id), JobAccess)

    async def context(self, request: Request) -> CallerContext:
        """The caller's organization context (their organization headers resolved)."""
        return await self._ask(request, PREFIX + CONTEXT_PATH, CallerContext)

    def forget(self, task_id: int) -> None:
        """Drop cached answers about a task (its jobs or size changed)."""
        self._cache = {k: v for k, v in self._cache.items() if f"/tasks/{task_id}/" not in k[0]}

    async def create_segment_jobs(self, task_id: int, body: SegmentsCreate) -> SegmentsCreated:
        """Make the task's jobs from its segments; the jobs, in segment order.

        The fields of `body` that were set are sent. The call is idempotent (the same
        segments asked again answer 200 with the jobs made the first time), so it is
        retried when the connection fails or the service is briefly unavailable, and a
        creation redone after a replica stopped completes. Other segments for a task that
        has jobs are refused (409).
        """
        path = PREFIX + SEGMENTS_PATH.format(task_id=task_id)
        content = body.model_dump(mode="json", exclude_unset=True)
        for attempt in range(SEGMENTS_TRIES):
            try:
                response = await self._http.post(path, json=content, headers=self._internal)
            except httpx.TransportError:
                if attempt + 1 == SEGMENTS_TRIES:
                    raise
            else:
                if response.status_code not in _RETRIED or attempt + 1 == SEGMENTS_TRIES:
                    break
            await asyncio.sleep(0.5 * 2**attempt)
        if response.status_code not in (200, 201):
            raise _problem(response, "making the task's jobs")
        self.forget(task_id)
        return SegmentsCreated.model_validate_json(response.content)

    async def _ask(self, request: Request, path: str, answer: type[Answer]) -> Answer:
        headers = {k: request.headers[k] for k in _FORWARDED if k in request.headers}
        params = {k: request.query_params[k] for k in _FORWARDED_QUERY if k in request.query_params}
        key = (path, tuple(sorted(headers.items())), tuple(sorted(params.items())))
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < ACCESS_TTL_S and isinstance(cached[1], answer):
            return cached[1]
        response = await self._http.get(path, headers=headers, params=params)
        if response.status_code != 200:
            raise _problem(response, "checking access")
        parsed = answer.model_validate_json(response.content)
        if len(self._cache) > CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (now, parsed)
        return parsed


def _problem(response: httpx.Response, doing: str) -> Problem:
    """The caller's refusal as it came, or 502 for a failure of the annotations service."""
    if response.status_code in (401, 403, 404, 409, 422):
        try:
            detail = str(response.json().get("detail", response.text))
        except ValueError:
            detail = response.text
        headers = {}
        if "www-authenticate" in response.headers:
            headers["WWW-Authenticate"] = response.headers["www-authenticate"]
        return Problem(response.status_code, detail, headers=headers)
    return Problem(
        502, f"The annotations service failed while {doing} (HTTP {response.status_code})."
    )
