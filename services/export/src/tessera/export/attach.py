"""Media for a task the export service made (a dataset import's task; a restored backup's
does the same): a zip archive of the files handed to ingest, which unpacks it as CVAT
unpacks an uploaded archive, then ingest's creation request followed to its end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from tessera.platform.clients.ingest import IngestClient

POLL_S = 0.5
"""How often ingest's creation request is asked about."""

Progress = Callable[[float], Awaitable[None]]
"""Told the fraction of the media's creation done, in [0, 1]."""


class MediaFailed(Exception):
    """Ingest could not make the media; the message is ingest's."""


async def attach_and_wait(
    ingest: IngestClient,
    task_id: int,
    archive: Path,
    options: Mapping[str, str],
    progress: Progress,
    *,
    poll_s: float = POLL_S,
) -> None:
    """Attach `archive` (a zip of the task's files) to the task with the data `options`
    (the form fields of `POST /api/tasks/{id}/data`), delete the archive once ingest has
    it, and wait for ingest to make the media and the jobs, reporting its progress.
    `MediaFailed` when ingest fails to; its refusals raise as problems."""
    rq_id = await ingest.attach_archive(task_id, archive, dict(options))
    await asyncio.to_thread(archive.unlink, missing_ok=True)
    while True:
        found = await ingest.request_status(rq_id)
        if found.status == "finished":
            return
        if found.status == "failed":
            raise MediaFailed(found.message)
        await progress(found.progress or 0.0)
        await asyncio.sleep(poll_s)
