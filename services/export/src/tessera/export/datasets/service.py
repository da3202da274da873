"""Dataset imports into projects as CVAT 2.80's clients send them: who may import into
which project, the upload of the archive (CVAT's upload protocol,
`tessera.platform.uploads`) or the object of a cloud storage it is in
(`location=cloud_storage`, `tessera.export.sources`), and the request that imports it
(`tessera.export.datasets.runner`)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.export.datasets.schemas import DatasetImportParams, ProjectFacts
from tessera.export.imports.registry import known_format
from tessera.export.locations import Chosen, choose
from tessera.export.queue import DATASETS
from tessera.export.sources import CloudObject, FileRequests, Uploaded
from tessera.platform.auth import Principal
from tessera.platform.errors import Problem
from tessera.platform.requests import OPEN, Operation

DATASET_OPERATION = "import:dataset"
"""The `operation.type` of a project's dataset import, as CVAT names it."""


def dataset_path(project_id: int) -> str:
    """Where a project's dataset uploads live in the API (TUS appends under it)."""
    return f"/api/projects/{project_id}/dataset"


def _project_lock(project_id: int) -> str:
    """The key that serialises the steps which start a dataset import into the project."""
    return f"datasets/projects/{project_id}"


class DatasetImports(FileRequests):
    """Starting dataset imports: access, uploads, requests."""

    async def owner(self, request: Request, principal: Principal, project_id: int) -> str:
        """The owner of the caller's upload for a dataset import into the project (404 for
        a project they do not see, 403 unless they may change it)."""
        project = await self.annotations.project_access(request, project_id)
        if not project.can_change:
            raise Problem(403, f"You are not allowed to import a dataset into project "
                          f"{project_id}.")  # fmt: skip
        return f"{_project_lock(project_id)}/users/{principal.user_id}"

    async def default_location(self, request: Request, project_id: int) -> Chosen:
        """Where the archive of a request that names no `location` is: the project's
        `source_storage`, local when it has none (`tessera.export.locations`)."""
        return await choose(
            self.annotations, request, location=None, cloud_storage_id=None,
            owner="project", owner_id=project_id, field="source_storage",
        )  # fmt: skip

    async def start(self, session: AsyncSession, owner: str, project_id: int) -> None:
        """Upload-Start: forget what an earlier attempt of the caller left; 409 while a
        dataset import into the project is queued or running."""
        await self.uploads.lock(session, owner)
        await self._refuse_a_second_import(session, project_id)
        await self.uploads.start(session, owner)

    async def _refuse_a_second_import(self, session: AsyncSession, project_id: int) -> None:
        """409 while a dataset import into the project, anyone's, is queued or started (CVAT
        keeps one per project: "Import job already exists")."""
        await self.uploads.lock(session, _project_lock(project_id))
        table = self.requests.table
        operation = {"type": DATASET_OPERATION, "target": "project", "project_id": project_id}
        found: str | None = await session.scalar(
            sa.select(table.c.id)
            .where(table.c.status.in_(OPEN), table.c.operation.contains(operation))
            .limit(1)
        )
        if found is not None:
            raise Problem(
                409,
                f"A dataset import into project {project_id} ({found}) has not ended yet; "
                f"wait for it (GET /api/requests/{found}) or cancel it, then import again.",
            )

    async def finish(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        owner: str,
        params: DatasetImportParams,
    ) -> str:
        """Upload-Finish: queue the import of the caller's uploaded archive; its rq_id (400
        for a format Tessera does not read, 409 while another dataset import into the
        project has not ended, 422 for a file that was not uploaded)."""
        params = params.model_copy(update={"format": known_format(params.format)})
        await self.uploads.lock(session, owner)
        await self._refuse_a_second_import(session, params.project_id)
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
        params: DatasetImportParams,
        *,
        chosen: Chosen,
    ) -> str:
        """`location=cloud_storage` (or the project's cloud `source_storage`): queue the
        import of the object `params.filename` of the cloud storage, which the worker
        reads; its rq_id (400 for a format Tessera does not read or a parameter missing,
        the caller's 403 or 404 for the storage, 409 while another dataset import into
        the project has not ended)."""
        params = params.model_copy(update={"format": known_format(params.format)})
        source = await self.cloud_object(request, chosen, params.filename)
        await self.uploads.lock(session, owner)
        await self._refuse_a_second_import(session, params.project_id)
        return await self._queue_import(request, session, principal, params, source)

    async def _queue_import(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        params: DatasetImportParams,
        source: Uploaded | CloudObject,
    ) -> str:
        """Record and queue the import of `source`, with the project's facts; its rq_id."""
        project = await self.annotations.project_access(request, params.project_id)
        facts = ProjectFacts(
            organization_id=project.organization_id, owner_id=project.owner_id,
            dimension=project.dimension,
        )  # fmt: skip
        operation = Operation(
            type=DATASET_OPERATION, target="project", project_id=params.project_id,
            format=params.format,
        )  # fmt: skip
        payload = {"params": params.model_dump(mode="json"), "project": facts.model_dump()}
        return await self.queue(
            request, session, principal, work=DATASETS, operation=operation, source=source,
            payload=payload,
        )  # fmt: skip
