"""CVAT's export endpoints: `POST /api/{projects|tasks|jobs}/{id}/dataset/export` and the
download of the result (`result_url`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from tessera.export.exports.schemas import (
    ExportCreated,
    ExportOptionsIn,
    ExportParams,
    FrameSelection,
    Location,
    Target,
)
from tessera.export.exports.service import Download
from tessera.export.state import ExportsApi
from tessera.platform.auth import CurrentUser
from tessera.platform.contracts.ingest import FrameFormat

router = APIRouter(tags=["export"])


def _export_route(target: Target, plural: str) -> None:
    @router.post(
        f"/api/{plural}/{{object_id}}/dataset/export",
        status_code=status.HTTP_202_ACCEPTED,
        summary=f"Export a {target}'s annotations (and images) in a format",
        name=f"export_{target}_dataset",
    )
    async def export_dataset(
        object_id: int,
        request: Request,
        principal: CurrentUser,
        exports: ExportsApi,
        *,
        format: Annotated[
            str,
            Query(description="An exporter's name, as listed by /api/server/annotation/formats"),
        ],
        save_images: Annotated[bool, Query()] = False,
        filename: Annotated[str | None, Query()] = None,
        location: Annotated[
            Location | None,
            Query(
                description="Where the archive goes: `local` (downloaded) or `cloud_storage` "
                "(with cloud_storage_id); without it, the object's target_storage (a job's "
                "task's), local when it has none"
            ),
        ] = None,
        cloud_storage_id: Annotated[int | None, Query()] = None,
        frames: Annotated[
            FrameSelection, Query(description="`annotated`: only frames with annotations")
        ] = "all",
        image_format: Annotated[
            FrameFormat,
            Query(
                description="How a video task's frames are saved (image tasks' images "
                "are copied as they are)"
            ),
        ] = "png",
        image_quality: Annotated[
            int | None,
            Query(
                ge=1,
                le=100,
                description="The quality of jpeg and webp frames (95 by default); not for png",
            ),
        ] = None,
    ) -> ExportCreated:
        """Start an export request; poll `/api/requests/{rq_id}`, then download its
        `result_url`. The caller's same export, if still running, is answered instead."""
        params = ExportParams(
            target=target, target_id=object_id, format=format, save_images=save_images,
            options=ExportOptionsIn(
                frames=frames, image_format=image_format, image_quality=image_quality
            ),
        )  # fmt: skip
        rq_id = await exports.start(
            request, principal, params, filename=filename, location=location,
            cloud_storage_id=cloud_storage_id,
        )  # fmt: skip
        return ExportCreated(rq_id=rq_id)

    @router.get(
        f"/api/{plural}/{{object_id}}/dataset/download",
        summary=f"Download the archive of a finished export of a {target}",
        name=f"download_{target}_dataset",
        response_class=StreamingResponse,
    )
    async def download_dataset(
        object_id: int,
        principal: CurrentUser,
        exports: ExportsApi,
        rq_id: Annotated[str, Query()],
    ) -> StreamingResponse:
        """The zip archive, streamed from storage."""
        found = await exports.download(principal, target, object_id, rq_id, backup=False)
        return archive_response(found)


def archive_response(found: Download) -> StreamingResponse:
    """A finished export's zip archive, streamed from storage, named for the download."""
    return StreamingResponse(
        found.chunks,
        media_type="application/zip",
        headers={
            "Content-Length": str(found.size),
            "Content-Disposition": _disposition(found.filename),
        },
    )


def _disposition(filename: str) -> str:
    """`attachment; filename="..."` exactly as CVAT sends it (cvat-sdk cuts the name at the
    first `=` and strips the quotes, so nothing may follow it), in ASCII."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f'attachment; filename="{ascii_name}"'


for _target, _plural in (("project", "projects"), ("task", "tasks"), ("job", "jobs")):
    _export_route(_target, _plural)  # type: ignore[arg-type]
