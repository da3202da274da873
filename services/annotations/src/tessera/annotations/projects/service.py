"""Projects: create with labels, read, list, change, delete (with their tasks)."""

from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations import events
from tessera.annotations.access import Context
from tessera.annotations.labels import service as labels
from tessera.annotations.labels.repository import LabelOwner
from tessera.annotations.links import api_url
from tessera.annotations.projects import repository
from tessera.annotations.projects.schemas import (
    CountLink,
    Link,
    Project,
    ProjectCreate,
    ProjectUpdate,
    Storage,
)
from tessera.annotations.status import combined_status
from tessera.annotations.users.service import basic_user, check_users
from tessera.annotations.visibility import project_for, visible_projects
from tessera.platform.bus import Outbox
from tessera.platform.errors import NotFound
from tessera.platform.listing import ListQuery, list_query

list_query_of_projects = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the project list's parameters (CVAT's)."""


def _storage(value: dict[str, Any] | None) -> Storage | None:
    return None if value is None else Storage.model_validate(value)


def _to_schema(request: Request, row: dict[str, Any]) -> Project:
    project_id = row["id"]
    return Project(
        url=api_url(request, f"projects/{project_id}"),
        id=project_id,
        name=row["name"],
        owner=basic_user(request, row, "owner"),
        assignee=basic_user(request, row, "assignee"),
        assignee_updated_date=row["assignee_updated_date"],
        bug_tracker=row["bug_tracker"],
        task_subsets=sorted(row["task_subsets"] or ()),
        created_date=row["created_date"],
        updated_date=row["updated_date"],
        status=combined_status(row["task_statuses"]),
        dimension=row["dimension"],
        organization=row["organization_id"],
        organization_id=row["organization_id"],
        target_storage=_storage(row["target_storage"]),
        source_storage=_storage(row["source_storage"]),
        tasks=CountLink(
            count=row["task_count"], url=api_url(request, "tasks", project_id=project_id)
        ),
        labels=Link(url=api_url(request, "labels", project_id=project_id)),
    )


async def get_project(
    session: AsyncSession, ctx: Context, request: Request, project_id: int
) -> Project:
    """One project the caller sees."""
    row = await repository.get_project(session, project_id, visible_projects(ctx))
    if row is None:
        raise NotFound(f"Project {project_id} does not exist.")
    return _to_schema(request, row)


async def list_projects(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    query: ListQuery,
) -> tuple[int, list[Project]]:
    """The projects the caller sees in this context that match the list query."""
    count, rows = await repository.list_projects(session, visible_projects(ctx), query)
    return count, [_to_schema(request, row) for row in rows]


async def create_project(
    session: AsyncSession, ctx: Context, request: Request, outbox: Outbox, body: ProjectCreate
) -> Project:
    """Create a project and its labels; in an organization, owners and maintainers may."""
    ctx.require(ctx.organization_id is None or ctx.manages_organization, "create projects here")
    await check_users(
        session,
        {"body.owner_id": body.owner_id, "body.assignee_id": body.assignee_id},
        ctx.organization_id,
    )
    project_id = await repository.insert_project(
        session,
        {
            "name": body.name,
            "owner_id": body.owner_id if body.owner_id is not None else ctx.user_id,
            "assignee_id": body.assignee_id,
            "assignee_updated_date": sa.func.now() if body.assignee_id is not None else None,
            "organization_id": ctx.organization_id,
            "bug_tracker": body.bug_tracker,
            **body.storage_values(),
        },
    )
    await labels.apply_requests(
        session, outbox, LabelOwner(project_id=project_id), body.labels, "body.labels"
    )
    return await get_project(session, ctx, request, project_id)


async def update_project(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    project_id: int,
    body: ProjectUpdate,
    *,
    outbox: Outbox,
) -> Project:
    """Change a project's fields and merge `labels` into its labels, all or nothing."""
    current = await project_for(session, ctx, project_id, change=True)
    fields = body.model_fields_set
    await check_users(
        session,
        {
            f"body.{name}": getattr(body, name)
            for name in ("owner_id", "assignee_id")
            if name in fields
        },
        current.organization_id,
    )
    values: dict[str, Any] = {
        name: getattr(body, name)
        for name in ("name", "bug_tracker", "owner_id", "assignee_id")
        if name in fields and (getattr(body, name) is not None or name == "assignee_id")
    }
    if "assignee_id" in values and values["assignee_id"] != current.assignee_id:
        values["assignee_updated_date"] = sa.func.now()
    values.update(body.storage_values())
    await labels.apply_requests(
        session, outbox, LabelOwner(project_id=project_id), body.labels, "body.labels"
    )
    await repository.update_project(session, project_id, values)
    return await get_project(session, ctx, request, project_id)


async def delete_project(
    session: AsyncSession, ctx: Context, outbox: Outbox, project_id: int
) -> None:
    """Delete a project with its tasks; owners of it and organization managers may."""
    current = await project_for(session, ctx, project_id, change=False)
    ctx.require(
        ctx.manages_organization or current.owner_id == ctx.user_id, f"delete project {project_id}"
    )
    deleted = await repository.delete_project(session, project_id)
    await events.tasks_deleted(outbox, session, deleted)
