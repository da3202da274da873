"""`/api/labels`: labels of projects and tasks, as CVAT exposes them."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.events import EventOutbox
from tessera.annotations.labels import service
from tessera.annotations.labels.schemas import Label, LabelRequest
from tessera.annotations.labels.service import LabelsOf, list_query_of_labels, top_level_only
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/labels", tags=["labels"])


@router.get("", summary="List labels")
async def list_labels(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_labels)],
    of: Annotated[LabelsOf, Depends()],
) -> Page[Label]:
    """Top-level labels (a skeleton's sublabels with `parent_id` or `parent`), in id order
    unless sorted; a task in a project lists the project's."""
    count, results = await service.list_labels(
        session, ctx, of, query, top_level=top_level_only(request.query_params)
    )
    return Page[Label].build(request, query.page, count, results)


@router.get("/{label_id}", summary="Get label details")
async def get_label(label_id: int, ctx: RequestContext, session: DbSession) -> Label:
    """One label."""
    return await service.get_label(session, ctx, label_id)


@router.patch("/{label_id}", summary="Update a label")
async def update_label(
    label_id: int, body: LabelRequest, ctx: RequestContext, session: DbSession, outbox: EventOutbox
) -> Label:
    """Change a label (or a skeleton's sublabel) with the rules of project and task bodies."""
    return await service.update_label(session, ctx, outbox, label_id, body)


@router.delete("/{label_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a label")
async def delete_label(
    label_id: int, ctx: RequestContext, session: DbSession, outbox: EventOutbox
) -> Response:
    """Delete a label with its sublabels and every annotation that uses it."""
    await service.delete_label(session, ctx, outbox, label_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
