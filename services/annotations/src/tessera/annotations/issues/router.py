"""`/api/issues`."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.issues import service
from tessera.annotations.issues.schemas import Issue, IssueCreate, IssueUpdate
from tessera.annotations.issues.service import list_query_of_issues
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/issues", tags=["issues"])


@router.get("", summary="List issues")
async def list_issues(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_issues)],
) -> Page[Issue]:
    """The issues the caller sees (newest first unless sorted)."""
    count, results = await service.list_issues(session, ctx, request, query)
    return Page[Issue].build(request, query.page, count, results)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a issue")
async def create_issue(
    body: IssueCreate, request: Request, ctx: RequestContext, session: DbSession
) -> Issue:
    """Create a issue."""
    return await service.create_issue(session, ctx, request, body)


@router.get("/{issue_id}", summary="Get issue details")
async def get_issue(
    issue_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> Issue:
    """One issue."""
    return await service.get_issue(session, ctx, request, issue_id)


@router.patch("/{issue_id}", summary="Update a issue")
async def update_issue(
    issue_id: int,
    body: IssueUpdate,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
) -> Issue:
    """Change a issue."""
    return await service.update_issue(session, ctx, request, issue_id, body)


@router.delete("/{issue_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a issue")
async def delete_issue(issue_id: int, ctx: RequestContext, session: DbSession) -> Response:
    """Delete a issue."""
    await service.delete_issue(session, ctx, issue_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
