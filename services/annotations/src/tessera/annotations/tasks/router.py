"""`/api/tasks`."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.events import EventOutbox
from tessera.annotations.tasks import service
from tessera.annotations.tasks.schemas import Task, TaskCreate, TaskUpdate
from tessera.annotations.tasks.service import list_query_of_tasks
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


@router.get("", summary="List tasks")
async def list_tasks(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_tasks)],
) -> Page[Task]:
    """The tasks the caller sees in the organization context (newest first unless sorted)."""
    count, results = await service.list_tasks(session, ctx, request, query)
    return Page[Task].build(request, query.page, count, results)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a task")
async def create_task(
    body: TaskCreate,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    outbox: EventOutbox,
) -> Task:
    """Create a task (its media is attached through the ingest service)."""
    return await service.create_task(session, ctx, request, outbox, body)


@router.get("/{task_id}", summary="Get task details")
async def get_task(task_id: int, request: Request, ctx: RequestContext, session: DbSession) -> Task:
    """One task."""
    return await service.get_task(session, ctx, request, task_id)


@router.patch("/{task_id}", summary="Update a task")
async def update_task(
    task_id: int,
    body: TaskUpdate,
    *,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    outbox: EventOutbox,
) -> Task:
    """Change fields; `labels` add, change (by `id`) or delete (`deleted: true`) labels."""
    return await service.update_task(session, ctx, request, task_id, body, outbox=outbox)


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a task")
async def delete_task(
    task_id: int, ctx: RequestContext, session: DbSession, outbox: EventOutbox
) -> Response:
    """Delete a task with its jobs and annotations."""
    await service.delete_task(session, ctx, outbox, task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
