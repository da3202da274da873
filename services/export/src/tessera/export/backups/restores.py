"""Backup restores as CVAT 2.80's clients send them (`POST /api/{tasks|projects}/backup/`:
`Upload-Start`, a TUS upload of the archive, `Upload-Finish` with `?filename=`): who may
restore, the upload (`tessera.platform.uploads`) or, with `?location=cloud_storage&
cloud_storage_id=&filename=`, the cloud storage object that is the archive
(`tessera.export.sources`), and the request that restores it
(`tessera.export.backups.restorer`)."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.export.backups.restorer import RestoreKind
from tessera.export.locations import Chosen
from tessera.export.queue import RESTORES
from tessera.export.sources import CloudObject, FileRequests, Uploaded
from tessera.platform.auth import Principal
from tessera.platform.contracts.annotations import CallerContext
from tessera.platform.errors import Problem
from tessera.platform.requests import Operation


def restore_path(kind: RestoreKind) -> str:
    """Where restore uploads of a kind live in the API (TUS appends under it)."""
    return f"/api/{kind}s/backup"


class Restores(FileRequests):
    """Starting backup restores: access, uploads, requests."""

    async def owner(self, request: Request, principal: Principal, kind: RestoreKind) -> str:
        """The owner of the caller's restore upload (403 unless they may create tasks and
        projects where they act: their own workspace, or an organization they manage, as
        the annotations service decides it)."""
        context = await self.annotations.context(request)
        _require_creation(context, kind)
        return f"backups/{kind}s/users/{principal.user_id}"

    async def start(self, session: AsyncSession, owner: str) -> None:
        """Upload-Start: forget what an earlier attempt of the caller left."""
        await self.uploads.start(session, owner)

    async def finish(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        owner: str,
        *,
        kind: RestoreKind,
        filename: str | None,
    ) -> str:
        """Upload-Finish: queue the restore of the caller's uploaded archive; its rq_id
        (422 for a file that was not uploaded)."""
        upload = await self.uploads.file(session, owner, filename, principal.user_id)
        source = Uploaded(object_key=upload.object_key)
        return await self._queue_restore(request, session, principal, kind, source)

    async def from_cloud_storage(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        *,
        kind: RestoreKind,
        cloud_storage_id: int | None,
        filename: str | None,
    ) -> str:
        """`location=cloud_storage`: queue the restore of the archive that is the object
        `filename` of the cloud storage, which the worker reads; its rq_id (400 for a
        parameter missing, the caller's 403 or 404 for the storage)."""
        source = await self.cloud_object(
            request, Chosen("cloud_storage", cloud_storage_id), filename
        )
        return await self._queue_restore(request, session, principal, kind, source)

    async def _queue_restore(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        kind: RestoreKind,
        source: Uploaded | CloudObject,
    ) -> str:
        """Record and queue the restore of `source`; its rq_id."""
        return await self.queue(
            request, session, principal, work=RESTORES,
            operation=Operation(type="import:backup", target=kind), source=source,
            payload={"kind": kind},
        )  # fmt: skip


def _require_creation(context: CallerContext, kind: RestoreKind) -> None:
    """403 unless the caller may create a task or project in their context."""
    if context.organization_id is not None and not context.manages_organization:
        raise Problem(403, f"You are not allowed to create {kind}s in this organization.")
