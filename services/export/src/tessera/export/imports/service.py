"""Annotation imports as CVAT 2.80's clients send them: who may import into what, the
upload of the file (CVAT's upload protocol, `tessera.platform.uploads`) or the object of
a cloud storage it is in (`location=cloud_storage`, `tessera.export.sources`), and the
request that imports it (`tessera.export.imports.runner`)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.export.imports.registry import known_format
from tessera.export.imports.schemas import ImportParams, ImportTargetKind
from tessera.export.locations import Chosen, choose
from tessera.export.queue import IMPORTS
from tessera.export.sources import CloudObject, FileRequests, Uploaded
from tessera.platform.auth import Principal
from tessera.platform.errors import Problem
from tessera.platform.requests import OPEN, Operation

IMPORT_OPERATION = "import:annotations"
"""The `operation.type` of an import request, as CVAT names it."""


def upload_path(target: ImportTargetKind, target_id: int) -> str:
    """Where the target's import uploads live in the API (TUS appends under it)."""
    return f"/api/{target}s/{target_id}/annotations"


class Imports(FileRequests):
    """Starting annotation imports: access, uploads, requests."""

    async def owner(
        self, request: Request, principal: Principal, target: ImportTargetKind, target_id: int
    ) -> str:
        """The owner of the caller's upload for an import into the target (404 for a
        target they do not see, 403 unless they may change its annotations)."""
        if target == "task":
            task = await self.annotations.task_access(request, target_id)
            allowed = task.can_change
        else:
            job = await self.annotations.job_access(request, target_id)
            allowed = job.can_change
        if not allowed:
            raise Problem(403, f"You are not allowed to change the annotations of {target} "
                          f"{target_id}.")  # fmt: skip
        return f"imports/{target}s/{target_id}/users/{principal.user_id}"

    async def default_location(
        self, request: Request, target: ImportTargetKind, target_id: int
    ) -> Chosen:
        """Where the file of a request that names no `location` is: the task's
        `source_storage` (a job's task's), local when it has none
        (`tessera.export.locations`)."""
        task_id = (
            target_id
            if target == "task"
            else (await self.annotations.job_access(request, target_id)).task_id
        )
        return await choose(
            self.annotations, request, location=None, cloud_storage_id=None, owner="task",
            owner_id=task_id, field="source_storage",
        )  # fmt: skip

    async def start(
        self,
        session: AsyncSession,
        principal: Principal,
        owner: str,
        target: ImportTargetKind,
        target_id: int,
    ) -> None:
        """Upload-Start: forget what an earlier attempt of the caller left; 409 while an
        import the caller started into the target is queued or running. CVAT refuses a
        second import at Upload-Finish; here Upload-Start refuses it already, as that
        import's file is the one this upload would delete or overwrite."""
        await self.uploads.lock(session, owner)
        await self._refuse_a_second_import(session, principal.user_id, target, target_id)
        await self.uploads.start(session, owner)

    async def _refuse_a_second_import(
        self, session: AsyncSession, user_id: int, target: ImportTargetKind, target_id: int
    ) -> None:
        """409 while an import of the user's into the target is queued or started (CVAT:
        "Import job already exists")."""
        table = self.requests.table
        operation = {"type": IMPORT_OPERATION, "target": target, f"{target}_id": target_id}
        found: str | None = await session.scalar(
            sa.select(table.c.id)
            .where(
                table.c.owner_id == user_id,
                table.c.status.in_(OPEN),
                table.c.operation.contains(operation),
            )
            .limit(1)
        )
        if found is not None:
            raise Problem(
                409,
                f"Your import {found} into {target} {target_id} has not ended yet; wait for "
                f"it (GET /api/requests/{found}) or cancel it, then import again.",
            )

    async def finish(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        owner: str,
        params: ImportParams,
    ) -> str:
        """Upload-Finish: queue the import of the caller's uploaded file; its rq_id (400
        for a format Tessera does not read, 409 while another import of the caller's into
        the target has not ended, 422 for a file that was not uploaded)."""
        params = params.model_copy(update={"format": known_format(params.format)})
        # until this transaction ends, the caller's next Upload-Start waits, then sees the
        # request and leaves its file alone (`start`)
        await self.uploads.lock(session, owner)
        await self._refuse_a_second_import(
            session, principal.user_id, params.target, params.target_id
        )
        upload = await self.uploads.file(session, owner, params.filename, principal.user_id)
        params = params.model_copy(update={"filename": upload.filename})
        source = Uploaded(object_key=upload.object_key)
        return await self._queue_import(request, session, principal, params, source)

    async def from_cloud_storage(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        owner: str,
        params: ImportParams,
        *,
        chosen: Chosen,
    ) -> str:
        """`location=cloud_storage` (or a task's cloud `source_storage`): queue the import
        of the object `params.filename` of the cloud storage, which the worker reads; its
        rq_id (400 for a format Tessera does not read or a parameter missing, the caller's
        403 or 404 for the storage, 409 while another import of the caller's into the
        target has not ended)."""
        params = params.model_copy(update={"format": known_format(params.format)})
        source = await self.cloud_object(request, chosen, params.filename)
        await self.uploads.lock(session, owner)
        await self._refuse_a_second_import(
            session, principal.user_id, params.target, params.target_id
        )
        return await self._queue_import(request, session, principal, params, source)

    async def _queue_import(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        params: ImportParams,
        source: Uploaded | CloudObject,
    ) -> str:
        """Record and queue the import of `source`; its rq_id."""
        ids = {f"{params.target}_id": params.target_id}
        operation = Operation(
            type=IMPORT_OPERATION, target=params.target, format=params.format, **ids
        )
        payload = {"params": params.model_dump(mode="json")}
        return await self.queue(
            request, session, principal, work=IMPORTS, operation=operation, source=source,
            payload=payload,
        )  # fmt: skip
