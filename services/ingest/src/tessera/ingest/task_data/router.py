"""`POST /api/tasks/{id}/data/` and its TUS upload URLs, as CVAT's clients send them.

The headers say which step a POST is (`tessera.platform.uploads.upload_step`):
`Upload-Start`, `Upload-Multiple` (a form of `client_files[i]`), `Upload-Length` (TUS
creation), `Upload-Finish`, or none of them (one request with everything: a JSON body
naming server or remote files, or a form). TUS `OPTIONS`, `HEAD` and `PATCH` are the
platform's `tus_router`, behind the same access check.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from tessera.ingest.cloud_storages.service import CloudStorages
from tessera.ingest.config import IngestSettings
from tessera.ingest.creation.queue import enqueue
from tessera.ingest.state import AnnotationsApi, Clouds, Requests, UploadStore, upload_store
from tessera.ingest.task_data import service
from tessera.ingest.task_data.schemas import DataRequest, DataResponse
from tessera.platform.auth import CurrentUser
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.contracts.annotations import TaskAccess
from tessera.platform.db import DbSession
from tessera.platform.errors import NotFound, unprocessable
from tessera.platform.requests import Operation
from tessera.platform.uploads import tus_created, tus_creation, tus_router, upload_step

router = APIRouter(prefix="/api/tasks", tags=["task data"])


def _settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state.platform.settings
    return settings


async def _access(client: AnnotationsClient, request: Request, task_id: int) -> TaskAccess:
    access = await client.task_access(request, task_id)
    service.require_change(access)
    return access


async def _task_files(task_id: int, request: Request, client: AnnotationsApi) -> str:
    """The owner of the task's uploaded files, once the caller may change the task."""
    await _access(client, request, task_id)
    return service.task_files(task_id)


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
    uploads: UploadStore,
) -> Response:
    """One step of attaching media, chosen by the `Upload-*` headers (see module doc)."""
    access = await _access(client, request, task_id)
    step = upload_step(request)
    if step == "start":
        await service.start(session, uploads, access)
        return Response(status_code=status.HTTP_202_ACCEPTED)
    if step == "create":
        asked = tus_creation(request, max_length=_settings(request).max_upload_bytes)
        upload = await service.tus_create(session, uploads, access, principal.user_id, asked)
        return tus_created(request, upload, f"/api/tasks/{task_id}/data")
    if step == "multiple":
        form = await request.form()
        files = _client_files(form.multi_items())
        await service.add_files(session, uploads, access, principal.user_id, files)
        return Response(status_code=status.HTTP_200_OK)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        files = _client_files(form.multi_items())
        await service.add_files(session, uploads, access, principal.user_id, files)
        raw: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        raw = _json_body(await request.body())
    options = _data_request(raw)
    if options.cloud_storage_id is not None:
        await _require_cloud_storage(request, client, clouds, session, options.cloud_storage_id)
    plan = await service.plan(session, _settings(request), uploads, access, options)
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


router.include_router(tus_router("/{task_id}/data", _task_files, upload_store, tags=("task data",)))
