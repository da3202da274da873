"""`/api/cloudstorages`: S3 buckets that tasks take their data from, as CVAT's API has them;
and the internal endpoint through which the export service writes archives into them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from tessera.ingest.cloud_storages.schemas import (
    CloudStoragePatch,
    CloudStorageRead,
    CloudStorageWrite,
    ContentPage,
)
from tessera.ingest.cloud_storages.service import list_query_of_storages, to_read
from tessera.ingest.state import AnnotationsApi, Clouds
from tessera.platform.auth import CurrentUser
from tessera.platform.contracts.annotations import CallerContext
from tessera.platform.contracts.ingest import CloudObjectWritten
from tessera.platform.db import DbSession
from tessera.platform.errors import Problem
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page

router = APIRouter(prefix="/api/cloudstorages", tags=["cloud storages"])


async def _context(request: Request, user: CurrentUser, client: AnnotationsApi) -> CallerContext:
    return await client.context(request)


Context = Annotated[CallerContext, Depends(_context)]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a cloud storage")
async def create_storage(
    body: CloudStorageWrite, ctx: Context, storages: Clouds, session: DbSession
) -> CloudStorageRead:
    """Check that the bucket lists with these credentials, then save it (keys encrypted)."""
    return await storages.create(session, ctx, body)


@router.get("", summary="List cloud storages")
async def list_storages(
    request: Request,
    *,
    ctx: Context,
    storages: Clouds,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_storages)],
) -> Page[CloudStorageRead]:
    """The storages visible in the caller's context (newest first unless sorted); `name`
    is the display name, `resource` the bucket."""
    count, results = await storages.page(session, ctx, query)
    return Page[CloudStorageRead].build(request, query.page, count, results)


@router.get("/{storage_id}", summary="A cloud storage")
async def get_storage(
    storage_id: int, ctx: Context, storages: Clouds, session: DbSession
) -> CloudStorageRead:
    """One storage (never its keys)."""
    return to_read(await storages.get(session, ctx, storage_id))


@router.patch("/{storage_id}", summary="Change a cloud storage")
async def update_storage(
    storage_id: int,
    body: CloudStoragePatch,
    ctx: Context,
    storages: Clouds,
    session: DbSession,
) -> CloudStorageRead:
    """Change the fields given; the bucket is checked again before saving."""
    return await storages.update(session, ctx, storage_id, body)


@router.delete(
    "/{storage_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a cloud storage"
)
async def delete_storage(
    storage_id: int, ctx: Context, storages: Clouds, session: DbSession
) -> Response:
    """Remove the storage and its keys (409 while tasks read their media from it)."""
    await storages.delete(session, ctx, storage_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{storage_id}/status", summary="Whether the bucket answers")
async def storage_status(
    storage_id: int, ctx: Context, storages: Clouds, session: DbSession
) -> str:
    """AVAILABLE, NOT_FOUND or FORBIDDEN."""
    return await storages.status(session, ctx, storage_id)


@router.get("/{storage_id}/content-v2", summary="A folder of the bucket")
async def storage_content(
    storage_id: int,
    *,
    ctx: Context,
    storages: Clouds,
    session: DbSession,
    prefix: str | None = None,
    next_token: str | None = None,
    page_size: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ContentPage:
    """Sub-folders and files of `prefix` (names relative to it), a page at a time."""
    return await storages.content(
        session, ctx, storage_id, prefix=prefix, next_token=next_token, page_size=page_size
    )


internal_router = APIRouter(prefix="/api/internal/cloudstorages", tags=["internal"])


@internal_router.put(
    "/{storage_id}/objects", summary="Write an object into a cloud storage (export service)"
)
async def write_object(
    storage_id: int,
    request: Request,
    principal: CurrentUser,
    storages: Clouds,
    key: Annotated[str, Query(min_length=1, max_length=1024)],
) -> CloudObjectWritten:
    """The request's body becomes the object `key` of the storage's bucket, written with the
    storage's credentials, which never leave this service."""
    if not principal.is_superuser:
        raise Problem(403, "Only the export service (an administrator) writes into storages.")
    return await storages.write_object(storage_id, key, request.stream())


@internal_router.get(
    "/{storage_id}/objects",
    summary="Read an object of a cloud storage (export service, for imports)",
    response_class=StreamingResponse,
)
async def read_object(
    storage_id: int,
    principal: CurrentUser,
    storages: Clouds,
    key: Annotated[str, Query(min_length=1, max_length=1024)],
) -> StreamingResponse:
    """The object `key` of the storage's bucket, streamed, read with the storage's
    credentials, which never leave this service."""
    if not principal.is_superuser:
        raise Problem(403, "Only the export service (an administrator) reads storages' objects.")
    blocks = await storages.read_object(storage_id, key)
    return StreamingResponse(blocks, media_type="application/octet-stream")
