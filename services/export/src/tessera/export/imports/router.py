"""CVAT's annotation import endpoint, `POST /api/{tasks|jobs}/{id}/annotations/`, in the
steps cvat-sdk's `import_annotations` sends (`Upload-Start`, a TUS upload, then
`Upload-Finish` with `?format=&filename=`), and the TUS appends under it; or, with
`?location=cloud_storage&cloud_storage_id=&filename=`, from an object of a cloud storage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from tessera.export.exports.schemas import Location
from tessera.export.imports.schemas import ImportCreated, ImportMode, ImportParams, ImportTargetKind
from tessera.export.imports.service import upload_path
from tessera.export.locations import Chosen
from tessera.export.state import ImportsApi, import_uploads
from tessera.platform.auth import CurrentUser
from tessera.platform.db import DbSession
from tessera.platform.errors import bad_request
from tessera.platform.uploads import tus_router, upload_step

router = APIRouter(tags=["import"])


def _import_route(target: ImportTargetKind) -> None:
    path = f"/api/{target}s/{{object_id}}/annotations"

    async def owner(
        object_id: int, request: Request, principal: CurrentUser, imports: ImportsApi
    ) -> str:
        return await imports.owner(request, principal, target, object_id)

    @router.post(
        path,
        status_code=status.HTTP_202_ACCEPTED,
        summary=f"Import annotations into a {target} from an uploaded file or a cloud storage",
        name=f"import_{target}_annotations",
        responses={201: {"description": "TUS: the upload was created"}},
    )
    async def import_annotations(
        object_id: int,
        request: Request,
        principal: CurrentUser,
        imports: ImportsApi,
        session: DbSession,
        *,
        format: Annotated[
            str | None,
            Query(description="An importer's name, as listed by /api/server/annotation/formats"),
        ] = None,
        filename: Annotated[
            str | None,
            Query(
                description="The uploaded file's name; with location=cloud_storage, the "
                "object's key"
            ),
        ] = None,
        import_mode: Annotated[ImportMode, Query()] = "replace",
        conv_mask_to_poly: Annotated[bool, Query()] = False,
        strict: Annotated[
            bool, Query(description="Fail instead of leaving out what does not match the task")
        ] = False,
        location: Annotated[
            Location | None,
            Query(
                description="Where the file is: uploaded (`local`) or in a cloud storage; "
                "without it, a request of the upload protocol is an upload and one POST "
                "without its headers reads the task's source_storage (a job's task's)"
            ),
        ] = None,
        cloud_storage_id: Annotated[
            int | None, Query(description="With location=cloud_storage: the storage")
        ] = None,
    ) -> Response:
        """`Upload-Start` (202), TUS creation (`Upload-Length`: 201 and the upload's
        `Location`), then `Upload-Finish` with `format` and `filename` (202 `{rq_id}`);
        poll `/api/requests/{rq_id}`. The import replaces the annotations (CVAT's
        default) or, with `import_mode=append`, adds to them. While an import of the
        caller's into the target has not ended, Upload-Start and Upload-Finish answer 409.

        With `location=cloud_storage`, `cloud_storage_id` and `filename` (the object's
        key) there is no upload: one POST answers 202 `{rq_id}` and the worker reads the
        object from the storage, as CVAT does. One POST without `location` (and without
        the upload's headers) does the same from the task's `source_storage` when that
        is a cloud storage (a job's task's), as CVAT does; the steps of an upload without
        `location` are an upload whatever the task's default (CVAT would take them for a
        read of the cloud storage, which cvat-sdk's `import_annotations` does not mean)."""
        files_of = await imports.owner(request, principal, target, object_id)
        step = upload_step(request)
        if step == "create":
            return await imports.create_upload(
                request, session, principal, files_of, upload_path(target, object_id)
            )
        chosen = (
            await imports.default_location(request, target, object_id)
            if location is None and step == "single"
            else Chosen(location or "local", cloud_storage_id)
        )
        cloud = chosen.location == "cloud_storage"
        if step == "start" and not cloud:
            await imports.start(session, principal, files_of, target, object_id)
            return Response(status_code=status.HTTP_202_ACCEPTED)
        if step != "finish" and not cloud:
            raise bad_request(
                "Send the file as CVAT's clients do: Upload-Start, a TUS upload, then "
                "Upload-Finish with format and filename; or name an object of a cloud "
                "storage with location=cloud_storage, cloud_storage_id and filename.",
                "header.Upload-Finish",
            )
        if not format:
            raise bad_request(
                "format, the importer of the file (GET /api/server/annotation/formats lists "
                "them), is required to import annotations",
                "format",
            )
        params = ImportParams(
            target=target, target_id=object_id, format=format, filename=filename or "",
            mode=import_mode, conv_mask_to_poly=conv_mask_to_poly, strict=strict,
        )  # fmt: skip
        if cloud:
            rq_id = await imports.from_cloud_storage(
                request, session, principal, files_of, params, chosen=chosen
            )
        else:
            rq_id = await imports.finish(request, session, principal, files_of, params)
        created = ImportCreated(rq_id=rq_id).model_dump_json()
        return Response(created, status.HTTP_202_ACCEPTED, media_type="application/json")

    router.include_router(tus_router(path, owner, import_uploads, tags=("import",)))


_target: ImportTargetKind
for _target in ("task", "job"):
    _import_route(_target)
