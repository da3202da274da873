"""Backup restores as CVAT 2.80's clients send them (`POST /api/{tasks|projects}/backup/`:
`Upload-Start`, a TUS upload of the archive, `Upload-Finish` with `?filename=`): who may
restore, the upload (`tessera.platform.uploads`), and the request that restores it
(`tessera.export.backups.restorer`)."""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.export.backups.restorer import RestoreKind
from tessera.export.queue import RESTORES
from tessera.platform.auth import Principal
from tessera.platform.bus import Outbox
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.contracts.annotations import CallerContext
from tessera.platform.db import Database
from tessera.platform.errors import Problem
from tessera.platform.requests import Operation, RequestStore
from tessera.platform.uploads import Uploads


def restore_path(kind: RestoreKind) -> str:
    """Where restore uploads of a kind live in the API (TUS appends under it)."""
    return f"/api/{kind}s/backup"


class Restores:
    """Starting backup restores: access, uploads, requests."""

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        uploads: Uploads,
        *,
        annotations: AnnotationsClient,
        requests: RequestStore,
        max_upload_bytes: int,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.uploads = uploads
        self.annotations = annotations
        self.requests = requests
        self.max_upload_bytes = max_upload_bytes

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

    async def create_upload(
        self, request: Request, session: AsyncSession, principal: Principal, owner: str, path: str
    ) -> Response:
        """TUS creation of the archive (`201` with its `Location`)."""
        return await self.uploads.tus_create(
            request, session, owner, principal.user_id, path, max_length=self.max_upload_bytes
        )

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
        context = await self.annotations.context(request)
        operation = Operation(type="import:backup", target=kind)
        rq_id = await self.requests.create(
            session, operation, owner_id=principal.user_id,
            organization_id=context.organization_id,
        )  # fmt: skip
        payload = {
            "kind": kind,
            "object_key": upload.object_key,
            "actor_id": principal.user_id,
            "organization_id": context.organization_id,
        }
        await RESTORES.enqueue(session, self.outbox, rq_id, payload)
        return rq_id


def _require_creation(context: CallerContext, kind: RestoreKind) -> None:
    """403 unless the caller may create a task or project in their context."""
    if context.organization_id is not None and not context.manages_organization:
        raise Problem(403, f"You are not allowed to create {kind}s in this organization.")
