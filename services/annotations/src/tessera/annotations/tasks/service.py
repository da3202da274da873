"""Tasks: create (in a project or with their own labels), read, list, change, delete."""

from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations import events
from tessera.annotations.access import Context
from tessera.annotations.labels import service as labels
from tessera.annotations.labels.repository import LabelOwner
from tessera.annotations.links import api_url
from tessera.annotations.projects.schemas import Link, Storage
from tessera.annotations.tasks import repository
from tessera.annotations.tasks.schemas import JobsSummary, Task, TaskCreate, TaskUpdate
from tessera.annotations.users.service import basic_user, check_users
from tessera.annotations.visibility import project_for, task_for, visible_tasks
from tessera.platform.bus import Outbox
from tessera.platform.errors import NotFound, Problem, unprocessable
from tessera.platform.listing import ListQuery, list_query

DATA_OPTIONS = (
    "segment_size",
    "overlap",
    "image_quality",
    "start_frame",
    "stop_frame",
    "frame_filter",
)
PLAIN_FIELDS = ("name", "bug_tracker", "dataset_repository", "subset", "owner_id")


list_query_of_tasks = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the task list's parameters (CVAT's)."""


def _storage(value: dict[str, Any] | None) -> Storage | None:
    return None if value is None else Storage.model_validate(value)


def _to_schema(request: Request, row: dict[str, Any]) -> Task:
    task_id = row["id"]
    has_data = row["media_type"] is not None
    return Task(
        url=api_url(request, f"tasks/{task_id}"),
        id=task_id,
        name=row["name"],
        project_id=row["project_id"],
        project_name=row["project_name"],
        owner=basic_user(request, row, "owner"),
        assignee=basic_user(request, row, "assignee"),
        assignee_updated_date=row["assignee_updated_date"],
        bug_tracker=row["bug_tracker"],
        dataset_repository=row["dataset_repository"],
        created_date=row["created_date"],
        updated_date=row["updated_date"],
        overlap=row["overlap"],
        segment_size=row["segment_size"],
        status=row["status"],
        size=row["size"],
        mode=row["mode"],
        dimension=row["dimension"],
        media_type=row["media_type"],
        data=task_id if has_data else None,
        data_chunk_size=row["data_chunk_size"],
        data_compressed_chunk_type=row["compressed_chunk_type"],
        data_original_chunk_type=row["original_chunk_type"],
        image_quality=row["image_quality"],
        start_frame=row["start_frame"],
        stop_frame=row["stop_frame"],
        frame_filter=row["frame_filter"],
        subset=row["subset"],
        organization=row["organization_id"],
        organization_id=row["organization_id"],
        target_storage=_storage(row["target_storage"]),
        source_storage=_storage(row["source_storage"]),
        jobs=JobsSummary(
            count=row["job_count"],
            completed=row["completed_jobs"],
            validation=row["validation_jobs"],
            url=api_url(request, "jobs", task_id=task_id),
        ),
        labels=Link(url=api_url(request, "labels", task_id=task_id)),
    )


async def get_task(session: AsyncSession, ctx: Context, request: Request, task_id: int) -> Task:
    """One task the caller sees."""
    row = await repository.get_task(session, task_id, visible_tasks(ctx))
    if row is None:
        raise NotFound(f"Task {task_id} does not exist.")
    return _to_schema(request, row)


async def list_tasks(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    query: ListQuery,
) -> tuple[int, list[Task]]:
    """The tasks the caller sees in this context that match the list query."""
    count, rows = await repository.list_tasks(session, visible_tasks(ctx), query)
    return count, [_to_schema(request, row) for row in rows]


async def create_task(
    session: AsyncSession, ctx: Context, request: Request, outbox: Outbox, body: TaskCreate
) -> Task:
    """Create a task, in a project or with its own labels.

    In an organization, owners and maintainers create tasks, and so do the owner and
    assignee of the project the task goes into.
    """
    allowed = ctx.organization_id is None or ctx.manages_organization
    if body.project_id is not None:
        try:
            project = await project_for(session, ctx, body.project_id, change=False)
        except NotFound:
            raise unprocessable(
                [("body.project_id", f"project {body.project_id} does not exist")]
            ) from None
        allowed = allowed or ctx.user_id in (project.owner_id, project.assignee_id)
        if body.labels:
            raise unprocessable(
                [("body.labels", "a task in a project has the project's labels; leave it empty")]
            )
    elif not body.labels:
        raise unprocessable([("body.labels", "a task outside a project needs at least one label")])
    ctx.require(allowed, "create tasks here")
    await check_users(
        session,
        {"body.owner_id": body.owner_id, "body.assignee_id": body.assignee_id},
        ctx.organization_id,
    )
    values = body.model_dump(include={*PLAIN_FIELDS, *DATA_OPTIONS, "project_id", "assignee_id"})
    values["owner_id"] = body.owner_id if body.owner_id is not None else ctx.user_id
    if body.assignee_id is not None:
        values["assignee_updated_date"] = sa.func.now()
    row = await repository.insert_task(
        session, {**values, **body.storage_values(), "organization_id": ctx.organization_id}
    )
    if body.project_id is None:
        await labels.apply_requests(
            session, outbox, LabelOwner(task_id=row["id"]), body.labels, "body.labels"
        )
    await events.task_created(outbox, session, row)
    return await get_task(session, ctx, request, row["id"])


async def update_task(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    task_id: int,
    body: TaskUpdate,
    *,
    outbox: Outbox,
) -> Task:
    """Change a task's fields and merge `labels` into its own labels, all or nothing.

    The data options are fixed once the task has jobs (its media has been attached).
    """
    current = await task_for(session, ctx, task_id, change=True)
    fields = body.model_fields_set
    if "project_id" in fields and body.project_id != current.project_id:
        raise unprocessable([("body.project_id", "a task cannot move between projects")])
    if body.labels and current.project_id is not None:
        raise unprocessable(
            [("body.labels", f"the task has the labels of project {current.project_id}")]
        )
    options = [name for name in DATA_OPTIONS if name in fields]
    if options and await repository.has_jobs(session, task_id):
        raise Problem(
            409,
            "The data options are fixed once the task's media is attached.",
            errors=[
                {"field": f"body.{name}", "message": "fixed once media is attached"}
                for name in options
            ],
        )
    start = body.start_frame if "start_frame" in fields else current.start_frame
    stop = body.stop_frame if "stop_frame" in fields else current.stop_frame
    if start is not None and stop is not None and stop < start:
        raise unprocessable([("body.stop_frame", "must not be less than start_frame")])
    await check_users(
        session,
        {
            f"body.{name}": getattr(body, name)
            for name in ("owner_id", "assignee_id")
            if name in fields
        },
        current.organization_id,
    )
    nullable = {"assignee_id", "overlap", "stop_frame"}
    values: dict[str, Any] = {
        name: getattr(body, name)
        for name in (*PLAIN_FIELDS, *DATA_OPTIONS, "assignee_id")
        if name in fields and (getattr(body, name) is not None or name in nullable)
    }
    if "assignee_id" in values and values["assignee_id"] != current.assignee_id:
        values["assignee_updated_date"] = sa.func.now()
    values.update(body.storage_values())
    await labels.apply_requests(
        session, outbox, LabelOwner(task_id=task_id), body.labels, "body.labels"
    )
    await repository.update_task(session, task_id, values)
    return await get_task(session, ctx, request, task_id)


async def delete_task(session: AsyncSession, ctx: Context, outbox: Outbox, task_id: int) -> None:
    """Delete a task; its owner, its project's owner and organization managers may."""
    current = await task_for(session, ctx, task_id, change=False)
    allowed = ctx.manages_organization or current.owner_id == ctx.user_id
    if not allowed and current.project_id is not None:
        project = await project_for(session, ctx, current.project_id, change=False)
        allowed = project.owner_id == ctx.user_id
    ctx.require(allowed, f"delete task {task_id}")
    await repository.delete_task(session, task_id)
    await events.tasks_deleted(outbox, session, [dict(current._mapping)])
