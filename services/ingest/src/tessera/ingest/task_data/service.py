"""Uploads of a task's files (CVAT's Upload-Start / Upload-Multiple / TUS / Upload-Finish).

Uploaded files are kept as objects under `tasks/{id}/uploads/` until the task is made
from them; a TUS upload keeps each PATCH as a part object and joins them when the last
byte arrives. Upload-Start forgets whatever an abandoned earlier attempt left. A task
that already has media refuses more (409), as CVAT does.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from tessera.ingest.config import IngestSettings
from tessera.ingest.task_data import repository as repo
from tessera.ingest.task_data.schemas import DataRequest
from tessera.platform.contracts.annotations import TaskAccess
from tessera.platform.errors import Problem, unprocessable
from tessera.platform.storage import ObjectStorage

MAX_TUS_CHUNK = 128 * 2**20
_FORBIDDEN_NAME_CHARS = frozenset(chr(c) for c in range(32)) | {"\x7f"}


def uploads_prefix(task_id: int) -> str:
    """Where a task's uploaded files wait until the task is made."""
    return f"tasks/{task_id}/uploads/"


def _part_key(task_id: int, upload_id: uuid.UUID, offset: int) -> str:
    return f"tasks/{task_id}/parts/{upload_id}/{offset:016d}"


def safe_name(raw: str | None, field: str) -> str:
    """The base name of a client's file name (clients send whole local paths); 422 if none."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in (".", "..") or len(name.encode()) > 255:
        raise unprocessable([(field, f"{raw!r} is not a usable file name")])
    if _FORBIDDEN_NAME_CHARS.intersection(name):
        raise unprocessable([(field, f"{raw!r} contains control characters")])
    return name


def require_change(access: TaskAccess) -> None:
    """403 unless the caller may change the task."""
    if not access.can_change:
        raise Problem(403, f"You are not allowed to change the data of task {access.task_id}.")


async def _require_no_media(session: AsyncSession, access: TaskAccess) -> None:
    if access.has_jobs or await repo.media_exists(session, access.task_id):
        raise Problem(
            409, f"Task {access.task_id} already has data; adding more data is not supported."
        )


async def start(session: AsyncSession, storage: ObjectStorage, access: TaskAccess) -> None:
    """Upload-Start: begin a fresh set of files for the task."""
    await repo.lock_task_uploads(session, access.task_id)
    await _require_no_media(session, access)
    await repo.clear_uploads(session, access.task_id)
    await storage.delete_prefix(uploads_prefix(access.task_id))
    await storage.delete_prefix(f"tasks/{access.task_id}/parts/")


async def add_files(
    session: AsyncSession, storage: ObjectStorage, access: TaskAccess, files: list[tuple[str, Any]]
) -> int:
    """Upload-Multiple: store the `client_files[i]` parts of a form; how many there were."""
    await repo.lock_task_uploads(session, access.task_id)
    await _require_no_media(session, access)
    taken = await repo.file_names(session, access.task_id)
    stored = 0
    for field, value in files:
        if not isinstance(value, UploadFile):
            raise unprocessable([(f"body.{field}", "must be a file")])
        name = safe_name(value.filename, f"body.{field}")
        if name in taken:
            raise Problem(409, f"A file named {name!r} was already uploaded to this task.")
        key = uploads_prefix(access.task_id) + name
        async with storage.upload(key) as upload:
            while block := await value.read(8 * 2**20):
                await upload.write(block)
        await repo.add_file(session, access.task_id, name, key, upload.size)
        taken.add(name)
        stored += 1
    return stored


@dataclass(frozen=True)
class TusUpload:
    """A resumable upload as TUS reports it."""

    id: uuid.UUID
    filename: str
    length: int
    offset: int


def _tus_filename(metadata: str | None) -> str:
    pairs = {}
    for item in (metadata or "").split(","):
        key, _, value = item.strip().partition(" ")
        if key:
            try:
                pairs[key] = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise unprocessable(
                    [("header.Upload-Metadata", f"{key}: not base64 of UTF-8 text")]
                ) from exc
    if "filename" not in pairs:
        raise unprocessable([("header.Upload-Metadata", "must name the file: 'filename <b64>'")])
    return safe_name(pairs["filename"], "header.Upload-Metadata")


async def tus_create(
    session: AsyncSession,
    settings: IngestSettings,
    *,
    access: TaskAccess,
    owner_id: int,
    length_header: str | None,
    metadata: str | None,
) -> TusUpload:
    """TUS creation: a resumable upload of one file of `Upload-Length` bytes."""
    if length_header is None or not length_header.isdigit():
        raise unprocessable([("header.Upload-Length", "must be a non-negative integer")])
    length = int(length_header)
    if length > settings.max_upload_bytes:
        raise Problem(
            413, f"Upload-Length {length} is over the limit of {settings.max_upload_bytes} bytes."
        )
    name = _tus_filename(metadata)
    await repo.lock_task_uploads(session, access.task_id)
    await _require_no_media(session, access)
    if name in await repo.file_names(session, access.task_id):
        raise Problem(409, f"A file named {name!r} was already uploaded to this task.")
    upload_id = await repo.create_upload(session, access.task_id, owner_id, name, length)
    return TusUpload(upload_id, name, length, 0)


async def tus_status(
    session: AsyncSession, task_id: int, upload_id: uuid.UUID, owner_id: int
) -> TusUpload:
    """TUS HEAD: how much of the upload has arrived."""
    row = await _own_upload(session, task_id, upload_id, owner_id, lock=False)
    return TusUpload(row.id, row.filename, row.length, row.received)


async def _own_upload(
    session: AsyncSession, task_id: int, upload_id: uuid.UUID, owner_id: int, *, lock: bool
) -> Any:
    row = await repo.upload(session, task_id, upload_id, lock=lock)
    if row is None:
        raise Problem(404, f"Upload {upload_id} of task {task_id} does not exist.")
    if row.owner_id != owner_id:
        raise Problem(403, "This upload was started by another user.")
    return row


async def tus_append(
    session: AsyncSession,
    storage: ObjectStorage,
    *,
    task_id: int,
    upload_id: uuid.UUID,
    owner_id: int,
    offset_header: str | None,
    body: AsyncIterator[bytes],
) -> TusUpload:
    """TUS PATCH: append bytes at `Upload-Offset`; the file is complete at its length."""
    row = await _own_upload(session, task_id, upload_id, owner_id, lock=True)
    if offset_header is None or not offset_header.isdigit():
        raise unprocessable([("header.Upload-Offset", "must be a non-negative integer")])
    if int(offset_header) != row.received:
        raise Problem(
            409,
            f"Upload-Offset {offset_header} is not the upload's offset {row.received}.",
            headers={"Upload-Offset": str(row.received)},
        )
    limit = min(row.length - row.received, MAX_TUS_CHUNK)
    data = bytearray()
    async for block in body:
        data += block
        if len(data) > limit:
            raise Problem(
                413,
                f"More bytes than the upload's length {row.length} or the chunk "
                f"limit of {MAX_TUS_CHUNK} bytes.",
            )
    received = row.received + len(data)
    if data:
        await storage.put(_part_key(task_id, upload_id, row.received), bytes(data))
        await repo.advance_upload(session, upload_id, received)
    if received == row.length:
        await _assemble(session, storage, task_id, upload_id, row.filename)
    return TusUpload(row.id, row.filename, row.length, received)


async def _assemble(
    session: AsyncSession, storage: ObjectStorage, task_id: int, upload_id: uuid.UUID, name: str
) -> None:
    key = uploads_prefix(task_id) + name
    prefix = f"tasks/{task_id}/parts/{upload_id}/"
    async with storage.upload(key) as upload:
        async for part_key, _ in storage.list_keys(prefix):
            async for block in storage.stream(part_key, chunk_size=8 * 2**20):
                await upload.write(block)
    await repo.add_file(session, task_id, name, key, upload.size)
    await repo.finish_upload(session, upload_id)
    await storage.delete_prefix(prefix)


@dataclass(frozen=True)
class CreationPlan:
    """What a data request asks for, checked: the files by source, and the options."""

    task_id: int
    uploaded: list[tuple[str, str, int]]  # (name, object key, size) in upload order
    options: DataRequest
    segment_size: int
    overlap: int | None

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON, for the work queue."""
        return {
            "task_id": self.task_id,
            "uploaded": [list(item) for item in self.uploaded],
            "options": self.options.model_dump(mode="json"),
            "segment_size": self.segment_size,
            "overlap": self.overlap,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CreationPlan:
        """A plan from `to_json`."""
        return cls(
            task_id=int(data["task_id"]),
            uploaded=[(str(n), str(k), int(z)) for n, k, z in data["uploaded"]],
            options=DataRequest.model_validate(data["options"]),
            segment_size=int(data["segment_size"]),
            overlap=None if data["overlap"] is None else int(data["overlap"]),
        )


async def plan(
    session: AsyncSession, settings: IngestSettings, access: TaskAccess, body: DataRequest
) -> CreationPlan:
    """Upload-Finish (or a single request): check the sources against the options."""
    await repo.lock_task_uploads(session, access.task_id)
    await _require_no_media(session, access)
    uploaded = [
        (f.name, f.object_key, f.size) for f in await repo.uploaded_files(session, access.task_id)
    ]
    if pending := await repo.unfinished_uploads(session, access.task_id):
        listed = ", ".join(f"{u.filename} ({u.received} of {u.length} bytes)" for u in pending)
        raise unprocessable([("body", f"resumable uploads did not finish: {listed}")])
    cloud = body.cloud_storage_id is not None
    given = {
        "uploaded files": bool(uploaded),
        "server_files": bool(body.server_files) and not cloud,
        "cloud storage files": bool(body.server_files) and cloud,
        "remote_files": bool(body.remote_files),
    }
    sources = [name for name, present in given.items() if present]
    if not sources:
        raise unprocessable(
            [("body", "no files: upload some, or give server_files or remote_files")]
        )
    if len(sources) > 1:
        raise unprocessable([("body", f"files from more than one source ({', '.join(sources)})")])
    if body.server_files and not cloud and settings.share_root is None:
        raise unprocessable([("body.server_files", "no share is connected to this server")])
    if body.upload_file_order and uploaded:
        names = {name for name, _, _ in uploaded}
        wanted = set(body.upload_file_order)
        problems = [f"{n} (missing)" for n in sorted(wanted - names)]
        problems += [f"{n} (extra)" for n in sorted(names - wanted)]
        problems += [f"{n} (repeated)" for n in sorted(wanted & names)
                     if body.upload_file_order.count(n) > 1]  # fmt: skip
        if problems or len(body.upload_file_order) != len(wanted):
            message = "must list each uploaded file once: " + ", ".join(problems)
            raise unprocessable([("body.upload_file_order", message)])
        order = {name: i for i, name in enumerate(body.upload_file_order)}
        uploaded.sort(key=lambda item: order[item[0]])
    return CreationPlan(access.task_id, uploaded, body, access.segment_size, access.overlap)
