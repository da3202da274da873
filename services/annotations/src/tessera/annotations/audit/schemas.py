"""Schemas of `/api/audit`."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tessera.annotations.users.schemas import BasicUser


class AuditEntry(BaseModel):
    """Who did what, when, and where: one event of the service."""

    id: int
    occurred_at: datetime = Field(description="When the change was made (its event was stored).")
    action: str = Field(
        description="The event: annotations.changed, labels.changed, memberships.changed, "
        "jobs.updated, tasks.created or tasks.deleted."
    )
    actor: BasicUser | None = Field(description="Who made the change (None: the system).")
    organization: int | None
    project_id: int | None
    task_id: int | None
    job_id: int | None
    details: dict[str, Any] = Field(
        description="The event's payload: counts of created, updated and deleted objects, "
        "the fields that changed with their old and new values, or the roles."
    )
