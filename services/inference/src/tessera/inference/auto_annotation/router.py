"""CVAT's auto-annotation requests: `POST /api/lambda/requests`, `GET /api/lambda/requests`,
`GET /api/lambda/requests/{id}` and `DELETE /api/lambda/requests/{id}` (semantics in
service.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from tessera.inference.auto_annotation.schemas import FunctionCall, FunctionCallRequest
from tessera.inference.auto_annotation.service import AutoAnnotations
from tessera.inference.state import InferenceState
from tessera.platform.auth import CurrentUser
from tessera.platform.requests import RequestStore
from tessera.platform.service import service_state


def auto_annotations(request: Request) -> AutoAnnotations:
    """The service's auto-annotation requests."""
    return service_state(request, InferenceState).auto_annotations


def request_store(request: Request) -> RequestStore:
    """The service's requests (`/api/requests/{rq_id}`)."""
    return service_state(request, InferenceState).requests


AutoAnnotationsApi = Annotated[AutoAnnotations, Depends(auto_annotations)]

router = APIRouter(tags=["lambda"])

_CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A field is wrong (named in `errors`): a function that is not a "
          "detector, a job of another task (project), a 3D task or one without data, a "
          "project without a task with data, frames outside the task or deleted, `cleanup` "
          "with `frames`, a mapping to labels the task (project) lacks."},
    403: {"description": "The caller may not change the annotations of the task (a job, a "
          "task of the project)."},
    404: {"description": "No such function, task, project or job (or one the caller may not "
          "see; the field is named in `errors`)."},
    409: {"description": "A request covering one of the tasks is queued or running (`rq_id` "
          "names it, `task` the task)."},
    422: {"description": "The body is malformed (a threshold outside [0, 1], neither task "
          "nor project or both, `job` with `jobs` or with `project`, `frames` with jobs or "
          "a project)."},
}  # fmt: skip


@router.post(
    "/api/lambda/requests",
    summary="Annotate a task, a project, jobs or frames with a detector, in the background",
    responses=_CREATE_ERRORS,
)
async def create_request(
    body: FunctionCallRequest,
    request: Request,
    principal: CurrentUser,
    service: AutoAnnotationsApi,
) -> FunctionCall:
    """Queue the auto-annotation of `task` (of `job`, one of its jobs, as CVAT; beyond
    CVAT, of `jobs` or `frames` of it), or of `project` (each of its tasks, or `jobs` of
    them), by detector `function`: its shapes are written as `source` "auto" with their
    confidence as `score`, added to the annotations there (`cleanup`: replacing them).
    Poll `GET /api/lambda/requests/{id}` for its status and progress."""
    return await service.create(request, principal, body)


@router.get("/api/lambda/requests", summary="The caller's auto-annotation requests")
async def list_requests(principal: CurrentUser, service: AutoAnnotationsApi) -> list[FunctionCall]:
    """Queued and running requests, and those finished in the last 30 minutes (as CVAT's
    list), newest first."""
    return await service.list(principal)


@router.get(
    "/api/lambda/requests/{rq_id}",
    summary="An auto-annotation request's status and progress",
    responses={404: {"description": "No such request (or one the caller may not see)."}},
)
async def retrieve_request(
    rq_id: str, request: Request, principal: CurrentUser, service: AutoAnnotationsApi
) -> FunctionCall:
    """Status (queued, started, finished, failed), progress in percent, and why it
    failed (`exc_info`)."""
    return await service.get(request, principal, rq_id)


@router.delete(
    "/api/lambda/requests/{rq_id}",
    status_code=204,
    summary="Cancel an auto-annotation request",
    responses={
        403: {"description": "The caller sees the request but did not start it."},
        404: {"description": "No such request (or one the caller may not see)."},
    },
)
async def delete_request(
    rq_id: str, request: Request, principal: CurrentUser, service: AutoAnnotationsApi
) -> None:
    """Stop a queued or running request: it ends failed, saying who cancelled it; the
    shapes written so far stay. A request that has already ended is left as it is."""
    await service.cancel(request, principal, rq_id)
