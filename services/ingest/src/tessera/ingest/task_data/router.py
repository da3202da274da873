"""`POST /api/tasks/{id}/data/` and its TUS upload URLs, as CVAT's clients send them.

The headers say which step a POST is: `Upload-Start`, `Upload-Multiple` (a form of
`client_files[i]`), `Upload-Length` (TUS creation), `Upload-Finish`, or none of them
(one request with everything: a JSON body naming server or remote files, or a form).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tessera.ingest.cloud_storages.service import CloudStorages
from tessera.ingest.config import IngestSettings
from tessera.ingest.creation.queue import enqueue
from tessera.ingest.state import AnnotationsApi, Clouds, Requests
from tessera.ingest.task_data import service
from tessera.ingest.task_data.schemas import DataRequest, DataResponse
from tessera.platform.auth import CurrentUser
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.contracts.annotations import TaskAccess
from tessera.platform.db import DbSession
from tessera.platform.errors import NotFound, Problem, unprocessable
from tessera.platform.proxying import public_url
from tessera.platform.requests import Operation

router = APIRouter(prefix="/api/tasks", tags=["task data"])

TUS_HEADERS = {
    "Tus-Resumable": "1.0.0",
    "Tus-Version": "1.0.0",
    "Tus-Extension": "creation",
    "Cache-Control": "no-store",
}


def _settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state.platform.settings
    return settings


async def _access(client: AnnotationsClient, request: Request, task_id: int) -> TaskAccess:
    access = await client.task_access(request, task_id)
    service.require_change(access)
    return access


async def _require_cloud_storage(
    request: Request,
    client: AnnotationsClient,
    clouds: CloudStorages,
    session: DbSession,
    storage_id: int,
) -> None:
    """422 naming `cloud_storage_id` unless the caller sees that storage."""
    try:
        await clouds.get(session, await client.context(request), storage_id)
    except NotFound as exc:
        raise unprocessable([("body.cloud_storage_id", str(exc.detail))]) from exc


@router.options("/{task_id}/data", summary="TUS capabilities of task data uploads")
async def tus_options(task_id: int) -> Response:
    """The TUS protocol version and extensions this endpoint speaks."""
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=TUS_HEADERS)


@router.post(
    "/{task_id}/data",
    summary="Attach media to a task (uploads, TUS, share or remote files)",
    status_code=status.HTTP_202_ACCEPTED,
    responses={202: {"model": DataResponse}},
)
async def post_data(
    task_id: int,
    request: Request,
    principal: CurrentUser,
    session: DbSession,
    *,
    client: AnnotationsApi,
    clouds: Clouds,
    store: Requests,
) -> Response:
    """One step of attaching media, chosen by the `Upload-*` headers (see module doc)."""
    access = await _access(client, request, task_id)
    storage = request.app.state.platform.storage
    headers = request.headers
    is_form = headers.get("content-type", "").startswith("multipart/form-data")
    if "upload-finish" not in headers:
        if "upload-start" in headers:
            await service.start(session, storage, access)
            return Response(status_code=status.HTTP_202_ACCEPTED)
        if "upload-length" in headers:
            upload = await service.tus_create(
                session, _settings(request), access=access, owner_id=principal.user_id,
                length_header=headers["upload-length"], metadata=headers.get("upload-metadata"),
            )  # fmt: skip
            location = public_url(request, f"/api/tasks/{task_id}/data/{upload.id}")
            return Response(
                status_code=status.HTTP_201_CREATED,
                headers={**TUS_HEADERS, "Location": location, "Upload-Filename": upload.filename,
                         "Upload-Offset": "0"},
            )  # fmt: skip
        if "upload-multiple" in headers:
            form = await request.form()
            await service.add_files(session, storage, access, _client_files(form.multi_items()))
            return Response(status_code=status.HTTP_200_OK)
    if is_form:
        form = await request.form()
        await service.add_files(session, storage, access, _client_files(form.multi_items()))
        raw: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        raw = _json_body(await request.body())
    options = _data_request(raw)
    if options.cloud_storage_id is not None:
        await _require_cloud_storage(request, client, clouds, session, options.cloud_storage_id)
    plan = await service.plan(session, _settings(request), access, options)
    rq_id = await store.create(
        session,
        Operation(type="create:task", target="task", task_id=task_id),
        owner_id=principal.user_id,
        organization_id=access.organization_id,
    )
    await enqueue(session, request.app.state.platform.outbox, rq_id, plan)
    await session.commit()
    return Response(
        orjson.dumps({"rq_id": rq_id}),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


def _client_files(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(key, value) for key, value in items if key.startswith("client_files")]


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"malformed JSON: {exc}", "type": "json_invalid"}]
        ) from exc
    if not isinstance(body, dict):
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "must be a JSON object", "type": "dict_type"}]
        )
    return body


def _data_request(raw: dict[str, Any]) -> DataRequest:
    try:
        return DataRequest.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc


@router.head("/{task_id}/data/{upload_id}", name="tus_status", include_in_schema=False)
async def tus_status(
    task_id: int, upload_id: uuid.UUID, request: Request, principal: CurrentUser,
    session: DbSession, *, client: AnnotationsApi,
) -> Response:  # fmt: skip
    """TUS: the offset of a resumable upload."""
    await _access(client, request, task_id)
    upload = await service.tus_status(session, task_id, upload_id, principal.user_id)
    return Response(
        status_code=status.HTTP_200_OK,
        headers={**TUS_HEADERS, "Upload-Offset": str(upload.offset),
                 "Upload-Length": str(upload.length)},
    )  # fmt: skip


@router.patch("/{task_id}/data/{upload_id}", summary="TUS: append to a resumable upload")
async def tus_patch(
    task_id: int, upload_id: uuid.UUID, request: Request, principal: CurrentUser,
    session: DbSession, *, client: AnnotationsApi,
) -> Response:  # fmt: skip
    """Append the body at `Upload-Offset` (`application/offset+octet-stream`)."""
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise Problem(415, "TUS PATCH bodies must be application/offset+octet-stream.")
    await _access(client, request, task_id)
    upload = await service.tus_append(
        session, request.app.state.platform.storage, task_id=task_id, upload_id=upload_id,
        owner_id=principal.user_id, offset_header=request.headers.get("upload-offset"),
        body=request.stream(),
    )  # fmt: skip
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={**TUS_HEADERS, "Upload-Offset": str(upload.offset)},
    )
