"""`/api/jobs/{id}/annotations` and `/api/tasks/{id}/annotations`, as CVAT serves them.

GET streams `{version, tags, shapes, tracks}`; PUT replaces; PATCH `?action=create|
update|delete` edits; DELETE clears (204). Semantics in service.py. A POST is an import,
which the gateway sends to the export service when it names its `format` (or is a TUS
upload's creation); one that reaches this service has none, and is answered 400 naming
`query.format`, as CVAT answers an import without a format.

Beyond CVAT, `GET /api/{jobs|tasks}/{id}/annotations/shapes` is the review list: the
top-level shapes of some sources, least certain first (`sort=score`, or `-score`),
paginated as CVAT's lists are (`page`, `page_size`), each with its `job_id`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from tessera.annotations.access import RequestContext
from tessera.annotations.annotations import service
from tessera.annotations.annotations.repository import ShapeFilter
from tessera.annotations.annotations.schemas import LabeledData, ReviewShape
from tessera.annotations.annotations.service import Action
from tessera.annotations.visibility import job_for, task_for
from tessera.platform.bus import Outbox
from tessera.platform.db import DbSession
from tessera.platform.errors import Problem, bad_request
from tessera.platform.pagination import Page, PageParams, page_params

router = APIRouter(tags=["annotations"])

LABELED_DATA_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LabeledData"}}},
    }
}
_DATA: dict[int | str, dict[str, Any]] = {200: {"model": LabeledData}}
PatchAction = Literal["create", "update", "delete"]


def _outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.platform.outbox
    return outbox


def _json(document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


_REVIEW: dict[int | str, dict[str, Any]] = {
    200: {"model": Page[ReviewShape]},
    400: {"description": "A malformed parameter (problem+json naming it)."},
}
_SOURCES = "manual, semi-auto, auto, file, consensus"


def review_query(
    *,
    source: Annotated[
        list[str] | None,
        Query(
            description=f"Only shapes of these sources ({_SOURCES}): repeat the parameter "
            "or separate them with commas. Every source when absent."
        ),
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            description="`score` (the default: least certain first) or `-score`; "
            "ties by shape id, in the same direction."
        ),
    ] = None,
    label_id: Annotated[str | None, Query(description="Only shapes of this label.")] = None,
    min_frame: Annotated[
        str | None, Query(description="Only shapes on this frame or later.")
    ] = None,
    max_frame: Annotated[
        str | None, Query(description="Only shapes on this frame or earlier.")
    ] = None,
    min_score: Annotated[
        str | None, Query(description="Only shapes scored at least this (0 to 1).")
    ] = None,
    max_score: Annotated[
        str | None, Query(description="Only shapes scored at most this (0 to 1).")
    ] = None,
) -> ShapeFilter:
    """FastAPI dependency: the review list's parameters (400 naming a malformed one)."""
    return service.shape_filter(
        source=source or (), sort=sort, label_id=label_id, min_frame=min_frame,
        max_frame=max_frame, min_score=min_score, max_score=max_score,
    )  # fmt: skip


@router.get("/api/jobs/{job_id}/annotations", responses=_DATA, summary="Get job annotations")
async def get_job_annotations(
    job_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> StreamingResponse:
    """The job's tags, shapes and tracks with its version, streamed as JSON."""
    await job_for(session, ctx, job_id, change=False)
    database = request.app.state.platform.database
    return StreamingResponse(
        service.json_stream(database, job_id=job_id), media_type="application/json"
    )


@router.put(
    "/api/jobs/{job_id}/annotations",
    responses=_DATA,
    openapi_extra=LABELED_DATA_BODY,
    summary="Replace job annotations",
)
async def put_job_annotations(
    job_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> Response:
    """Replace all of the job's annotations; 409 if `version` is not the current one."""
    body = service.parse_body(await request.body())
    return _json(
        await service.write_job(
            session, ctx, _outbox(request), job_id=job_id, action=Action.PUT, body=body
        )
    )


@router.patch(
    "/api/jobs/{job_id}/annotations",
    responses=_DATA,
    openapi_extra=LABELED_DATA_BODY,
    summary="Create, update or delete some job annotations",
)
async def patch_job_annotations(
    job_id: int,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    action: PatchAction = Query(),  # noqa: B008 - FastAPI's idiom for a required query value
) -> Response:
    """Apply `action` to the objects of the body; 409 if `version` is not the current one."""
    body = service.parse_body(await request.body())
    return _json(
        await service.write_job(
            session, ctx, _outbox(request), job_id=job_id, action=Action(action), body=body
        )
    )


@router.delete(
    "/api/jobs/{job_id}/annotations",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete all job annotations",
)
async def delete_job_annotations(
    job_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> Response:
    """Remove every tag, shape and track of the job."""
    await service.clear_job(session, ctx, _outbox(request), job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/tasks/{task_id}/annotations", responses=_DATA, summary="Get task annotations")
async def get_task_annotations(
    task_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> StreamingResponse:
    """The task's annotations: its jobs' assembled, overlaps merged; streamed as JSON."""
    await task_for(session, ctx, task_id, change=False)
    database = request.app.state.platform.database
    return StreamingResponse(
        service.json_stream(database, task_id=task_id), media_type="application/json"
    )


@router.put(
    "/api/tasks/{task_id}/annotations",
    responses=_DATA,
    openapi_extra=LABELED_DATA_BODY,
    summary="Replace task annotations",
)
async def put_task_annotations(
    task_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> Response:
    """Replace the annotations of every job of the task, split by frame."""
    body = service.parse_body(await request.body())
    return _json(
        await service.write_task(
            session, ctx, _outbox(request), task_id=task_id, action=Action.PUT, body=body
        )
    )


@router.patch(
    "/api/tasks/{task_id}/annotations",
    responses=_DATA,
    openapi_extra=LABELED_DATA_BODY,
    summary="Create, update or delete some task annotations",
)
async def patch_task_annotations(
    task_id: int,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    action: PatchAction = Query(),  # noqa: B008 - FastAPI's idiom for a required query value
) -> Response:
    """Apply `action` across the task's jobs (by frame for create, by id otherwise)."""
    body = service.parse_body(await request.body())
    return _json(
        await service.write_task(
            session, ctx, _outbox(request), task_id=task_id, action=Action(action), body=body
        )
    )


@router.delete(
    "/api/tasks/{task_id}/annotations",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete all task annotations",
)
async def delete_task_annotations(
    task_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> Response:
    """Remove every tag, shape and track of every job of the task."""
    await service.clear_task(session, ctx, _outbox(request), task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/api/tasks/{task_id}/annotations", include_in_schema=False, status_code=400)
async def post_task_annotations_without_format(
    task_id: int, ctx: RequestContext, session: DbSession
) -> Response:
    """An import (the export service's, where the gateway sends a POST with `format`)
    that names no `format`: 400 naming it, as CVAT answers, once the caller sees the
    task (404 otherwise)."""
    await task_for(session, ctx, task_id, change=False)
    raise _format_required()


@router.post("/api/jobs/{job_id}/annotations", include_in_schema=False, status_code=400)
async def post_job_annotations_without_format(
    job_id: int, ctx: RequestContext, session: DbSession
) -> Response:
    """As for a task's: 400 naming `format`, once the caller sees the job."""
    await job_for(session, ctx, job_id, change=False)
    raise _format_required()


def _format_required() -> Problem:
    return bad_request(
        "format, the importer of the file (GET /api/server/annotation/formats lists them), "
        "is required to import annotations",
        "format",
    )


@router.get(
    "/api/jobs/{job_id}/annotations/shapes",
    responses=_REVIEW,
    summary="List job shapes by source and score (review)",
)
async def review_job_shapes(
    job_id: int,
    *,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    wanted: Annotated[ShapeFilter, Depends(review_query)],
    page: Annotated[PageParams, Depends(page_params)],
) -> Response:
    """The job's shapes (skeletons with their elements) of the chosen sources, least
    certain first: a reviewer's worklist. Each is as GET annotations gives it, plus
    `job_id`."""
    count, results = await service.review_job_shapes(session, ctx, job_id, wanted, page)
    return _json(Page[Any].build(request, page, count, results).model_dump())


@router.get(
    "/api/tasks/{task_id}/annotations/shapes",
    responses=_REVIEW,
    summary="List task shapes by source and score (review)",
)
async def review_task_shapes(
    task_id: int,
    *,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    wanted: Annotated[ShapeFilter, Depends(review_query)],
    page: Annotated[PageParams, Depends(page_params)],
) -> Response:
    """The shapes of every job of the task, as the job's list gives them. A shape on a
    frame two jobs share is stored in each and listed once per job."""
    count, results = await service.review_task_shapes(session, ctx, task_id, wanted, page)
    return _json(Page[Any].build(request, page, count, results).model_dump())
