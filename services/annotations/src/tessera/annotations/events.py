"""Events this service publishes through the outbox, and their payloads.

- `tasks.created`: `{task_id, project_id, organization_id, owner_id, name}`
- `tasks.deleted`: `{task_id, project_id, organization_id}`, also for each task of a
  deleted project or organization
- `jobs.updated`: `{job_id, task_id, changes: {field: {old, new}}}`, for `stage`,
  `state` and `assignee_id`, only when one of them changed
"""

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.platform.bus import Outbox

TASKS_CREATED = "tasks.created"
TASKS_DELETED = "tasks.deleted"
JOBS_UPDATED = "jobs.updated"


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
