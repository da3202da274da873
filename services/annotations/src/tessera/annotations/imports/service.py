"""The annotations service's side of annotation import: what an importer matches a file
against (`import_target`), and the write of the matched document (`import_annotations`).

The export service reads and matches the file; these store the result. The write is the
annotations PUT (`replace`) or PATCH create (`append`) of `annotations.service`
(`apply_to_task`, `apply_to_job`): the same validation, one transaction, all or nothing,
a version bump and an `annotations.changed` event per job changed. It is done for the
user who asked for the import (the actor that events, the audit log and webhooks name),
not for the export service's account.

`replace` is what CVAT's import does: `TaskAnnotation.import_annotations` and
`JobAnnotation.import_annotations` (cvat/apps/dataset_manager/task.py) call `delete()`
before creating what the file holds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.access import Context
from tessera.annotations.annotations import service as writes
from tessera.annotations.annotations.service import Action, open_reader
from tessera.annotations.snapshots import service as snapshots
from tessera.annotations.snapshots.service import Scope
from tessera.annotations.users.service import check_users
from tessera.platform.auth import actor_scope
from tessera.platform.bus import ACTOR_HEADER, Outbox
from tessera.platform.contracts.annotations import ImportAction, ImportTarget, ImportWritten
from tessera.platform.db import Database

_ACTIONS: dict[ImportAction, Action] = {"replace": Action.PUT, "append": Action.CREATE}


async def import_target(database: Database, scope: Scope, id_: int) -> ImportTarget:
    """The labels, dimension, size, jobs and version of a task or a job, read in one
    consistent snapshot (the snapshot's header); NotFound when it does not exist."""
    async with open_reader(database) as reader:
        head, _ = await snapshots.header(reader.conn, scope, id_)
    return ImportTarget(
        scope=scope,
        task_id=head.task.id,
        project_id=head.task.project_id,
        dimension="3d" if head.task.dimension == "3d" else "2d",
        size=head.task.size,
        version=head.version,
        labels=head.labels,
        jobs=head.jobs,
    )


async def import_annotations(
    session: AsyncSession,
    ctx: Context,
    outbox: Outbox,
    *,
    scope: Scope,
    id_: int,
    action: ImportAction,
    body: Any,
    actor_id: int | None,
) -> ImportWritten:
    """Write a parsed LabeledData document into a task or a job, for `actor_id` (an
    active user; 422 otherwise) or, when None, for the caller.

    The document's `version`, when given, must be the current one (409).
    """
    if actor_id is not None:
        await check_users(session, {f"header.{ACTOR_HEADER}": actor_id}, None)
    with actor_scope(ctx.user_id if actor_id is None else actor_id):
        if scope == "task":
            written = await writes.apply_to_task(
                session, ctx, outbox, task_id=id_, action=_ACTIONS[action], body=body
            )
        else:
            written = await writes.apply_to_job(
                session, ctx, outbox, job_id=id_, action=_ACTIONS[action], body=body
            )
    doc = written.doc
    return ImportWritten(
        tags=len(doc.tags),
        shapes=len(doc.shapes),
        tracks=len(doc.tracks),
        deleted=written.deleted,
        version=written.version,
    )
