"""CVAT's lambda functions: `GET /api/lambda/functions`, `GET /api/lambda/functions/{id}`
and the online call `POST /api/lambda/functions/{id}`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from tessera.inference.functions.schemas import (
    DetectorResult,
    InteractorAnswer,
    OnlineCall,
    TrackerAnswer,
)
from tessera.inference.state import FunctionsApi
from tessera.platform.auth import CurrentUser

router = APIRouter(tags=["lambda"])

_CALL_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A field of the call is wrong (named in `errors`): no frame, a frame "
          "outside the task or job, a mapping to labels the task lacks, points outside the "
          "frame, a tracker state that was altered, expired or made for another function "
          "(`errors[].problem` says which)."},
    403: {"description": "The caller may not see the task or job."},
    404: {"description": "No such function, task or job (or one the caller may not see)."},
    422: {"description": "The frame is not a decodable image, or the body is malformed."},
    501: {"description": "The function's kind (reid) has no online calls."},
    503: {"description": "Triton cannot be reached, or the function's model is not ready."},
}  # fmt: skip


@router.get("/api/lambda/functions", summary="The functions (models) the server offers")
async def list_functions(principal: CurrentUser, functions: FunctionsApi) -> list[dict[str, Any]]:
    """Every function, as CVAT lists them: `id`, `kind` (detector, interactor, tracker,
    reid), `labels_v2` (names, types, attributes; a skeleton's sublabels and svg),
    `description`, `name`, `version`, and an interactor's points and help, a tracker's
    shape types."""
    return functions.list()


@router.get(
    "/api/lambda/functions/{func_id}",
    summary="One function",
    responses={404: {"description": "No such function."}},
)
async def retrieve_function(
    func_id: str, principal: CurrentUser, functions: FunctionsApi
) -> dict[str, Any]:
    """The function as the list shows it."""
    return functions.get(func_id)


@router.post(
    "/api/lambda/functions/{func_id}",
    summary="Run a function on one frame now (an online call)",
    response_model=DetectorResult | InteractorAnswer | TrackerAnswer,
    responses=_CALL_ERRORS,
)
async def call_function(
    func_id: str,
    body: OnlineCall,
    request: Request,
    principal: CurrentUser,
    functions: FunctionsApi,
) -> DetectorResult | Response:
    """The function on task frame `frame` of `task` (or of `job`'s task). A detector
    answers the objects it finds as CVAT's annotations body, in the task's labels
    (`mapping`), `source` "auto", each shape's confidence as its `score`; an interactor
    the object at `pos_points` (not at `neg_points`, inside `obj_bbox`) as a mask and a
    polygon; a tracker each of `shapes` on this frame and its new signed state (give
    `states` back on the next frame's call). Nothing is stored."""
    return await functions.call(request, func_id, body)
