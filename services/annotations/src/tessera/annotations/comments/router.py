"""`/api/comments`."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.comments import service
from tessera.annotations.comments.schemas import Comment, CommentCreate, CommentUpdate
from tessera.annotations.comments.service import list_query_of_comments
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/comments", tags=["comments"])


@router.get("", summary="List comments")
async def list_comments(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_comments)],
) -> Page[Comment]:
    """The comments the caller sees (newest first unless sorted)."""
    count, results = await service.list_comments(session, ctx, request, query)
    return Page[Comment].build(request, query.page, count, results)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a comment")
async def create_comment(
    body: CommentCreate, request: Request, ctx: RequestContext, session: DbSession
) -> Comment:
    """Create a comment."""
    return await service.create_comment(session, ctx, request, body)


@router.get("/{comment_id}", summary="Get comment details")
async def get_comment(
    comment_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> Comment:
    """One comment."""
    return await service.get_comment(session, ctx, request, comment_id)


@router.patch("/{comment_id}", summary="Update a comment")
async def update_comment(
    comment_id: int,
    body: CommentUpdate,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
) -> Comment:
    """Change a comment."""
    return await service.update_comment(session, ctx, request, comment_id, body)


@router.delete("/{comment_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a comment")
async def delete_comment(comment_id: int, ctx: RequestContext, session: DbSession) -> Response:
    """Delete a comment."""
    await service.delete_comment(session, ctx, comment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
