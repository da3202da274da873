"""A task's files (CVAT's Upload-Start / Upload-Multiple / TUS / Upload-Finish) and the
plan of the task's media made from them.

The protocol is the platform's (`tessera.platform.uploads`); a task's files belong to the
owner `tasks/{id}`, so they wait as objects under `tasks/{id}/uploads/` until the task
is made from them. What is ingest's: a task that already has media refuses more (409),
as CVAT does, and the data request checks the files against the task's options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.config import IngestSettings
from tessera.ingest.task_data import repository as repo
from tessera.ingest.task_data.schemas import DataRequest
from tessera.platform.contracts.annotations import TaskAccess
from tessera.platform.errors import Problem, unprocessable
from tessera.platform.uploads import TusCreation, Upload, Uploads


def task_files(task_id: int) -> str:
    """The owner of a task's uploaded files (`tessera.platform.uploads`)."""
    return f"tasks/{task_id}"


def require_change(access: TaskAccess) -> None:
    """403 unless the caller may change the task."""
    if not access.can_change:
        raise Problem(403, f"You are not allowed to change the data of task {access.task_id}.")


async def _require_no_media(session: AsyncSession, uploads: Uploads, access: TaskAccess) -> None:
    """Lock the task's files, then 409 if the task has media or is having it made."""
    await uploads.lock(session, task_files(access.task_id))
    if access.has_jobs or await repo.media_exists(session, access.task_id):
        raise Problem(
            409, f"Task {access.task_id} already has data; adding more data is not supported."
        )


async def start(session: AsyncSession, uploads: Uploads, access: TaskAccess) -> None:
    """Upload-Start: begin a fresh set of files for the task."""
    await _require_no_media(session, uploads, access)
    await uploads.start(session, task_files(access.task_id))


async def add_files(
    session: AsyncSession,
    uploads: Uploads,
    access: TaskAccess,
    user_id: int,
    files: list[tuple[str, Any]],
) -> None:
    """Upload-Multiple: store the `client_files[i]` parts of a form."""
    await _require_no_media(session, uploads, access)
    await uploads.add_files(session, task_files(access.task_id), user_id, files)


async def tus_create(
    session: AsyncSession, uploads: Uploads, access: TaskAccess, user_id: int, asked: TusCreation
) -> Upload:
    """TUS creation: a resumable upload of one of the task's files."""
    await _require_no_media(session, uploads, access)
    return await uploads.create(session, task_files(access.task_id), user_id, asked)


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
    session: AsyncSession,
    settings: IngestSettings,
    uploads: Uploads,
    access: TaskAccess,
    body: DataRequest,
) -> CreationPlan:
    """Upload-Finish (or a single request): check the sources against the options."""
    await _require_no_media(session, uploads, access)
    owner = task_files(access.task_id)
    uploaded = [(f.filename, f.object_key, f.length) for f in await uploads.files(session, owner)]
    if pending := await uploads.pending(session, owner):
        listed = ", ".join(f"{u.filename} ({u.offset} of {u.length} bytes)" for u in pending)
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
