"""The client of the annotations service's internal API (`tessera.platform.contracts.annotations`).

Access is asked with the caller's own credentials (their bearer token and organization
context), so the answer is exactly what the annotations service would decide for them;
its refusals (401, 403, 404) reach the caller unchanged. An object's default storages
(`default_storages`, off the public read of the project, task or job) are asked the
same way. Making jobs, reading snapshots and importing annotations use the service
token given to the client (an administrator's). Access answers are cached for a few
seconds per caller, because a client reading a task fetches many chunks in a row.

A snapshot (the export service's read of annotations) is an async context manager that
opens the stream and reads its header; iterating it gives each object as it arrives:

    async with client.snapshot(task_id=task_id) as snapshot:
        labels = snapshot.header.labels
        async for item in snapshot:            # SnapshotItem(kind, job_id, data)
            ...                                # data: the object as a dict (orjson)
    # snapshot.end: the counts, once the stream was read to its end

A stream that ends without its `end` line (cut short, or failed on the server), or
whose counts differ from the objects read, raises `SnapshotIncomplete`.

An import (the export service's write of annotations read from a file) asks what to
match the file against, then writes the matched document all or nothing, for the user
who asked for it:

    target = await client.import_target(task_id=task_id)    # labels, jobs, version
    written = await client.import_annotations(
        task_id=task_id, document=orjson.dumps(document), action="replace", actor_id=user_id
    )                                                       # ImportWritten: counts, version

A backup's restore makes the task or project, changes its jobs' stages and deletes what a
failed restore made, through the public API with the service token (`create_object`,
`update_job`, `delete_object`); a project's dataset import also reads and adds the
project's labels (`project_labels`, `add_project_labels`, `delete_label`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal, NamedTuple, TypeVar

import httpx
import orjson
from fastapi import Request
from pydantic import BaseModel

from tessera.platform.bus import ACTOR_HEADER
from tessera.platform.clients.forwarding import caller_credentials
from tessera.platform.clients.retry import send_with_retries
from tessera.platform.contracts.annotations import (
    CONTEXT_PATH,
    JOB_ACCESS_PATH,
    JOB_IMPORT_PATH,
    JOB_IMPORT_TARGET_PATH,
    JOB_SNAPSHOT_PATH,
    PREFIX,
    PROJECT_ACCESS_PATH,
    SEGMENTS_PATH,
    SNAPSHOT_KINDS,
    SNAPSHOT_MEDIA_TYPE,
    TASK_ACCESS_PATH,
    TASK_IMPORT_PATH,
    TASK_IMPORT_TARGET_PATH,
    TASK_SNAPSHOT_PATH,
    CallerContext,
    DefaultStorages,
    ImportAction,
    ImportTarget,
    ImportWritten,
    JobAccess,
    ProjectAccess,
    SegmentsCreate,
    SegmentsCreated,
    SnapshotEnd,
    SnapshotError,
    SnapshotHeader,
    SnapshotKind,
    SnapshotLabel,
    TaskAccess,
)
from tessera.platform.errors import Problem
from tessera.platform.telemetry import http_client

ACCESS_TTL_S = 5.0
# A snapshot may pause between lines while PostgreSQL sorts the rows of overlapping jobs.
SNAPSHOT_TIMEOUT = httpx.Timeout(30.0, read=600.0)
# An import of a few hundred thousand objects answers once they are all stored.
IMPORT_TIMEOUT = httpx.Timeout(60.0, read=600.0)
TRIES = 3  # of an idempotent call
CACHE_LIMIT = 10_000

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

    async def project_access(self, request: Request, project_id: int) -> ProjectAccess:
        """The caller's access to a project and its tasks; their 401/403/404 as a problem."""
        path = PREFIX + PROJECT_ACCESS_PATH.format(project_id=project_id)
        return await self._ask(request, path, ProjectAccess)

    async def default_storages(
        self, request: Request, kind: Literal["project", "task", "job"], object_id: int
    ) -> DefaultStorages:
        """The default storages of an object the caller sees (a job's are its task's),
        read afresh (not cached: a change of them applies to the next request); their
        401/403/404 as a problem."""
        return await self._ask(request, f"/api/{kind}s/{object_id}", DefaultStorages, cache=False)

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
        response = await send_with_retries(
            lambda: self._http.post(path, json=content, headers=self._internal), TRIES
        )
        if response.status_code not in (200, 201):
            raise _problem(response, "making the task's jobs")
        self.forget(task_id)
        return SegmentsCreated.model_validate_json(response.content)

    async def import_target(
        self, *, task_id: int | None = None, job_id: int | None = None
    ) -> ImportTarget:
        """What an import into a task or a job (one of `task_id`, `job_id`) matches a file
        against: the labels, dimension, size, jobs and annotations' version.

        A read, so retried when the connection fails or the service is briefly
        unavailable; the service's refusals (403 for a token that is not an
        administrator's, 404 for a missing task or job) raise as problems.
        """
        path = _scoped("import_target", TASK_IMPORT_TARGET_PATH, JOB_IMPORT_TARGET_PATH,
                       task_id, job_id)  # fmt: skip
        response = await send_with_retries(
            lambda: self._http.get(path, headers=self._internal), TRIES
        )
        if response.status_code != 200:
            raise _problem(response, "reading an import's target")
        return ImportTarget.model_validate_json(response.content)

    async def import_annotations(
        self,
        *,
        task_id: int | None = None,
        job_id: int | None = None,
        document: bytes,
        action: ImportAction,
        actor_id: int,
    ) -> ImportWritten:
        """Store `document` (CVAT's LabeledData JSON, serialised) in a task or a job (one
        of `task_id`, `job_id`), all or nothing, for the user `actor_id` (events, the
        audit log and webhooks name them); what was written and the new version.

        `replace` deletes the annotations there first (as CVAT's import does); `append`
        adds to them. Sent once, never retried: an append whose answer was lost may have
        been stored, and sending it again would store its objects twice (a replace again
        would bump the version and announce the change a second time). A document sent
        with the `version` of `import_target` is refused (409) when the annotations
        changed in between. The service's refusals (403, 404, 409, 422 naming the
        document's fields) raise as problems, with their `errors`.
        """
        path = _scoped("import_annotations", TASK_IMPORT_PATH, JOB_IMPORT_PATH, task_id, job_id)
        headers = {**self._internal, "Content-Type": "application/json",
                   ACTOR_HEADER: str(actor_id)}  # fmt: skip
        response = await self._http.post(
            path, content=document, params={"action": action}, headers=headers,
            timeout=IMPORT_TIMEOUT,
        )  # fmt: skip
        if response.status_code != 200:
            raise _problem(response, "importing annotations")
        return ImportWritten.model_validate_json(response.content)

    async def create_object(
        self, kind: Literal["task", "project"], body: dict[str, Any], organization_id: int | None
    ) -> int:
        """Create a task or a project through the public API (`POST /api/{tasks|projects}`,
        CVAT's write body, `owner_id` naming its owner) in an organization (None: the
        owner's personal workspace), with the service token; its id. Not retried (a
        creation sent twice would make two). Refusals (422 naming the body's fields) raise
        as problems."""
        params = {"org_id": str(organization_id)} if organization_id is not None else {}
        response = await self._http.post(
            f"/api/{kind}s", json=body, params=params, headers=self._internal
        )
        if response.status_code != 201:
            raise _problem(response, f"creating a {kind}")
        return int(response.json()["id"])

    async def delete_object(self, kind: Literal["task", "project"], object_id: int) -> None:
        """Delete a task or a project (with its tasks) with the service token; one already
        gone is no error."""
        response = await send_with_retries(
            lambda: self._http.delete(f"/api/{kind}s/{object_id}", headers=self._internal),
            TRIES,
        )
        if response.status_code not in (204, 404):
            raise _problem(response, f"deleting a {kind}")
        if kind == "task":
            self.forget(object_id)

    async def update_job(self, job_id: int, body: dict[str, Any]) -> None:
        """Change a job's `stage`, `state` or `assignee` (`PATCH /api/jobs/{id}`) with the
        service token."""
        response = await send_with_retries(
            lambda: self._http.patch(f"/api/jobs/{job_id}", json=body, headers=self._internal),
            TRIES,
        )
        if response.status_code != 200:
            raise _problem(response, "changing a job")

    async def project_labels(self, project_id: int) -> list[SnapshotLabel]:
        """A project's labels, with their attributes and sublabels, in id order (`GET
        /api/labels?project_id=`, every page), with the service token; 404 for a project
        that is gone raises as a problem."""
        params = {"project_id": str(project_id), "page_size": "all"}
        response = await send_with_retries(
            lambda: self._http.get("/api/labels", params=params, headers=self._internal), TRIES
        )
        if response.status_code != 200:
            raise _problem(response, "reading a project's labels")
        return [SnapshotLabel.model_validate(label) for label in response.json()["results"]]

    async def add_project_labels(self, project_id: int, labels: list[dict[str, Any]]) -> None:
        """Add labels (CVAT's label write bodies) to a project (`PATCH /api/projects/{id}`)
        with the service token. Not retried: a repeat would refuse the names as taken."""
        response = await self._http.patch(
            f"/api/projects/{project_id}", json={"labels": labels}, headers=self._internal
        )
        if response.status_code != 200:
            raise _problem(response, "adding a project's labels")

    async def delete_label(self, label_id: int) -> None:
        """Delete a label, with its sublabels and the annotations using it, with the
        service token; one already gone is no error."""
        response = await send_with_retries(
            lambda: self._http.delete(f"/api/labels/{label_id}", headers=self._internal), TRIES
        )
        if response.status_code not in (204, 404):
            raise _problem(response, "deleting a label")

    @asynccontextmanager
    async def snapshot(
        self, *, task_id: int | None = None, job_id: int | None = None, frame: int | None = None
    ) -> AsyncIterator[Snapshot]:
        """The snapshot of a task's or a job's annotations (one of `task_id`, `job_id`):
        the stream opened and its header read; iterate it for the objects. With a task
        `frame`, only what may show on that frame (its tags and shapes, the tracks that may
        be visible there, whole) from the jobs that hold it.

        The service's refusals (403 for a token that is not an administrator's, 404 for a
        missing task or job) raise as problems; a stream that ends early raises
        `SnapshotIncomplete`.
        """
        path = _scoped("snapshot", TASK_SNAPSHOT_PATH, JOB_SNAPSHOT_PATH, task_id, job_id)
        headers = {**self._internal, "Accept": SNAPSHOT_MEDIA_TYPE}
        params = {} if frame is None else {"frame": str(frame)}
        async with self._http.stream(
            "GET", path, headers=headers, params=params, timeout=SNAPSHOT_TIMEOUT
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise _problem(response, "reading a snapshot")
            lines = _lines(response)
            try:
                first = await anext(lines, None)
            except httpx.TransportError as exc:
                raise SnapshotIncomplete(f"{path}: the stream broke before its header") from exc
            if first is None:
                raise SnapshotIncomplete(f"{path}: the stream ended before its header")
            parsed = orjson.loads(first)
            if not isinstance(parsed, dict) or "header" not in parsed:
                raise SnapshotIncomplete(f"{path}: the stream does not start with a header")
            try:
                yield Snapshot(path, SnapshotHeader.model_validate(parsed["header"]), lines)
            finally:
                await lines.aclose()

    async def _ask(
        self, request: Request, path: str, answer: type[Answer], *, cache: bool = True
    ) -> Answer:
        headers, params = caller_credentials(request)
        key = (path, tuple(sorted(headers.items())), tuple(sorted(params.items())))
        now = time.monotonic()
        cached = self._cache.get(key) if cache else None
        if cached is not None and now - cached[0] < ACCESS_TTL_S and isinstance(cached[1], answer):
            return cached[1]
        response = await self._http.get(path, headers=headers, params=params)
        if response.status_code != 200:
            raise _problem(response, "checking access")
        parsed = answer.model_validate_json(response.content)
        if not cache:
            return parsed
        if len(self._cache) > CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (now, parsed)
        return parsed


def _scoped(
    method: str, task_path: str, job_path: str, task_id: int | None, job_id: int | None
) -> str:
    """The internal path of a task's or a job's resource (exactly one of the ids given)."""
    if (task_id is None) == (job_id is None):
        raise TypeError(f"{method}() takes one of task_id and job_id")
    if task_id is not None:
        return PREFIX + task_path.format(task_id=task_id)
    return PREFIX + job_path.format(job_id=job_id)


def _problem(response: httpx.Response, doing: str) -> Problem:
    """The caller's refusal as it came (its detail and the fields at fault), or 502 for a
    failure of the annotations service."""
    if response.status_code in (401, 403, 404, 409, 422):
        try:
            body = response.json()
            detail = str(body.get("detail", response.text))
            errors = body.get("errors") or []
        except (ValueError, AttributeError):
            detail, errors = response.text, []
        headers = {}
        if "www-authenticate" in response.headers:
            headers["WWW-Authenticate"] = response.headers["www-authenticate"]
        return Problem(response.status_code, detail, headers=headers, errors=errors)
    return Problem(
        502, f"The annotations service failed while {doing} (HTTP {response.status_code})."
    )


class SnapshotIncomplete(Exception):
    """A snapshot stream that ended without its closing line: cut short, failed on the
    server (its message then says why), or with counts that differ from what was read."""


class SnapshotItem(NamedTuple):
    """An object of a snapshot: its kind, the job that holds it, and the object (CVAT's
    JSON form of the annotations GET, parsed with orjson)."""

    kind: SnapshotKind
    job_id: int
    data: dict[str, Any]


class Snapshot:
    """An open snapshot stream (`AnnotationsClient.snapshot`): the header, then the objects
    in frame order by iterating it, once; `end` holds the counts once it was read through."""

    def __init__(self, path: str, header: SnapshotHeader, lines: AsyncIterator[bytes]) -> None:
        self.path = path
        self.header = header
        self.end: SnapshotEnd | None = None
        self._lines = lines

    async def __aiter__(self) -> AsyncIterator[SnapshotItem]:
        counts = dict.fromkeys(SNAPSHOT_KINDS, 0)
        try:
            async for line in self._lines:
                if self.end is not None:
                    raise SnapshotIncomplete(f"{self.path}: a line after the end line")
                obj = orjson.loads(line)
                for kind in SNAPSHOT_KINDS:
                    data = obj.get(kind)
                    if data is not None:
                        counts[kind] += 1
                        yield SnapshotItem(kind, obj["job_id"], data)
                        break
                else:
                    self._close(obj, counts)
        except httpx.TransportError as exc:
            raise SnapshotIncomplete(f"{self.path}: the stream broke: {exc}") from exc
        if self.end is None:
            raise SnapshotIncomplete(f"{self.path}: the stream ended without its end line")

    def _close(self, obj: dict[str, Any], counts: dict[SnapshotKind, int]) -> None:
        if "error" in obj:
            error = SnapshotError.model_validate(obj["error"])
            raise SnapshotIncomplete(f"{self.path}: {error.detail}")
        if "end" not in obj:
            raise SnapshotIncomplete(f"{self.path}: an unexpected line: {sorted(obj)}")
        end = SnapshotEnd.model_validate(obj["end"])
        read = SnapshotEnd(tags=counts["tag"], shapes=counts["shape"], tracks=counts["track"])
        if end != read:
            raise SnapshotIncomplete(f"{self.path}: the stream ended with {end!r}, read {read!r}")
        self.end = end


async def _lines(response: httpx.Response) -> AsyncGenerator[bytes]:
    """The response body's lines (without their newlines); a last line without a newline
    is a cut one and is dropped."""
    pieces: list[bytes] = []
    async for chunk in response.aiter_bytes():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if pieces:
                pieces.append(chunk[start:end])
                yield b"".join(pieces)
                pieces.clear()
            else:
                yield chunk[start:end]
            start = end + 1
        if start < len(chunk):
            pieces.append(chunk[start:])
