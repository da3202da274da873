"""The annotations service, as ingest sees it: access decisions, organization context and
segment jobs.

Access is asked with the caller's own credentials (their bearer token and organization
context), so the answer is exactly what the annotations service would decide for them;
its refusals (401, 403, 404) reach the caller unchanged. Making jobs uses the service's
administrator token. Answers are cached for a few seconds per caller, because a client
reading a task fetches many chunks in a row.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

from tessera.platform.errors import Problem
from tessera.platform.telemetry import http_client

ACCESS_TTL_S = 5.0
SEGMENTS_TRIES = 3
_RETRIED = (502, 503, 504)
_FORWARDED = ("authorization", "x-organization")
_FORWARDED_QUERY = ("org", "org_id")


@dataclass(frozen=True)
class TaskAccess:
    """A task the caller sees (see the annotations service's `TaskAccess`)."""

    task_id: int
    organization_id: int | None
    segment_size: int
    overlap: int | None
    dimension: str
    size: int
    has_jobs: bool
    can_change: bool


@dataclass(frozen=True)
class JobAccess:
    """A job the caller sees and the task frames it covers."""

    job_id: int
    task_id: int
    start_frame: int
    stop_frame: int
    frames: tuple[int, ...] | None

    def task_frames(self) -> list[int]:
        """The task frames of the job, in order."""
        if self.frames is not None:
            return list(self.frames)
        return list(range(self.start_frame, self.stop_frame + 1))


@dataclass(frozen=True)
class CallerContext:
    """The caller and the organization their request acts in (None: personal workspace)."""

    user_id: int
    username: str
    is_admin: bool
    organization_id: int | None
    role: str | None

    @property
    def sees_whole_organization(self) -> bool:
        """Administrators, and owners, maintainers and supervisors of the organization."""
        return self.is_admin or self.role in ("owner", "maintainer", "supervisor")

    @property
    def manages_organization(self) -> bool:
        """Administrators, and owners and maintainers of the organization."""
        return self.is_admin or self.role in ("owner", "maintainer")


class AnnotationsClient:
    """HTTP client of the annotations service."""

    def __init__(self, base_url: str, internal_token: str) -> None:
        self._http = http_client(base_url=base_url, timeout=30.0)
        self._internal = {"Authorization": f"Bearer {internal_token}"}
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def task_access(self, request: Request, task_id: int) -> TaskAccess:
        """The caller's access to a task; their 401/403/404 as a problem."""
        body = await self._ask(request, f"/api/internal/tasks/{task_id}/access")
        return TaskAccess(
            task_id=body["task_id"],
            organization_id=body["organization_id"],
            segment_size=body["segment_size"],
            overlap=body["overlap"],
            dimension=body["dimension"],
            size=body["size"],
            has_jobs=body["has_jobs"],
            can_change=body["can_change"],
        )

    async def job_access(self, request: Request, job_id: int) -> JobAccess:
        """The caller's access to a job; their 401/403/404 as a problem."""
        body = await self._ask(request, f"/api/internal/jobs/{job_id}/access")
        frames = body["frames"]
        return JobAccess(
            job_id=body["job_id"],
            task_id=body["task_id"],
            start_frame=body["start_frame"],
            stop_frame=body["stop_frame"],
            frames=tuple(frames) if frames is not None else None,
        )

    async def context(self, request: Request) -> CallerContext:
        """The caller's organization context (their organization headers resolved)."""
        body = await self._ask(request, "/api/internal/context")
        return CallerContext(
            user_id=body["user_id"],
            username=body["username"],
            is_admin=body["is_admin"],
            organization_id=body["organization_id"],
            role=body["role"],
        )

    def forget(self, task_id: int) -> None:
        """Drop cached answers about a task (its jobs or size changed)."""
        self._cache = {k: v for k, v in self._cache.items() if f"/tasks/{task_id}/" not in k[0]}

    async def create_segment_jobs(self, task_id: int, body: dict[str, Any]) -> list[int]:
        """Make the task's jobs from its segments; the job ids in segment order.

        The call is idempotent (the same segments asked again answer 200 with the jobs
        made the first time), so it is retried when the connection fails or the service
        is briefly unavailable, and a creation redone after a replica stopped completes.
        Other segments for a task that has jobs are refused (409).
        """
        path = f"/api/internal/tasks/{task_id}/segments"
        for attempt in range(SEGMENTS_TRIES):
            try:
                response = await self._http.post(path, json=body, headers=self._internal)
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
        return [job["id"] for job in response.json()["jobs"]]

    async def _ask(self, request: Request, path: str) -> dict[str, Any]:
        headers = {k: request.headers[k] for k in _FORWARDED if k in request.headers}
        params = {k: request.query_params[k] for k in _FORWARDED_QUERY if k in request.query_params}
        key = (path, tuple(sorted(headers.items())), tuple(sorted(params.items())))
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < ACCESS_TTL_S:
            result: dict[str, Any] = cached[1]
            return result
        response = await self._http.get(path, headers=headers, params=params)
        if response.status_code != 200:
            raise _problem(response, "checking access")
        body: dict[str, Any] = response.json()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, body)
        return body


def _problem(response: httpx.Response, doing: str) -> Problem:
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
