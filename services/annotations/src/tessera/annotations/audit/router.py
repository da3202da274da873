"""`/api/audit`: who changed what (annotations, labels, roles, jobs, tasks), and when."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tessera.annotations.access import RequestContext
from tessera.annotations.audit import service
from tessera.annotations.audit.schemas import AuditEntry
from tessera.annotations.audit.service import AuditFilters
from tessera.platform.db import DbSession
from tessera.platform.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", summary="List audit log entries")
async def list_entries(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    params: Annotated[PageParams, Depends(page_params)],
    filters: Annotated[AuditFilters, Depends()],
) -> Page[AuditEntry]:
    """Entries of the organization context, newest first; filter by task, job, project,
    actor (`user_id`) or `action`. Entries appear shortly after the change (they are
    made from its event)."""
    count, results = await service.list_entries(
        session, ctx, request, filters, offset=params.offset, limit=params.limit
    )
    return Page[AuditEntry].build(request, params, count, results)
