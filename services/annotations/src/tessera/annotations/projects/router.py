"""`/api/projects`."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.events import EventOutbox
from tessera.annotations.projects import service
from tessera.annotations.projects.schemas import Project, ProjectCreate, ProjectUpdate
from tessera.annotations.projects.service import list_query_of_projects
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/projects", tags=["projects"])


@router.get("", summary="List projects")
async def list_projects(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_projects)],
) -> Page[Project]:
    """The projects the caller sees in the organization context (newest first unless sorted)."""
    count, results = await service.list_projects(session, ctx, request, query)
    return Page[Project].build(request, query.page, count, results)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a project")
async def create_project(
    body: ProjectCreate,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    outbox: EventOutbox,
) -> Project:
    """Create a project with its labels in the organization context."""
    return await service.create_project(session, ctx, request, outbox, body)


@router.get("/{project_id}", summary="Get project details")
async def get_project(
    project_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> Project:
    """One project."""
    return await service.get_project(session, ctx, request, project_id)


@router.patch("/{project_id}", summary="Update a project")
async def update_project(
    project_id: int,
    body: ProjectUpdate,
    *,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    outbox: EventOutbox,
) -> Project:
    """Change fields; `labels` add, change (by `id`) or delete (`deleted: true`) labels."""
    return await service.update_project(session, ctx, request, project_id, body, outbox=outbox)


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a project")
async def delete_project(
    project_id: int, ctx: RequestContext, session: DbSession, outbox: EventOutbox
) -> Response:
    """Delete a project with its tasks, jobs and annotations."""
    await service.delete_project(session, ctx, outbox, project_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
