"""Export requests: who may ask, one running export per caller and parameters, the queue,
and the download of the archive."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request

from tessera.export.exports import repository
from tessera.export.exports.schemas import (
    Destination,
    ExportOptionsIn,
    ExportParams,
    Location,
    Target,
)
from tessera.export.formats.registry import exporter_named
from tessera.export.locations import StorageOwner, check_cloud_storage, choose
from tessera.export.queue import EXPORTS
from tessera.platform.auth import Principal
from tessera.platform.bus import Outbox
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.contracts.ingest import DEFAULT_FRAME_QUALITY
from tessera.platform.db import Database
from tessera.platform.errors import NotFound, Problem, bad_request
from tessera.platform.proxying import public_url
from tessera.platform.requests import Operation, RequestStore
from tessera.platform.storage import ObjectNotFound, ObjectStorage

_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f"/\\]')


@dataclass(frozen=True)
class _Target:
    """What an export is of: the request's operation, the dimension of the object's media,
    a project's tasks (and its name and bug tracker, for a backup's `project.json`), the
    object's place for `export.finished` (its task, project, job and organization ids,
    those it has), and whose default storage it goes to (a job's task's)."""

    operation: Operation
    dimension: str
    task_ids: list[int]
    scope: dict[str, int | None]
    storage_owner: tuple[StorageOwner, int]
    project: dict[str, str] | None = None


@dataclass(frozen=True)
class Download:
    """A finished archive, to stream to the client."""

    filename: str
    size: int
    chunks: AsyncIterator[bytes]


class Exports:
    """Starting export requests and reading their archives."""

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        storage: ObjectStorage,
        *,
        annotations: AnnotationsClient,
        ingest: IngestClient,
        requests: RequestStore,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.storage = storage
        self.annotations = annotations
        self.ingest = ingest
        self.requests = requests

    async def start(
        self,
        request: Request,
        principal: Principal,
        params: ExportParams,
        *,
        filename: str | None,
        location: Location | None,
        cloud_storage_id: int | None,
    ) -> str:
        """Queue the export (or find the caller's same export already running); its rq_id.

        The caller must see the object (404 otherwise, as CVAT answers); the format must
        be one Tessera writes, for the object's dimension. With `location=cloud_storage`
        the archive is also written into that storage (which the caller must see), as
        `filename` or the generated name; without `location`, where the object's
        `target_storage` says (a job's task's; `tessera.export.locations`). A quality of
        video frames goes with jpeg and webp only (400 with png).
        """
        exporter = exporter_named(params.format)
        if exporter is None:
            raise bad_request(
                f"Unknown export format {params.format!r}; GET /api/server/annotation/formats "
                "lists the exporters.",
                "format",
            )
        params = params.model_copy(
            update={"format": exporter.name, "options": _image_options(params)}
        )
        target = await self._target(request, params)
        if target.dimension not in exporter.dimensions:
            raise bad_request(
                f"{exporter.name} does not take {target.dimension.upper()} tasks.", "format"
            )
        return await self._enqueue(
            request, principal, params, target, name=_filename(filename, params),
            filename=filename, location=location, cloud_storage_id=cloud_storage_id,
        )  # fmt: skip

    async def start_backup(
        self,
        request: Request,
        principal: Principal,
        params: ExportParams,
        *,
        filename: str | None,
        location: Location | None,
        cloud_storage_id: int | None,
    ) -> str:
        """Queue the backup of a task or a project (`params` in `BACKUP_FORMAT`), or find
        the caller's same backup already running; its rq_id. The caller must see the
        object (404 otherwise); `location` (or the object's `target_storage`) as for
        `start`."""
        target = await self._target(request, params)
        name = _backup_filename(filename, params)
        return await self._enqueue(
            request, principal, params, target, name=name, filename=filename,
            location=location, cloud_storage_id=cloud_storage_id,
        )  # fmt: skip

    async def _enqueue(
        self,
        request: Request,
        principal: Principal,
        params: ExportParams,
        target: _Target,
        *,
        name: str,
        filename: str | None,
        location: Location | None,
        cloud_storage_id: int | None,
    ) -> str:
        """Record the request, its export row and its queued message in one transaction
        (or answer the caller's same request still running); its rq_id."""
        owner, owner_id = target.storage_owner
        chosen = await choose(
            self.annotations, request, location=location, cloud_storage_id=cloud_storage_id,
            owner=owner, owner_id=owner_id, field="target_storage",
        )  # fmt: skip
        if chosen.location == "cloud_storage":
            storage_id = await check_cloud_storage(self.ingest, request, chosen)
            key = filename.strip().lstrip("/") if filename and filename.strip() else name
            params = params.model_copy(
                update={"destination": Destination(cloud_storage_id=storage_id, key=key)}
            )
        context = await self.annotations.context(request)
        async with self.database.transaction() as session:
            running = await repository.running_request(
                session, principal.user_id, params.request_key
            )
            if running is not None:
                return running
            rq_id = await self.requests.create(
                session,
                target.operation,
                owner_id=principal.user_id,
                organization_id=context.organization_id,
            )
            await repository.insert(session, rq_id, principal.user_id, params, name)
            payload = {
                "params": params.model_dump(mode="json"),
                "base_url": public_url(request, "/"),
                "task_ids": target.task_ids,
                "scope": target.scope,
                "filename": name,
                **({"project": target.project} if target.project is not None else {}),
            }
            await EXPORTS.enqueue(session, self.outbox, rq_id, payload)
        return rq_id

    async def download(
        self, principal: Principal, target: Target, target_id: int, rq_id: str, *, backup: bool
    ) -> Download:
        """The archive of a finished export request of the caller (404 for another's, for
        one of another object or of the other kind (a backup, or a dataset), unfinished,
        or expired)."""
        async with self.database.transaction() as session:
            found = await self.requests.get(session, rq_id, principal)
            row = await repository.by_request(session, rq_id)
        expired = NotFound(f"The result of export {rq_id} has expired; export again.")
        operation = found.operation
        exported = {"project": operation.project_id, "task": operation.task_id,
                    "job": operation.job_id}  # fmt: skip
        if operation.target != target or exported[target] != target_id:
            raise NotFound(f"Request {rq_id} is not an export of this {target}.")
        if (operation.type == "export:backup") != backup:
            kind = "a backup" if backup else "a dataset export"
            raise NotFound(f"Request {rq_id} is not {kind} of this {target}.")
        if found.status != "finished":
            raise Problem(
                409, f"Export {rq_id} is {found.status}; download it once it has finished."
            )
        if row is None or not row.done or row.object_key is None:
            raise expired
        if row.expiry_date <= datetime.now(UTC):
            raise expired
        try:
            size = await self.storage.size(row.object_key)
        except ObjectNotFound as exc:
            raise expired from exc
        return Download(row.filename, size, self.storage.stream(row.object_key))

    async def _target(self, request: Request, params: ExportParams) -> _Target:
        """What the export is of (404 for an object the caller does not see)."""
        base = {
            "type": params.operation_type,
            "target": params.target,
            "format": None if params.backup else params.format,
        }
        if params.target == "project":
            project = await self.annotations.project_access(request, params.target_id)
            operation = Operation(**base, project_id=project.project_id)
            scope = {"project_id": project.project_id, "organization_id": project.organization_id}
            about = {"name": project.name, "bug_tracker": project.bug_tracker}
            owner: tuple[StorageOwner, int] = ("project", project.project_id)
            return _Target(operation, project.dimension, project.task_ids, scope, owner, about)
        if params.target == "job":
            job = await self.annotations.job_access(request, params.target_id)
            task = await self.annotations.task_access(request, job.task_id)
            operation = Operation(**base, job_id=job.job_id, task_id=job.task_id)
            scope = {
                "job_id": job.job_id,
                "task_id": task.task_id,
                "project_id": task.project_id,
                "organization_id": task.organization_id,
            }
            return _Target(operation, task.dimension, [], scope, ("task", task.task_id))
        task = await self.annotations.task_access(request, params.target_id)
        operation = Operation(**base, task_id=task.task_id, project_id=task.project_id)
        scope = {
            "task_id": task.task_id,
            "project_id": task.project_id,
            "organization_id": task.organization_id,
        }
        return _Target(operation, task.dimension, [], scope, ("task", task.task_id))


def _image_options(params: ExportParams) -> ExportOptionsIn:
    """The options with their image settings made definite, so that equal archives have
    equal keys: a lossy format's quality defaults to `DEFAULT_FRAME_QUALITY`, and without
    `save_images` the settings change nothing and are dropped. 400 for a quality with png."""
    options = params.options
    if options.image_format == "png" and options.image_quality is not None:
        raise bad_request(
            "image_quality is the quality of jpeg and webp frames; png frames take none.",
            "image_quality",
        )
    if not params.save_images:
        return options.model_copy(update={"image_format": "png", "image_quality": None})
    if options.image_format != "png" and options.image_quality is None:
        return options.model_copy(update={"image_quality": DEFAULT_FRAME_QUALITY})
    return options


def _filename(given: str | None, params: ExportParams) -> str:
    """The download's file name: the client's (made safe), else CVAT's pattern."""
    if given and given.strip():
        name = _UNSAFE_FILENAME.sub("_", given.strip())
        return name if name.lower().endswith(".zip") else f"{name}.zip"
    kind = "dataset" if params.save_images else "annotations"
    stamp = datetime.now(UTC).strftime("%Y_%m_%d_%H_%M_%S")
    fmt = params.format.lower().replace(" ", "_")
    return f"{params.target}_{params.target_id}_{kind}_{stamp}_{fmt}.zip"


def _backup_filename(given: str | None, params: ExportParams) -> str:
    """A backup's file name: the client's (made safe), else CVAT's pattern
    `<task|project>_<id>_backup_<timestamp>.zip`."""
    if given and given.strip():
        return _filename(given, params)
    stamp = datetime.now(UTC).strftime("%Y_%m_%d_%H_%M_%S")
    return f"{params.target}_{params.target_id}_backup_{stamp}.zip"
