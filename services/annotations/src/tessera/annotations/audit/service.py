"""The audit log: every change event of the service, with its actor, queryable.

Consumers of every stream the service publishes (`events.CONSUMED`) turn each event into
one `audit_log` row, once per message id (the inbox, and a unique `msg_id`). Owners and
maintainers of an organization, and admins, see every entry of it; everyone else sees
the entries of the tasks they see (so not those of deleted tasks, nor membership changes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations import events
from tessera.annotations.access import Context
from tessera.annotations.audit import repository
from tessera.annotations.audit.schemas import AuditEntry
from tessera.annotations.tables import audit_log, tasks
from tessera.annotations.users.service import basic_user
from tessera.annotations.visibility import visible_tasks
from tessera.platform.bus import Event
from tessera.platform.service import Platform

CONSUMER = "annotations-audit"


async def record(session: AsyncSession, event: Event) -> None:
    """Write the audit entry of one event."""
    scope = await events.scope_of(session, event.data)
    await repository.insert_entry(
        session,
        {
            "msg_id": event.msg_id,
            "occurred_at": event.timestamp or datetime.now(UTC),
            "actor_id": event.actor_id,
            "action": event.subject,
            "organization_id": scope.organization_id,
            "project_id": scope.project_id,
            "task_id": scope.task_id,
            "job_id": scope.job_id,
            "details": event.data,
        },
    )


@asynccontextmanager
async def consuming(platform: Platform) -> AsyncIterator[None]:
    """Consume every event into the audit log while the context is open."""
    consumers = events.consumers_of_every_event(platform, CONSUMER, record)
    for consumer in consumers:
        consumer.start()
    try:
        yield
    finally:
        for consumer in consumers:
            await consumer.stop()


def visible_entries(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `audit_log`: what the caller may read in this context."""
    if ctx.manages_organization:  # outside an organization, only admins manage
        if ctx.organization_id is None:
            return sa.true()
        return audit_log.c.organization_id == ctx.organization_id
    return sa.exists().where(tasks.c.id == audit_log.c.task_id, visible_tasks(ctx))


@dataclass(frozen=True)
class AuditFilters:
    """Filters of the audit log; `user_id` is the actor."""

    task_id: int | None = None
    job_id: int | None = None
    project_id: int | None = None
    user_id: int | None = None
    action: str | None = None

    def condition(self) -> sa.ColumnElement[bool]:
        """Condition on `audit_log`."""
        columns: dict[str, Any] = {
            "task_id": audit_log.c.task_id,
            "job_id": audit_log.c.job_id,
            "project_id": audit_log.c.project_id,
            "user_id": audit_log.c.actor_id,
            "action": audit_log.c.action,
        }
        return sa.and_(
            sa.true(),
            *(
                column == getattr(self, name)
                for name, column in columns.items()
                if getattr(self, name) is not None
            ),
        )


def _to_schema(request: Request, row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        occurred_at=row["occurred_at"],
        action=row["action"],
        actor=basic_user(request, row, "actor"),
        organization=row["organization_id"],
        project_id=row["project_id"],
        task_id=row["task_id"],
        job_id=row["job_id"],
        details=row["details"],
    )


async def list_entries(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    filters: AuditFilters,
    *,
    offset: int,
    limit: int | None,
) -> tuple[int, list[AuditEntry]]:
    """The entries the caller may read that match `filters`, newest first."""
    count, rows = await repository.list_entries(
        session, sa.and_(visible_entries(ctx), filters.condition()), offset=offset, limit=limit
    )
    return count, [_to_schema(request, row) for row in rows]
