"""Writing a backup archive (`tessera.export.backups`): what it is of, read from the
annotations and ingest services, then its members, written straight into the export's
upload (`tessera.export.archive.stream_archive`).

A task's header (its fields, labels and jobs) comes from its snapshot, its media's meta
(deleted frames included) and preparation from ingest. The media is copied as it is: each
image's original file (ingest's `quality=original` frame) followed by its context images
as they were given, under their paths among the task's files (CVAT's
`related_images/<image with _ for its last .>/...`), or the video file streamed from
ingest, then the manifest ingest wrote (listing a frame's context images in its
`meta.related_images`, as CVAT's does, for media made since ingest lists them).
`annotations.json` is read one job at a time from the job's snapshot (as CVAT reads each
job's data), each kind of object spooled to a temporary file (in memory up to
`SPOOL_BYTES`) so that the job's element is written as CVAT's `{"version", "tags",
"shapes", "tracks"}` without holding the job's objects. Progress is the share of media
files and jobs written; a request cancelled meanwhile stops the backup at its next
report.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from tessera.export.archive import Bridge, Fill
from tessera.export.backups import layout
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.contracts.annotations import (
    SNAPSHOT_KINDS,
    SnapshotHeader,
    SnapshotJob,
    SnapshotKind,
)
from tessera.platform.contracts.ingest import DataMeta, MediaFiles
from tessera.platform.errors import Problem

SPOOL_BYTES = 8 * 2**20

Report = Callable[[float], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class TaskSource:
    """A task to back up: its snapshot's header, its media's meta and preparation, and
    the folder of the archive its members go into (`""`, or `task_<i>/` in a project's)."""

    header: SnapshotHeader
    meta: DataMeta
    media: MediaFiles
    folder: str

    @property
    def task_id(self) -> int:
        return self.header.task.id

    @property
    def jobs(self) -> list[SnapshotJob]:
        """The task's jobs in id order (CVAT's order of `jobs` and `annotations.json`)."""
        return sorted(self.header.jobs, key=lambda job: job.id)

    @property
    def steps(self) -> int:
        """The units of progress of the task: its media files and its jobs."""
        files = 1 if self.media.media_type == "video" else len(self.meta.frames)
        return files + len(self.header.jobs)

    def state(self) -> dict[str, Any]:
        """What the task's backup depends on."""
        return {
            "task": self.task_id,
            "version": self.header.version,
            "updated": self.header.task.updated_date.isoformat(),
            "labels": [label.model_dump(mode="json") for label in self.header.labels],
            "jobs": [job.model_dump(mode="json") for job in self.header.jobs],
            "chunks": self.meta.chunks_updated_date,
            "deleted": sorted(self.meta.deleted_frames),
            "media": self.media.model_dump(mode="json"),
            "folder": self.folder,
        }


@dataclass(frozen=True)
class BackupSource:
    """What a backup is of: a task, or a project (`project` is its `project.json`) with
    its tasks that have media."""

    tasks: list[TaskSource]
    project: dict[str, Any] | None = None

    @property
    def version(self) -> str:
        """A digest of everything the archive holds: equal archives have equal versions."""
        state = {"project": self.project, "tasks": [task.state() for task in self.tasks]}
        return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class _SpooledJob:
    """A job's objects of each kind as comma-separated JSON, and its annotations' version."""

    version: int
    files: dict[SnapshotKind, tempfile.SpooledTemporaryFile[bytes]] = field(default_factory=dict)

    def close(self) -> None:
        for spooled in self.files.values():
            spooled.close()


class BackupWriter:
    """Reads what a backup is of and writes its archive."""

    def __init__(self, annotations: AnnotationsClient, ingest: IngestClient) -> None:
        self.annotations = annotations
        self.ingest = ingest

    async def task(self, task_id: int, folder: str = "") -> TaskSource:
        """A task to back up (404 problem for a task without media)."""
        async with self.annotations.snapshot(task_id=task_id) as snapshot:
            header = snapshot.header
        meta = await self.ingest.task_meta(task_id)
        media = await self.ingest.media_files(task_id)
        return TaskSource(header, meta, media, folder)

    async def project(self, name: str, bug_tracker: str, task_ids: Sequence[int]) -> BackupSource:
        """A project to back up, with its tasks that have media (`task_<i>/`, i counting
        every task in id order, as CVAT's does). ValueError for a project without one."""
        tasks = []
        for index, task_id in enumerate(sorted(task_ids)):
            try:
                tasks.append(await self.task(task_id, f"task_{index}/"))
            except Problem as problem:
                if problem.status != 404:
                    raise
        if not tasks:
            raise ValueError("The project has no task with media to back up.")
        status = _least_advanced({task.header.task.status for task in tasks})
        labels = tasks[0].header.labels
        return BackupSource(tasks, layout.project_meta(name, bug_tracker, status, labels))

    def filler(self, source: BackupSource, report: Report) -> Fill:
        """The `fill` of `stream_archive` that writes the backup of `source`, reporting the
        share written (on the service's loop)."""
        total = max(sum(task.steps for task in source.tasks), 1)

        async def fill(archive: zipfile.ZipFile, bridge: Bridge) -> None:
            done = 0

            async def step() -> None:
                nonlocal done
                done += 1
                await bridge.call(report(done / total))

            if source.project is not None:
                archive.writestr("project.json", orjson.dumps(source.project))
            for task in source.tasks:
                await self._write_task(archive, bridge, task, step)

        return fill

    async def _write_task(
        self,
        archive: zipfile.ZipFile,
        bridge: Bridge,
        task: TaskSource,
        step: Callable[[], Awaitable[None]],
    ) -> None:
        """A task's members, in CVAT's order: data, task.json, annotations.json."""
        data = f"{task.folder}data/"
        if task.media.media_type == "video":
            await self._copy_video(archive, bridge, task, data + task.meta.frames[0].name)
            await step()
        else:
            written: set[str] = set()
            for number, frame in enumerate(task.meta.frames):
                content, _ = await bridge.call(self.ingest.original_frame(task.task_id, number))
                _store(archive, data + frame.name, content)
                if frame.related_files:
                    images = await bridge.call(
                        self.ingest.original_context_images(task.task_id, number)
                    )
                    for name, image in images:
                        if name not in written:  # a 3D task's frames may share one
                            written.add(name)
                            _store(archive, data + name, image)
                await step()
        manifest = await bridge.call(self.ingest.media_manifest(task.task_id))
        archive.writestr(data + "manifest.jsonl", manifest)
        header = task.header
        meta = layout.task_meta(header.task, header.labels, task.jobs, task.meta, task.media)
        archive.writestr(f"{task.folder}task.json", orjson.dumps(meta))
        with archive.open(f"{task.folder}annotations.json", "w", force_zip64=True) as out:
            out.write(b"[")
            for position, job in enumerate(task.jobs):
                spooled = await bridge.call(self._spool(job.id, layout.LabelNames(header.labels)))
                try:
                    out.write(b"," if position else b"")
                    out.write(b'{"version":%d' % spooled.version)
                    for kind in SNAPSHOT_KINDS:
                        out.write(b',"%ss":[' % kind.encode())
                        source = spooled.files[kind]
                        source.seek(0)
                        shutil.copyfileobj(source, out)
                        out.write(b"]")
                    out.write(b"}")
                finally:
                    spooled.close()
                await step()
            out.write(b"]")

    async def _copy_video(
        self, archive: zipfile.ZipFile, bridge: Bridge, task: TaskSource, path: str
    ) -> None:
        """Stream the task's video file from ingest into the archive, stored as it is."""
        chunks = self.ingest.media_video(task.task_id)

        async def following() -> bytes | None:
            return await anext(chunks, None)

        async def close() -> None:
            await chunks.aclose()

        try:
            with archive.open(_stored_info(path), "w", force_zip64=True) as out:
                while (chunk := await bridge.call(following())) is not None:
                    out.write(chunk)
        finally:
            await bridge.call(close())

    async def _spool(self, job_id: int, names: layout.LabelNames) -> _SpooledJob:
        """A job's objects as `annotations.json` holds them, each kind to its own file (on
        the service's loop)."""
        spooled = _SpooledJob(0)
        for kind in SNAPSHOT_KINDS:
            spooled.files[kind] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        try:
            async with self.annotations.snapshot(job_id=job_id) as snapshot:
                spooled.version = snapshot.header.version
                async for item in snapshot:
                    target = spooled.files[item.kind]
                    if target.tell():
                        target.write(b",")
                    target.write(orjson.dumps(layout.annotation(item.data, names)))
        except BaseException:
            spooled.close()
            raise
        return spooled


def _least_advanced(statuses: set[str]) -> str:
    """A project's status from its tasks' (CVAT's rule: the least advanced)."""
    for status in ("annotation", "validation"):
        if status in statuses:
            return status
    return "completed"


def _stored_info(path: str) -> zipfile.ZipInfo:
    """A member stored as it is (media is compressed already), dated now."""
    info = zipfile.ZipInfo(path, date_time=datetime.now(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    return info


def _store(archive: zipfile.ZipFile, path: str, data: bytes) -> None:
    """Add a media file as it is."""
    archive.writestr(_stored_info(path), data)
