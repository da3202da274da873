"""`/api/internal/{tasks|jobs}/{id}/import-target` and
`/api/internal/{tasks|jobs}/{id}/annotations/import`: annotation import's reads and writes
for the export service (administrators only). Semantics in service.py; the contract is
`tessera.platform.contracts.annotations`'s, the client
`tessera.platform.clients.annotations.AnnotationsClient.import_target` and
`.import_annotations`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.access import Context, RequestContext
from tessera.annotations.annotations.router import LABELED_DATA_BODY
from tessera.annotations.annotations.service import parse_body
from tessera.annotations.events import EventOutbox
from tessera.annotations.imports import service
from tessera.annotations.snapshots.service import Scope
from tessera.platform.auth import CurrentUser, Principal
from tessera.platform.bus import ACTOR_HEADER, Outbox
from tessera.platform.contracts import annotations as contract
from tessera.platform.contracts.annotations import ImportAction, ImportTarget, ImportWritten
from tessera.platform.db import Database, DbSession, get_database
from tessera.platform.errors import Problem

router = APIRouter(prefix=contract.PREFIX, tags=["internal"])
TargetDatabase = Annotated[Database, Depends(get_database)]
Actor = Annotated[
    int | None,
    Header(
        alias=ACTOR_HEADER,
        ge=1,
        description="The id of the user who asked for the import, whom the write is "
        "attributed to (events, audit log, webhooks); without it, the caller.",
    ),
]
ActionQuery = Annotated[
    ImportAction,
    Query(
        description="`replace` (CVAT's import): delete the annotations there first; "
        "`append`: add to them."
    ),
]

_TARGET: dict[int | str, dict[str, Any]] = {
    403: {"description": "The caller is not an administrator."},
    404: {"description": "No such task or job."},
}
_WRITE: dict[int | str, dict[str, Any]] = {
    **_TARGET,
    409: {"description": "The document's `version` is not the current one."},
    422: {
        "description": "The document is invalid (nothing was written), or the actor is "
        "not an active user; `errors` names the fields."
    },
}


def _admin_only(principal: Principal) -> None:
    if not principal.is_superuser:
        raise Problem(403, "Only the export service (an administrator) imports annotations.")


async def _target(principal: Principal, database: Database, scope: Scope, id_: int) -> ImportTarget:
    _admin_only(principal)
    return await service.import_target(database, scope, id_)


async def _import(
    request: Request, ctx: Context, session: AsyncSession, outbox: Outbox, *,
    scope: Scope, id_: int, action: ImportAction, actor: int | None,
) -> ImportWritten:  # fmt: skip
    _admin_only(ctx.principal)
    body = parse_body(await request.body())
    return await service.import_annotations(
        session, ctx, outbox, scope=scope, id_=id_, action=action, body=body, actor_id=actor
    )


@router.get(
    contract.TASK_IMPORT_TARGET_PATH,
    responses=_TARGET,
    summary="What an import into a task matches a file against (export service, administrators)",
)
async def task_import_target(
    task_id: int, principal: CurrentUser, database: TargetDatabase
) -> ImportTarget:
    """The task's labels, dimension, size, annotation jobs and annotations' version."""
    return await _target(principal, database, "task", task_id)


@router.get(
    contract.JOB_IMPORT_TARGET_PATH,
    responses=_TARGET,
    summary="What an import into a job matches a file against (export service, administrators)",
)
async def job_import_target(
    job_id: int, principal: CurrentUser, database: TargetDatabase
) -> ImportTarget:
    """The job's task's labels, dimension and size, the job and its version."""
    return await _target(principal, database, "job", job_id)


@router.post(
    contract.TASK_IMPORT_PATH,
    responses=_WRITE,
    openapi_extra=LABELED_DATA_BODY,
    summary="Store imported annotations in a task (export service, administrators)",
)
async def import_task_annotations(
    task_id: int,
    *,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    outbox: EventOutbox,
    actor: Actor = None,
    action: ActionQuery = "replace",
) -> ImportWritten:
    """Replace the task's annotations with the document, or append it, all or nothing
    (as `PUT` or `PATCH ?action=create` of `/api/tasks/{id}/annotations`)."""
    return await _import(
        request, ctx, session, outbox, scope="task", id_=task_id, action=action, actor=actor
    )


@router.post(
    contract.JOB_IMPORT_PATH,
    responses=_WRITE,
    openapi_extra=LABELED_DATA_BODY,
    summary="Store imported annotations in a job (export service, administrators)",
)
async def import_job_annotations(
    job_id: int,
    *,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    outbox: EventOutbox,
    actor: Actor = None,
    action: ActionQuery = "replace",
) -> ImportWritten:
    """Replace the job's annotations with the document, or append it, all or nothing
    (as `PUT` or `PATCH ?action=create` of `/api/jobs/{id}/annotations`)."""
    return await _import(
        request, ctx, session, outbox, scope="job", id_=job_id, action=action, actor=actor
    )
