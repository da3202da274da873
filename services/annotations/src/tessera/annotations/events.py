"""Events this service publishes through the outbox, and their payloads.

- `tasks.created`: `{task_id, project_id, organization_id, owner_id, name}`
- `tasks.deleted`: `{task_id, project_id, organization_id}`, also for each task of a
  deleted project or organization
- `jobs.updated`: `{job_id, task_id, changes: {field: {old, new}}}`, for `stage`,
  `state` and `assignee_id`, only when one of them changed
- `annotations.changed`: `{job_id, task_id, version, created, updated, deleted}` (counts
  of top-level objects), from `tessera.annotations.annotations.service`
- `labels.changed`: `{project_id, task_id, created, updated, deleted}`, counts of labels
  (sublabels included) of a project's (`task_id` null) or a task's (`project_id` null)
  label set, whenever a request changed any
- `memberships.changed`: `{membership_id, organization_id, user_id, old_role, new_role}`
  when a member joins (an accepted invitation: `old_role` null), gets another role, or
  leaves or is removed (`new_role` null)

Every event carries its actor (the request's caller) in the `Tessera-Actor` header
(`Event.actor_id`), recorded by the outbox.

Events of other services that this service consumes (`FOREIGN`), for webhooks only:

- `export.finished` (the export service's, `tessera.platform.contracts.export`):
  `{rq_id, status, message, format, target, task_id, project_id, job_id,
  organization_id, result_url, location, cloud_storage_id, filename}`
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import projects, tasks
from tessera.platform.bus import Handler, IdempotentConsumer, Outbox
from tessera.platform.contracts.export import EXPORT_FINISHED, EXPORT_STREAM
from tessera.platform.service import Platform

TASKS_CREATED = "tasks.created"
TASKS_DELETED = "tasks.deleted"
JOBS_UPDATED = "jobs.updated"
ANNOTATIONS_CHANGED = "annotations.changed"
LABELS_CHANGED = "labels.changed"
MEMBERSHIPS_CHANGED = "memberships.changed"
# The streams and subjects of every event above, for consumers of this service.
CONSUMED = (
    ("TASKS", "tasks.>"),
    ("JOBS", "jobs.>"),
    ("ANNOTATIONS", "annotations.>"),
    ("LABELS", "labels.>"),
    ("MEMBERSHIPS", "memberships.>"),
)
# The streams and subjects of the other services' events that webhooks are told about.
FOREIGN = ((EXPORT_STREAM, EXPORT_FINISHED),)


def _outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.platform.outbox
    return outbox


EventOutbox = Annotated[Outbox, Depends(_outbox)]


async def task_created(outbox: Outbox, session: AsyncSession, task: Mapping[str, Any]) -> None:
    """Queue `tasks.created` for a task row."""
    await outbox.add(
        session,
        TASKS_CREATED,
        {
            "task_id": task["id"],
            "project_id": task["project_id"],
            "organization_id": task["organization_id"],
            "owner_id": task["owner_id"],
            "name": task["name"],
        },
    )


async def tasks_deleted(
    outbox: Outbox, session: AsyncSession, deleted: Sequence[Mapping[str, Any]]
) -> None:
    """Queue `tasks.deleted` for each of the rows (`id`, `project_id`, `organization_id`)."""
    for task in deleted:
        await outbox.add(
            session,
            TASKS_DELETED,
            {
                "task_id": task["id"],
                "project_id": task["project_id"],
                "organization_id": task["organization_id"],
            },
        )


async def job_updated(
    outbox: Outbox,
    session: AsyncSession,
    job: Mapping[str, Any],
    changes: Mapping[str, tuple[Any, Any]],
) -> None:
    """Queue `jobs.updated` with what changed (field -> (old, new))."""
    await outbox.add(
        session,
        JOBS_UPDATED,
        {
            "job_id": job["id"],
            "task_id": job["task_id"],
            "changes": {name: {"old": old, "new": new} for name, (old, new) in changes.items()},
        },
    )


async def labels_changed(
    outbox: Outbox,
    session: AsyncSession,
    *,
    project_id: int | None,
    task_id: int | None,
    created: int,
    updated: int,
    deleted: int,
) -> None:
    """Queue `labels.changed` with counts of labels created, updated and deleted."""
    await outbox.add(
        session,
        LABELS_CHANGED,
        {
            "project_id": project_id,
            "task_id": task_id,
            "created": created,
            "updated": updated,
            "deleted": deleted,
        },
    )


async def membership_changed(
    outbox: Outbox,
    session: AsyncSession,
    membership: Mapping[str, Any],
    *,
    old_role: str | None,
    new_role: str | None,
) -> None:
    """Queue `memberships.changed` for a membership row (`id`, `organization_id`, `user_id`)."""
    await outbox.add(
        session,
        MEMBERSHIPS_CHANGED,
        {
            "membership_id": membership["id"],
            "organization_id": membership["organization_id"],
            "user_id": membership["user_id"],
            "old_role": old_role,
            "new_role": new_role,
        },
    )


@dataclass(frozen=True)
class EventScope:
    """What an event is about: its organization, project, task and job (where it has them)."""

    organization_id: int | None = None
    project_id: int | None = None
    task_id: int | None = None
    job_id: int | None = None


async def scope_of(session: AsyncSession, data: Mapping[str, Any]) -> EventScope:
    """The scope of an event's payload; what the payload lacks is looked up (a task's
    project and organization, a project's organization) and stays None once deleted."""
    task_id, project_id = data.get("task_id"), data.get("project_id")
    organization_id = data.get("organization_id")
    if task_id is not None and "organization_id" not in data:
        row = (
            await session.execute(
                sa.select(tasks.c.project_id, tasks.c.organization_id).where(tasks.c.id == task_id)
            )
        ).first()
        if row is not None:
            project_id, organization_id = row.project_id, row.organization_id
    elif project_id is not None and "organization_id" not in data:
        organization_id = await session.scalar(
            sa.select(projects.c.organization_id).where(projects.c.id == project_id)
        )
    return EventScope(organization_id, project_id, task_id, data.get("job_id"))


def consumers_of_every_event(
    platform: Platform, name: str, handler: Handler, *, also: Sequence[tuple[str, str]] = ()
) -> list[IdempotentConsumer]:
    """One durable consumer per stream of `CONSUMED` and of `also` (such as `FOREIGN`),
    named `{name}-{stream}` and filtered to its subject, all calling `handler` (once per
    message id)."""
    return [
        IdempotentConsumer(
            platform.database,
            platform.bus,
            platform.schema,
            stream=stream,
            durable=f"{name}-{stream.lower()}",
            subject=subject,
            handler=handler,
        )
        for stream, subject in (*CONSUMED, *also)
    ]
