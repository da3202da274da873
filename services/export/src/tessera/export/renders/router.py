"""`GET /api/tasks/{id}/frames/{frame}/render` and `GET /api/jobs/{id}/frames/{frame}/render`:
a frame (a task frame number) with its annotations drawn (Tessera's own; CVAT has none)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from tessera.export.renders.draw import RenderOptions
from tessera.export.renders.service import ImageFormat, Picture, Rendered, Renders
from tessera.export.state import ExportState
from tessera.platform.errors import bad_request
from tessera.platform.service import service_state

router = APIRouter(tags=["renders"])


def renders(request: Request) -> Renders:
    """Renders with the service's clients of annotations and ingest."""
    exports = service_state(request, ExportState).exports
    return Renders(exports.annotations, exports.ingest)


class RenderQuery:
    """The query of a render: the picture's format and how the annotations are drawn."""

    def __init__(
        self,
        *,
        format: Annotated[ImageFormat, Query(description="png (default) or jpeg")] = "png",
        quality: Annotated[
            int | None, Query(ge=1, le=100, description="JPEG quality (90 by default)")
        ] = None,
        outline_width: Annotated[
            int | None,
            Query(ge=1, le=64, description="Pixels (default: 2, more on large pictures)"),
        ] = None,
        labels: Annotated[bool, Query(description="Write each shape's label name")] = True,
        opacity: Annotated[float, Query(ge=0, le=1, description="Of masks' fill")] = 0.5,
        max_size: Annotated[
            int | None,
            Query(ge=16, le=16384, description="Scale the picture down to this longest side"),
        ] = None,
    ) -> None:
        if quality is not None and format != "jpeg":
            raise bad_request("quality goes with format=jpeg", "quality")
        self.format: ImageFormat = format
        self.picture = Picture(
            RenderOptions(
                outline_width=outline_width, write_labels=labels, opacity=opacity,
                max_size=max_size,
            ),
            format,
            quality,
        )  # fmt: skip


RendersApi = Annotated[Renders, Depends(renders)]
Frame = Annotated[int, Path(ge=0, le=2**31 - 1, description="A task frame number")]
_PICTURE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The frame with its annotations drawn.",
          "content": {"image/png": {}, "image/jpeg": {}}},
    400: {"description": "A frame the task or job does not have, or a 3D task."},
    404: {"description": "No such task or job (or one the caller may not see), or no data."},
}  # fmt: skip


def _send(found: Rendered, name: str, query: RenderQuery) -> Response:
    return Response(
        found.data,
        media_type=found.media_type,
        headers={"Content-Disposition": f'inline; filename="{name}.{query.format}"'},
    )


@router.get(
    "/api/tasks/{task_id}/frames/{frame}/render",
    summary="A task's frame with its annotations drawn",
    response_class=Response,
    responses=_PICTURE,
)
async def render_task_frame(
    task_id: int,
    frame: Frame,
    request: Request,
    service: RendersApi,
    query: Annotated[RenderQuery, Depends()],
) -> Response:
    """Every shape of every job holding the frame (tracks where they are on it), in their
    labels' colours and z_order, tags listed in the corner."""
    found = await service.task_frame(request, task_id, frame, query.picture)
    return _send(found, f"task_{task_id}_frame_{frame:06d}", query)


@router.get(
    "/api/jobs/{job_id}/frames/{frame}/render",
    summary="A job's frame with its annotations drawn",
    response_class=Response,
    responses=_PICTURE,
)
async def render_job_frame(
    job_id: int,
    frame: Frame,
    request: Request,
    service: RendersApi,
    query: Annotated[RenderQuery, Depends()],
) -> Response:
    """The job's shapes on the frame (a task frame number of the job)."""
    found = await service.job_frame(request, job_id, frame, query.picture)
    return _send(found, f"job_{job_id}_frame_{frame:06d}", query)
