"""CVAT's backup endpoints: `POST /api/{tasks|projects}/{id}/backup/export` (a request to
poll at `/api/requests/{rq_id}`) and the download of its result
(`GET /api/{tasks|projects}/{id}/backup/download?rq_id=`, the request's `result_url`);
`POST /api/{tasks|projects}/backup/` restores an uploaded backup into a new task or project
(the request's `result_id`), with the TUS appends under it, or one that is an object of a
cloud storage (`?location=cloud_storage&cloud_storage_id=&filename=`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from tessera.export.backups import BACKUP_FORMAT
from tessera.export.backups.restorer import RestoreKind
from tessera.export.backups.restores import restore_path
from tessera.export.exports.router import archive_response
from tessera.export.exports.schemas import ExportCreated, ExportParams, Location, Target
from tessera.export.state import ExportsApi, RestoresApi, restore_uploads
from tessera.platform.auth import CurrentUser
from tessera.platform.db import DbSession
from tessera.platform.errors import bad_request
from tessera.platform.uploads import tus_router, upload_step

router = APIRouter(tags=["backup"])


def _backup_routes(target: Target, plural: str) -> None:
    @router.post(
        f"/api/{plural}/{{object_id}}/backup/export",
        status_code=status.HTTP_202_ACCEPTED,
        summary=f"Back up a {target} in CVAT's backup format",
        name=f"export_{target}_backup",
    )
    async def export_backup(
        object_id: int,
        request: Request,
        principal: CurrentUser,
        exports: ExportsApi,
        *,
        filename: Annotated[str | None, Query()] = None,
        location: Annotated[
            Location | None,
            Query(
                description="Where the backup goes: `local` (downloaded) or `cloud_storage` "
                "(with cloud_storage_id); without it, the task's or project's "
                "target_storage, local when it has none"
            ),
        ] = None,
        cloud_storage_id: Annotated[int | None, Query()] = None,
        lightweight: Annotated[
            bool,
            Query(
                description="Accepted for CVAT's clients; Tessera's backups always hold the "
                "media, so that they restore without the cloud storage it came from"
            ),
        ] = True,
    ) -> ExportCreated:
        """Start a backup request; poll `/api/requests/{rq_id}`, then download its
        `result_url`. The caller's same backup, if still running, is answered instead."""
        params = ExportParams(
            target=target, target_id=object_id, format=BACKUP_FORMAT, save_images=True
        )
        rq_id = await exports.start_backup(
            request, principal, params, filename=filename, location=location,
            cloud_storage_id=cloud_storage_id,
        )  # fmt: skip
        return ExportCreated(rq_id=rq_id)

    @router.get(
        f"/api/{plural}/{{object_id}}/backup/download",
        summary=f"Download the archive of a finished backup of a {target}",
        name=f"download_{target}_backup",
        response_class=StreamingResponse,
    )
    async def download_backup(
        object_id: int,
        principal: CurrentUser,
        exports: ExportsApi,
        rq_id: Annotated[str, Query()],
    ) -> StreamingResponse:
        """The backup's zip archive, streamed from storage."""
        return archive_response(
            await exports.download(principal, target, object_id, rq_id, backup=True)
        )


def _restore_route(kind: RestoreKind) -> None:
    path = restore_path(kind)

    async def owner(request: Request, principal: CurrentUser, restores: RestoresApi) -> str:
        return await restores.owner(request, principal, kind)

    @router.post(
        path,
        status_code=status.HTTP_202_ACCEPTED,
        summary=f"Restore a {kind} from an uploaded backup or one in a cloud storage",
        name=f"restore_{kind}_backup",
        responses={201: {"description": "TUS: the upload was created"}},
    )
    async def restore_backup(
        request: Request,
        principal: CurrentUser,
        restores: RestoresApi,
        session: DbSession,
        *,
        filename: Annotated[
            str | None,
            Query(
                description="The uploaded archive's name; with location=cloud_storage, the "
                "object's key"
            ),
        ] = None,
        location: Annotated[
            Location,
            Query(
                description="Where the archive is: uploaded (`local`, also when not given: "
                "a restore has no object yet whose default storage could apply, as in "
                "CVAT) or in a cloud storage"
            ),
        ] = "local",
        cloud_storage_id: Annotated[
            int | None, Query(description="With location=cloud_storage: the storage")
        ] = None,
    ) -> Response:
        """`Upload-Start` (202), TUS creation (`Upload-Length`: 201 and the upload's
        `Location`), then `Upload-Finish` with `filename` (202 `{rq_id}`); poll
        `/api/requests/{rq_id}`, whose `result_id` is the new {kind} once it has finished.
        With `location=cloud_storage`, `cloud_storage_id` and `filename` (the object's
        key) there is no upload: one POST answers 202 `{rq_id}` and the worker reads the
        archive from the storage, as CVAT does."""
        files_of = await restores.owner(request, principal, kind)
        step = upload_step(request)
        if location == "cloud_storage" and step != "create":
            rq_id = await restores.from_cloud_storage(
                request, session, principal, kind=kind, cloud_storage_id=cloud_storage_id,
                filename=filename,
            )  # fmt: skip
            return _accepted(rq_id)
        if step == "start":
            await restores.start(session, files_of)
            return Response(status_code=status.HTTP_202_ACCEPTED)
        if step == "create":
            return await restores.create_upload(request, session, principal, files_of, path)
        if step != "finish":
            raise bad_request(
                "Send the backup as CVAT's clients do: Upload-Start, a TUS upload, then "
                "Upload-Finish with filename.",
                "header.Upload-Finish",
            )
        rq_id = await restores.finish(
            request, session, principal, files_of, kind=kind, filename=filename
        )
        return _accepted(rq_id)

    router.include_router(tus_router(path, owner, restore_uploads, tags=("backup",)))


def _accepted(rq_id: str) -> Response:
    """202 with the restore's `{rq_id}`."""
    created = ExportCreated(rq_id=rq_id).model_dump_json()
    return Response(created, status.HTTP_202_ACCEPTED, media_type="application/json")


for _target, _plural in (("project", "projects"), ("task", "tasks")):
    _backup_routes(_target, _plural)  # type: ignore[arg-type]
    _restore_route(_target)  # type: ignore[arg-type]
