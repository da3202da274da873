"""CVAT's file-upload protocol, for every service that takes files from CVAT's clients.

cvat-sdk and cvat-cli send files to `POST <path>/` in steps that headers name
(`upload_step`): `Upload-Start` begins afresh; each file then arrives either in a form
(`Upload-Multiple`, parts `client_files[i]`) or by TUS 1.0.0 (`POST` with
`Upload-Length` and `Upload-Metadata: filename <base64>` creates `<path>/{upload_id}`,
`PATCH` appends at `Upload-Offset`, `HEAD` says how much has arrived, `OPTIONS` lists
the capabilities); `Upload-Finish` (with `?filename=` for a single file) says what to
do with the files. What that last step does is the service's own (a task's media, an
annotation import, a backup); this module keeps the files until then.

Files belong to an *owner*: a key the service chooses, which names what they are for
and is where their objects live, without a trailing slash (ingest's `tasks/12` for a
task's media). A file is the object `{owner}/uploads/{filename}`; a TUS upload keeps
each PATCH as an object under `{owner}/parts/{upload_id}/` and joins them into the file
when its last byte arrives. Everything under those two prefixes is the owner's, and
goes when its files are forgotten.
File names are base names (clients send whole local paths), unique per owner; the
owner's complete files keep the order in which they completed. `Upload-Start` forgets
whatever an abandoned earlier attempt left.

A service mounts `tus_router` at its upload path, with a FastAPI dependency that checks
the caller's access and names the owner, and answers the `POST` steps itself with
`Uploads` and the helpers here (`tus_creation`, `tus_created`).
"""

import base64
import binascii
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from tessera.platform.auth import CurrentUser
from tessera.platform.db import DbSession
from tessera.platform.errors import Problem, unprocessable
from tessera.platform.proxying import public_url
from tessera.platform.storage import ObjectStorage

TUS_VERSION = "1.0.0"
TUS_HEADERS = {
    "Tus-Resumable": TUS_VERSION,
    "Tus-Version": TUS_VERSION,
    "Tus-Extension": "creation",
    "Cache-Control": "no-store",
}
MAX_CHUNK = 128 * 2**20
"""The most bytes one PATCH may carry (cvat-sdk sends 10 MiB); a chunk is held in memory."""
POSITIONS = "uploads_position"
"""The sequence that orders complete files (by when they completed)."""
_LOCK_CLASS = 1_000_004
_FORBIDDEN_NAME_CHARS = frozenset(chr(c) for c in range(32)) | {"\x7f"}

UploadStep = Literal["start", "multiple", "create", "finish", "single"]


def uploads_table(metadata: sa.MetaData, schema: str) -> sa.Table:
    """The `uploads` table of a service's schema: one row per file of an owner.

    A row is complete once its file is whole (`position` set, from the `POSITIONS`
    sequence: complete files sort in the order they completed); until then `received`
    counts the bytes TUS has stored.
    """
    sa.Sequence(POSITIONS, schema=schema, metadata=metadata)
    return sa.Table(
        "uploads",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("position", sa.BigInteger),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("owner", "filename", name="uploads_owner_filename"),
        schema=schema,
    )


def create_uploads_table(op: Any, schema: str) -> None:
    """Create `uploads` in a service's migration (frozen, as migrations are)."""
    op.execute(sa.schema.CreateSequence(sa.Sequence(POSITIONS, schema=schema)))
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("position", sa.BigInteger),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("owner", "filename", name="uploads_owner_filename"),
        sa.CheckConstraint("0 <= received AND received <= length", name="uploads_received"),
        sa.CheckConstraint(
            "position IS NULL OR received = length", name="uploads_complete_when_received"
        ),
        schema=schema,
    )


def safe_name(raw: str | None, field: str) -> str:
    """The base name of a client's file name (clients send whole local paths); 422 naming
    `field` if there is none, or it holds control characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in (".", "..") or len(name.encode()) > 255:
        raise unprocessable([(field, f"{raw!r} is not a usable file name")])
    if _FORBIDDEN_NAME_CHARS.intersection(name):
        raise unprocessable([(field, f"{raw!r} contains control characters")])
    return name


@dataclass(frozen=True)
class Upload:
    """One file of an owner: complete, or still arriving by TUS (`offset` of `length`)."""

    id: uuid.UUID
    owner: str
    user_id: int
    filename: str
    length: int
    offset: int
    object_key: str
    complete: bool
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class TusCreation:
    """What a TUS creation request asks for: a file of `length` bytes, named in `metadata`."""

    filename: str
    length: int
    metadata: Mapping[str, str]


def _upload_of(row: sa.Row[Any]) -> Upload:
    return Upload(
        id=row.id,
        owner=row.owner,
        user_id=row.user_id,
        filename=row.filename,
        length=row.length,
        offset=row.received,
        object_key=row.object_key,
        complete=row.position is not None,
        metadata=row.metadata,
    )


class Uploads:
    """The uploaded files of a service, in its `uploads` table and its bucket.

    Every method works in the caller's transaction (`session`), so a service can check
    its own rules and change its own tables in the same one; the steps that change an
    owner's set of files take a transaction-scoped lock on the owner (`lock`).
    """

    def __init__(self, storage: ObjectStorage, schema: str, *, max_chunk: int = MAX_CHUNK) -> None:
        self.storage = storage
        self.schema = schema
        self.max_chunk = max_chunk
        self.table = uploads_table(sa.MetaData(), schema)

    @staticmethod
    def file_key(owner: str, filename: str) -> str:
        """The object of an owner's file."""
        return f"{owner}/uploads/{filename}"

    @staticmethod
    def _parts_prefix(owner: str, upload_id: uuid.UUID) -> str:
        return f"{owner}/parts/{upload_id}/"

    async def lock(self, session: AsyncSession, owner: str) -> None:
        """Serialise the steps that change the owner's files until the transaction ends
        (taking it again in the same transaction is free)."""
        key = sa.func.hashtext(f"{self.schema}:{owner}")
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_CLASS, key)))

    async def start(self, session: AsyncSession, owner: str) -> None:
        """Upload-Start: forget the owner's files and unfinished uploads, and delete them."""
        await self.forget(session, owner)
        await self.delete_objects(owner)

    async def forget(self, session: AsyncSession, owner: str) -> None:
        """Forget the owner's files and unfinished uploads (their objects stay: see
        `delete_objects`, for after the transaction commits)."""
        await self.lock(session, owner)
        await session.execute(sa.delete(self.table).where(self.table.c.owner == owner))

    async def delete_objects(self, owner: str) -> None:
        """Delete the objects of the owner's files and of its unfinished uploads."""
        await self.storage.delete_prefix(f"{owner}/uploads/")
        await self.storage.delete_prefix(f"{owner}/parts/")

    async def add_files(
        self, session: AsyncSession, owner: str, user_id: int, files: Sequence[tuple[str, Any]]
    ) -> list[Upload]:
        """Upload-Multiple: store the files of a form's `(field, value)` items, in order.

        422 naming a field that is not a file or has no usable name; 409 for a name the
        owner already has.
        """
        await self.lock(session, owner)
        taken = await self._names(session, owner)
        stored = []
        for field, value in files:
            if not isinstance(value, UploadFile):
                raise unprocessable([(f"body.{field}", "must be a file")])
            name = safe_name(value.filename, f"body.{field}")
            _require_free(name, taken)
            key = self.file_key(owner, name)
            async with self.storage.upload(key) as upload:
                while block := await value.read(8 * 2**20):
                    await upload.write(block)
            row = await self._insert(
                session, owner, user_id=user_id, filename=name, length=upload.size,
                received=upload.size,
            )  # fmt: skip
            stored.append(await self._complete(session, row.id))
            taken.add(name)
        return stored

    async def create(
        self, session: AsyncSession, owner: str, user_id: int, creation: TusCreation
    ) -> Upload:
        """TUS creation: an upload of `creation.length` bytes, none received yet; 409 for
        a name the owner already has."""
        await self.lock(session, owner)
        _require_free(creation.filename, await self._names(session, owner))
        row = await self._insert(
            session, owner, user_id=user_id, filename=creation.filename,
            length=creation.length, received=0, metadata=creation.metadata,
        )  # fmt: skip
        return _upload_of(row)

    async def tus_create(
        self,
        request: Request,
        session: AsyncSession,
        owner: str,
        user_id: int,
        path: str,
        *,
        max_length: int,
    ) -> Response:
        """The whole TUS creation step of a `POST` at `path`: the request read
        (`tus_creation`), the upload created (`create`), its `201` (`tus_created`)."""
        creation = tus_creation(request, max_length=max_length)
        upload = await self.create(session, owner, user_id, creation)
        return tus_created(request, upload, path)

    async def get(
        self, session: AsyncSession, owner: str, upload_id: uuid.UUID, user_id: int
    ) -> Upload:
        """TUS HEAD: the caller's upload and how much of it has arrived; 404 if the owner
        has no such upload, 403 if another user started it."""
        return _upload_of(await self._own(session, owner, upload_id, user_id, lock=False))

    async def append(
        self,
        session: AsyncSession,
        owner: str,
        upload_id: uuid.UUID,
        user_id: int,
        *,
        offset_header: str | None,
        body: AsyncIterator[bytes],
    ) -> Upload:
        """TUS PATCH: append `body` at `Upload-Offset`; at its length the file is joined.

        404/403 as `get`; 422 without an offset; 409 (with the upload's `Upload-Offset`)
        for an offset that is not the upload's; 413 for more bytes than the upload's
        length or `max_chunk`. A complete upload takes empty PATCHes at its length.
        """
        row = await self._own(session, owner, upload_id, user_id, lock=True)
        if offset_header is None or not offset_header.isdigit():
            raise unprocessable([("header.Upload-Offset", "must be a non-negative integer")])
        if int(offset_header) != row.received:
            raise Problem(
                409,
                f"Upload-Offset {offset_header} is not the upload's offset {row.received}.",
                headers={"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(row.received)},
            )
        limit = min(row.length - row.received, self.max_chunk)
        data = bytearray()
        async for block in body:
            data += block
            if len(data) > limit:
                raise Problem(
                    413,
                    f"More bytes than the upload's length {row.length} or the chunk "
                    f"limit of {self.max_chunk} bytes.",
                )
        received = row.received + len(data)
        if data:
            key = f"{self._parts_prefix(owner, upload_id)}{row.received:016d}"
            await self.storage.put(key, bytes(data))
            await session.execute(
                self.table.update().where(self.table.c.id == upload_id).values(received=received)
            )
        if received == row.length and row.position is None:
            await self._join(owner, upload_id, row.object_key)
            return await self._complete(session, upload_id)
        return replace(_upload_of(row), offset=received)

    async def files(self, session: AsyncSession, owner: str) -> list[Upload]:
        """The owner's complete files, in the order they completed."""
        query = (
            sa.select(self.table)
            .where(self.table.c.owner == owner, self.table.c.position.is_not(None))
            .order_by(self.table.c.position)
        )
        return [_upload_of(row) for row in await session.execute(query)]

    async def pending(self, session: AsyncSession, owner: str) -> list[Upload]:
        """The owner's TUS uploads whose last byte has not arrived, by file name."""
        query = (
            sa.select(self.table)
            .where(self.table.c.owner == owner, self.table.c.position.is_(None))
            .order_by(self.table.c.filename)
        )
        return [_upload_of(row) for row in await session.execute(query)]

    async def file(
        self,
        session: AsyncSession,
        owner: str,
        filename: str | None,
        user_id: int,
        *,
        field: str = "query.filename",
    ) -> Upload:
        """Upload-Finish of one file: the caller's complete file of that name (a client's
        name is reduced to its base name, as on arrival); 422 naming `field` otherwise."""
        name = safe_name(filename, field)
        row = (
            await session.execute(
                sa.select(self.table).where(
                    self.table.c.owner == owner,
                    self.table.c.filename == name,
                    self.table.c.user_id == user_id,
                )
            )
        ).first()
        if row is None:
            raise unprocessable([(field, f"no file named {name!r} was uploaded")])
        if row.position is None:
            done = f"{row.received} of {row.length} bytes"
            raise unprocessable([(field, f"the upload of {name!r} did not finish ({done})")])
        return _upload_of(row)

    async def _names(self, session: AsyncSession, owner: str) -> set[str]:
        names = await session.scalars(
            sa.select(self.table.c.filename).where(self.table.c.owner == owner)
        )
        return set(names)

    async def _insert(
        self,
        session: AsyncSession,
        owner: str,
        *,
        user_id: int,
        filename: str,
        length: int,
        received: int,
        metadata: Mapping[str, str] | None = None,
    ) -> sa.Row[Any]:
        inserted: sa.Row[Any] = (
            await session.execute(
                self.table.insert()
                .values(
                    id=uuid.uuid4(), owner=owner, user_id=user_id, filename=filename,
                    length=length, received=received, metadata=dict(metadata or {}),
                    object_key=self.file_key(owner, filename),
                )
                .returning(self.table)
            )
        ).one()  # fmt: skip
        return inserted

    async def _own(
        self, session: AsyncSession, owner: str, upload_id: uuid.UUID, user_id: int, *, lock: bool
    ) -> sa.Row[Any]:
        query = sa.select(self.table).where(
            self.table.c.id == upload_id, self.table.c.owner == owner
        )
        if lock:
            query = query.with_for_update()
        row = (await session.execute(query)).first()
        if row is None:
            raise Problem(404, f"Upload {upload_id} does not exist.")
        if row.user_id != user_id:
            raise Problem(403, "This upload was started by another user.")
        return row

    async def _join(self, owner: str, upload_id: uuid.UUID, key: str) -> None:
        """Write the parts of an upload, in offset order, as its file; delete the parts."""
        prefix = self._parts_prefix(owner, upload_id)
        async with self.storage.upload(key) as joined:
            async for part_key, _ in self.storage.list_keys(prefix):
                async for block in self.storage.stream(part_key, chunk_size=8 * 2**20):
                    await joined.write(block)
        await self.storage.delete_prefix(prefix)

    async def _complete(self, session: AsyncSession, upload_id: uuid.UUID) -> Upload:
        """Mark a whole file complete, after every file completed before it."""
        row = (
            await session.execute(
                self.table.update()
                .where(self.table.c.id == upload_id)
                .values(position=sa.func.nextval(f"{self.schema}.{POSITIONS}"))
                .returning(self.table)
            )
        ).one()
        return _upload_of(row)


def _require_free(name: str, taken: set[str]) -> None:
    if name in taken:
        raise Problem(409, f"A file named {name!r} was already uploaded.")


def upload_step(request: Request) -> UploadStep:
    """Which step of the protocol a `POST` to an upload path is, by its headers:
    `Upload-Finish` first, then `Upload-Start`, TUS creation (`Upload-Length`),
    `Upload-Multiple`; `single` for none of them (everything in one request)."""
    headers = request.headers
    if "upload-finish" in headers:
        return "finish"
    if "upload-start" in headers:
        return "start"
    if "upload-length" in headers:
        return "create"
    if "upload-multiple" in headers:
        return "multiple"
    return "single"


def require_tus_version(request: Request) -> None:
    """412 (naming the version spoken) for a `Tus-Resumable` other than 1.0.0; a request
    without the header is taken as 1.0.0."""
    version = request.headers.get("tus-resumable")
    if version is not None and version != TUS_VERSION:
        raise Problem(
            412,
            f"Tus-Resumable {version} is not supported; this server speaks {TUS_VERSION}.",
            headers={"Tus-Version": TUS_VERSION},
        )


def tus_creation(request: Request, *, max_length: int) -> TusCreation:
    """The upload a TUS creation `POST` asks for: 412 as `require_tus_version`; 422 for
    a bad `Upload-Length` or `Upload-Metadata` (base64 values, `filename` required);
    413 for a length over `max_length`."""
    require_tus_version(request)
    length_header = request.headers.get("upload-length")
    if length_header is None or not length_header.isdigit():
        raise unprocessable([("header.Upload-Length", "must be a non-negative integer")])
    length = int(length_header)
    if length > max_length:
        raise Problem(413, f"Upload-Length {length} is over the limit of {max_length} bytes.")
    metadata: dict[str, str] = {}
    for item in request.headers.get("upload-metadata", "").split(","):
        key, _, value = item.strip().partition(" ")
        if key:
            try:
                metadata[key] = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise unprocessable(
                    [("header.Upload-Metadata", f"{key}: not base64 of UTF-8 text")]
                ) from exc
    if "filename" not in metadata:
        raise unprocessable([("header.Upload-Metadata", "must name the file: 'filename <b64>'")])
    return TusCreation(safe_name(metadata["filename"], "header.Upload-Metadata"), length, metadata)


def tus_created(request: Request, upload: Upload, path: str) -> Response:
    """`201` for a created upload: its URL (`{path}/{id}` on the address the client used,
    so the token still goes with the PATCHes behind the gateway), and the file name the
    client must give in `Upload-Finish` (`Upload-Filename`)."""
    return Response(
        status_code=status.HTTP_201_CREATED,
        headers={
            **TUS_HEADERS,
            "Location": public_url(request, f"{path}/{upload.id}"),
            "Upload-Filename": upload.filename,
            "Upload-Offset": str(upload.offset),
        },
    )


def _offset_octet_stream(request: Request) -> None:
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise Problem(415, "TUS PATCH bodies must be application/offset+octet-stream.")


def tus_router(
    path: str,
    owner: Callable[..., Awaitable[str]],
    store_of: Callable[[Request], Uploads],
    *,
    tags: Sequence[str] = ("uploads",),
) -> APIRouter:
    """TUS at a service's upload path (`/api/tasks/{task_id}/annotations`): `OPTIONS`
    `{path}`, `HEAD` and `PATCH` `{path}/{upload_id}`.

    `owner` is a FastAPI dependency (it may take the path's parameters and other
    dependencies) that checks the caller's access, raising a `Problem`, and returns the
    owner of the files; `store_of` gives the service's `Uploads`. The creation `POST` at
    `{path}` is the service's, with the other steps of the protocol.
    """
    router = APIRouter(tags=list(tags))
    # Evaluated here, with the closure's values (this module does not postpone annotations).
    owner_dependency = Depends(owner)
    from_store = Depends(store_of)

    @router.options(path, summary="TUS capabilities of an upload path")
    async def tus_options() -> Response:
        """The TUS protocol version and extensions this path speaks."""
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers=TUS_HEADERS)

    @router.head(
        path + "/{upload_id}",
        include_in_schema=False,
        dependencies=[Depends(require_tus_version)],
    )
    async def tus_status(
        upload_id: uuid.UUID,
        principal: CurrentUser,
        session: DbSession,
        files_of: Annotated[str, owner_dependency],
        store: Annotated[Uploads, from_store],
    ) -> Response:
        """TUS: how much of a resumable upload has arrived."""
        upload = await store.get(session, files_of, upload_id, principal.user_id)
        return Response(
            status_code=status.HTTP_200_OK,
            headers={**TUS_HEADERS, "Upload-Offset": str(upload.offset),
                     "Upload-Length": str(upload.length)},
        )  # fmt: skip

    @router.patch(
        path + "/{upload_id}",
        summary="TUS: append to a resumable upload",
        status_code=status.HTTP_204_NO_CONTENT,
        dependencies=[Depends(_offset_octet_stream), Depends(require_tus_version)],
    )
    async def tus_append(
        upload_id: uuid.UUID,
        request: Request,
        *,
        principal: CurrentUser,
        session: DbSession,
        files_of: Annotated[str, owner_dependency],
        store: Annotated[Uploads, from_store],
    ) -> Response:
        """Append the body (`application/offset+octet-stream`) at `Upload-Offset`."""
        upload = await store.append(
            session, files_of, upload_id, principal.user_id,
            offset_header=request.headers.get("upload-offset"), body=request.stream(),
        )  # fmt: skip
        return Response(
            status_code=status.HTTP_204_NO_CONTENT,
            headers={**TUS_HEADERS, "Upload-Offset": str(upload.offset)},
        )

    return router
