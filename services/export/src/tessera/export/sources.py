"""Where the file of an import or a restore request is, and getting it to the worker.

A request's file is either one the caller uploaded into the service's bucket (CVAT's
upload protocol, `tessera.platform.uploads`) or, with `?location=cloud_storage&
cloud_storage_id=&filename=` (or without `location`, from the object's default
`source_storage`: `tessera.export.locations`), an object of a cloud storage the caller
sees, read through the ingest service (which alone holds the storage's credentials).
The queued payload says which as its `source` (`FileSource`); the worker copies the file
into a local one (`fetch`) and, once the request has ended, deletes it if it was
uploaded (`forget`): an object of a cloud storage is the caller's, and stays.

`FileRequests` is what the services that start such requests (`Imports`, `Restores`,
`DatasetImports`) share: their dependencies, the TUS creation of an upload, the cloud
storage object a request names, and the request recorded and queued with its source.
`FileRequestRunner` is what their workers share.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.export.locations import Chosen, check_cloud_storage, storage_id_of
from tessera.platform.auth import Principal
from tessera.platform.bus import Outbox
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.db import Database
from tessera.platform.errors import Problem, bad_request
from tessera.platform.requests import Operation, RequestStore
from tessera.platform.storage import ObjectNotFound, ObjectStorage
from tessera.platform.uploads import Uploads
from tessera.platform.workqueue import WorkQueue

MAX_KEY_LENGTH = 1024
"""The longest object key of a cloud storage (S3's limit, and ingest's)."""


class Uploaded(BaseModel):
    """A file the caller uploaded: an object of the service's bucket."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["upload"] = "upload"
    object_key: str


class CloudObject(BaseModel):
    """An object of a cloud storage's bucket, read through the ingest service."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["cloud_storage"] = "cloud_storage"
    cloud_storage_id: int
    key: str


FileSource = Annotated[Uploaded | CloudObject, Field(discriminator="kind")]
"""Where a request's file is (the `source` of its queued payload)."""
_SOURCE: TypeAdapter[Uploaded | CloudObject] = TypeAdapter(FileSource)


class SourceMissing(Exception):
    """The request's file cannot be read (gone, never there, or refused); the message
    says which, for the request's result."""


def source_of(payload: Mapping[str, Any]) -> Uploaded | CloudObject:
    """The file of a queued request (a payload queued before `source` existed names its
    upload's `object_key`)."""
    if "source" in payload:
        return _SOURCE.validate_python(payload["source"])
    return Uploaded(object_key=payload["object_key"])


async def fetch(
    source: Uploaded | CloudObject, path: Path, *, storage: ObjectStorage, ingest: IngestClient
) -> None:
    """Copy the request's file into the local file `path`. `SourceMissing` when it is not
    there or the storage refuses it; other failures (the bucket's, ingest's 5xx) raise as
    they are, for another attempt."""
    if isinstance(source, Uploaded):
        try:
            await storage.get_file(source.object_key, path)
        except ObjectNotFound:
            raise SourceMissing(
                "The uploaded file is gone: an interrupted attempt of this request ended with "
                "it; check what it changed and send the file again if needed."
            ) from None
        return
    try:
        await ingest.download_cloud_object(source.cloud_storage_id, source.key, path)
    except Problem as problem:
        if problem.status >= 500:
            raise
        raise SourceMissing(
            f"The object {source.key!r} of cloud storage {source.cloud_storage_id} could not "
            f"be read: {problem.detail}"
        ) from None


async def forget(source: Uploaded | CloudObject, storage: ObjectStorage) -> None:
    """Delete the request's file if the caller uploaded it; a cloud storage's object is
    never deleted."""
    if isinstance(source, Uploaded):
        await storage.delete(source.object_key)


class FileRequests:
    """The base of the services that start requests on a caller's file (see the module's
    docstring)."""

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        uploads: Uploads,
        *,
        annotations: AnnotationsClient,
        ingest: IngestClient,
        requests: RequestStore,
        max_upload_bytes: int,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.uploads = uploads
        self.annotations = annotations
        self.ingest = ingest
        self.requests = requests
        self.max_upload_bytes = max_upload_bytes

    async def create_upload(
        self, request: Request, session: AsyncSession, principal: Principal, owner: str, path: str
    ) -> Response:
        """TUS creation of the caller's file (`201` with its `Location`)."""
        return await self.uploads.tus_create(
            request, session, owner, principal.user_id, path, max_length=self.max_upload_bytes
        )

    async def cloud_object(self, request: Request, chosen: Chosen, key: str | None) -> CloudObject:
        """The object a request names in the cloud storage of its location
        (`location=cloud_storage&cloud_storage_id=`, or the object's default storage):
        the object's key is `filename` (400 naming the one missing), in a storage the
        caller sees (their 403 or 404 otherwise, as ingest answers it). Whether the
        object exists is the worker's to find out, as in CVAT."""
        storage_id_of(chosen)  # a missing cloud_storage_id is named before the filename
        if key is None or not key.strip():
            where = (
                "with location=cloud_storage"
                if chosen.default is None
                else f"from a cloud storage: no location was given, and {chosen.default} is "
                f"cloud storage {chosen.cloud_storage_id}"
            )
            raise bad_request(
                f"filename, the object's key in the cloud storage, is required {where}",
                "filename",
            )
        if len(key.encode()) > MAX_KEY_LENGTH:
            raise bad_request(f"An object key has at most {MAX_KEY_LENGTH} bytes.", "filename")
        storage_id = await check_cloud_storage(self.ingest, request, chosen)
        return CloudObject(cloud_storage_id=storage_id, key=key)

    async def queue(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        *,
        work: WorkQueue,
        operation: Operation,
        source: Uploaded | CloudObject,
        payload: Mapping[str, Any],
    ) -> str:
        """Record the caller's request and queue its work in the caller's transaction; its
        rq_id. The worker of `work` gets `payload` with the request's `source`, `actor_id`
        (the caller) and `organization_id` (where the caller acts; None: their workspace)."""
        context = await self.annotations.context(request)
        rq_id = await self.requests.create(
            session, operation, owner_id=principal.user_id,
            organization_id=context.organization_id,
        )  # fmt: skip
        body = {
            **payload,
            "source": source.model_dump(mode="json"),
            "actor_id": principal.user_id,
            "organization_id": context.organization_id,
        }
        await work.enqueue(session, self.outbox, rq_id, body)
        return rq_id


class FileRequestRunner:
    """The base of the workers that run requests on a caller's file (imports, dataset
    imports, restores): the bucket the uploads are in, the services they write through,
    and the request store they report to."""

    def __init__(
        self,
        storage: ObjectStorage,
        *,
        annotations: AnnotationsClient,
        ingest: IngestClient,
        requests: RequestStore,
    ) -> None:
        self.storage = storage
        self.annotations = annotations
        self.ingest = ingest
        self.requests = requests
