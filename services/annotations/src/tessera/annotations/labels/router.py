"""`/api/labels`: labels of projects and tasks, as CVAT exposes them."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.events import EventOutbox
from tessera.annotations.labels import service
from tessera.annotations.labels.schemas import Label, LabelRequest
from tessera.annotations.labels.service import LabelFilters
from tessera.platform.db import DbSession
from tessera.platform.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api/labels", tags=["labels"])


@router.get("", summary="List labels")
async def list_labels(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    params: Annotated[PageParams, Depends(page_params)],
    filters: Annotated[LabelFilters, Depends()],
) -> Page[Label]:
    """Top-level labels (sublabels with `parent_id`); a task in a project lists the project's."""
    count, results = await service.list_labels(
        session, ctx, filters, offset=params.offset, limit=params.page_size
    )
    return Page[Label].build(request, params, count, results)


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
