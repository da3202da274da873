"""CVAT's dataset import endpoint, `POST /api/projects/{id}/dataset/`, in the steps
cvat-sdk's `Project.import_dataset` sends (`Upload-Start`, a TUS upload, then
`Upload-Finish` with `?format=&filename=`), and the TUS appends under it; or, with
`?location=cloud_storage&cloud_storage_id=&filename=`, from an object of a cloud storage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from tessera.export.datasets.schemas import DatasetImportCreated, DatasetImportParams
from tessera.export.datasets.service import dataset_path
from tessera.export.exports.schemas import Location
from tessera.export.locations import Chosen
from tessera.export.state import DatasetsApi, dataset_uploads
from tessera.platform.auth import CurrentUser
from tessera.platform.db import DbSession
from tessera.platform.errors import bad_request
from tessera.platform.uploads import tus_router, upload_step

router = APIRouter(tags=["import"])
_PATH = "/api/projects/{project_id}/dataset"


async def _owner(
    project_id: int, request: Request, principal: CurrentUser, datasets: DatasetsApi
) -> str:
    return await datasets.owner(request, principal, project_id)


@router.post(
    _PATH,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Import a dataset into a project: a task per subset, with its images and annotations",
    name="import_project_dataset",
    responses={201: {"description": "TUS: the upload was created"}},
)
async def import_dataset(
    project_id: int,
    request: Request,
    principal: CurrentUser,
    datasets: DatasetsApi,
    session: DbSession,
    *,
    format: Annotated[
        str | None,
        Query(description="An importer's name, as listed by /api/server/annotation/formats"),
    ] = None,
    filename: Annotated[
        str | None,
        Query(
            description="The uploaded archive's name; with location=cloud_storage, the object's key"
        ),
    ] = None,
    conv_mask_to_poly: Annotated[
        bool,
        Query(
            description="Import masks as polygons (CVAT's default is true; Tessera keeps "
            "masks unless asked, as its task imports do)"
        ),
    ] = False,
    location: Annotated[
        Location | None,
        Query(
            description="Where the archive is: uploaded (`local`) or in a cloud storage; "
            "without it, a request of the upload protocol is an upload and one POST without "
            "its headers reads the project's source_storage"
        ),
    ] = None,
    cloud_storage_id: Annotated[
        int | None, Query(description="With location=cloud_storage: the storage")
    ] = None,
) -> Response:
    """`Upload-Start` (202), TUS creation (`Upload-Length`: 201 and the upload's
    `Location`), then `Upload-Finish` with `format` and `filename` (202 `{rq_id}`); poll
    `/api/requests/{rq_id}`. The archive (a zip of the dataset with its images) becomes a
    new task of the project per subset, with the subset's images and annotations; a
    project without labels gets the dataset's. While a dataset import into the project has
    not ended, Upload-Start and Upload-Finish answer 409.

    With `location=cloud_storage`, `cloud_storage_id` and `filename` (the object's key)
    there is no upload: one POST answers 202 `{rq_id}` and the worker reads the object
    from the storage, as CVAT does. One POST without `location` (and without the upload's
    headers) does the same from the project's `source_storage` when that is a cloud
    storage, as CVAT does; the steps of an upload without `location` are an upload
    whatever the project's default."""
    files_of = await datasets.owner(request, principal, project_id)
    step = upload_step(request)
    if step == "create":
        return await datasets.create_upload(
            request, session, principal, files_of, dataset_path(project_id)
        )
    chosen = (
        await datasets.default_location(request, project_id)
        if location is None and step == "single"
        else Chosen(location or "local", cloud_storage_id)
    )
    cloud = chosen.location == "cloud_storage"
    if step == "start" and not cloud:
        await datasets.start(session, files_of, project_id)
        return Response(status_code=status.HTTP_202_ACCEPTED)
    if step != "finish" and not cloud:
        raise bad_request(
            "Send the dataset as CVAT's clients do: Upload-Start, a TUS upload, then "
            "Upload-Finish with format and filename; or name an object of a cloud storage "
            "with location=cloud_storage, cloud_storage_id and filename.",
            "header.Upload-Finish",
        )
    if not format:
        raise bad_request("format names the importer of the dataset", "format")
    params = DatasetImportParams(
        project_id=project_id, format=format, filename=filename or "",
        conv_mask_to_poly=conv_mask_to_poly,
    )  # fmt: skip
    if cloud:
        rq_id = await datasets.from_cloud_storage(
            request, session, principal, files_of, params, chosen=chosen
        )
    else:
        rq_id = await datasets.finish(request, session, principal, files_of, params)
    created = DatasetImportCreated(rq_id=rq_id).model_dump_json()
    return Response(created, status.HTTP_202_ACCEPTED, media_type="application/json")


router.include_router(tus_router(_PATH, _owner, dataset_uploads, tags=("import",)))
