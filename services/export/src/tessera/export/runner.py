"""The export worker: a request from the queue, read, written and uploaded as one stream.

For a task or a job, the annotations service's snapshot (one consistent read, in frame
order) and ingest's frame names and sizes make a `SnapshotDataset`; a project is its
tasks' datasets one after another (each task's subset as the frames' subset). The
format's writer turns it into the members of a zip archive written straight into an S3
multipart upload (`tessera.export.archive`); with `save_images`, each frame's image
follows: an image task's original file, copied as it is; a video task's frames, decoded
by ingest in one pass and saved as the export's `image_format` asks (PNG by default),
named `frame_000000.png` (`.jpg`, `.webp`) in the annotations and the archive alike, by
their numbers in the video (`DataMeta.source_frame`: a task from frame 10 with `step=2`
has `frame_000010`, `frame_000012`, ..., which the formats that number frames write too,
as CVAT does); for the point cloud formats, a frame's context images too
(`PointCloudLayout`). A backup (`BACKUP_FORMAT`) is written by
`tessera.export.backups.writer` instead, into the same kind of upload. Progress is the
share of frames written (and of images saved), reported to the request as it goes; a
request cancelled meanwhile stops the export at its next report, and the upload is
aborted.

Before writing, the export's version (the annotations' version, the task's and labels'
state, the media's) is compared with finished archives of the same parameters: an
unexpired one is reused, and kept longer, instead of being written again. An archive asked
for a cloud storage is then streamed into it through ingest, which holds the storage's
credentials.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import os.path
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from botocore.exceptions import BotoCoreError, ClientError

from tessera.export.archive import ArchiveAborted, Bridge, stream_archive
from tessera.export.backups.writer import BackupSource, BackupWriter
from tessera.export.events import export_failed, export_finished
from tessera.export.exports import repository
from tessera.export.exports.schemas import ExportOptionsIn, ExportParams
from tessera.export.formats.cvat_xml import CvatSegment, CvatTaskMeta, CvatUser
from tessera.export.formats.registry import ExportFormat, PointCloudLayout, exporter_named
from tessera.export.model import (
    ExportOptions,
    FrameAnnotations,
    FrameInfo,
    Tag,
    TaskInfo,
    shapes_as_cvat_writes_them,
)
from tessera.export.snapshot_dataset import SnapshotDataset, emitted_frames, task_info
from tessera.platform.clients.annotations import AnnotationsClient, SnapshotIncomplete
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.contracts.annotations import SnapshotHeader
from tessera.platform.contracts.ingest import FRAME_EXTENSIONS, FRAME_MEDIA_TYPES, DataMeta
from tessera.platform.db import Database
from tessera.platform.errors import Problem
from tessera.platform.requests import RequestEnded, RequestStore
from tessera.platform.storage import ObjectStorage

logger = logging.getLogger(__name__)

# Failures of the network, the peers or storage, which a later attempt may not meet.
_TRANSIENT = (httpx.HTTPError, SnapshotIncomplete, BotoCoreError, ClientError, OSError)
_IMAGE_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
_WRITING_SHARE = 0.9  # of the progress, when images follow the annotations


@dataclass(frozen=True)
class RunnerConfig:
    """The runner's settings."""

    prefix: str
    lifetime: timedelta
    compresslevel: int


@dataclass(frozen=True)
class _Part:
    """One task of the export: its snapshot's header, its media, where its frames start,
    the extension a video's frames get (`_frame_extension`), and CVAT's offset of its
    frame numbers in a project (`_number_offsets`)."""

    header: SnapshotHeader
    meta: DataMeta
    offset: int
    renamed: Mapping[int, str] = field(default_factory=dict)
    extension: str = ""
    number_offset: int = 0

    @property
    def task_id(self) -> int:
        return self.header.task.id

    @property
    def video(self) -> bool:
        """Whether the task's media is a video (its frames are decoded, not copied)."""
        return self.header.task.media_type == "video"

    def frames(self) -> list[FrameInfo]:
        """The task's frames, numbered from `offset`, with the task's subset and their
        numbers in the media (CVAT's, which its exports write: `DataMeta.source_frame`,
        plus the project's `number_offset`)."""
        subset = self.header.task.subset
        sizes = self.meta.frame_sizes(self.extension, offset=self.number_offset)
        return [
            FrameInfo(
                self.offset + index,
                self.renamed.get(index, frame.name),
                frame.width,
                frame.height,
                subset,
                self.number_offset + self.meta.source_frame(index),
            )
            for index, frame in enumerate(sizes)
        ]

    def count(self) -> int:
        """How many frames the export emits of this task."""
        return len(emitted_frames(self.header, self.meta.size, self.meta.deleted_frames))


def version_key(parts: Sequence[_Part]) -> str:
    """What an archive depends on: the annotations' versions, the tasks' and labels' state,
    the media, its deleted frames and how its frames are numbered."""
    state = [
        {
            "task": part.task_id,
            "version": part.header.version,
            "updated": part.header.task.updated_date.isoformat(),
            "labels": [label.model_dump(mode="json") for label in part.header.labels],
            "jobs": [job.model_dump(mode="json") for job in part.header.jobs],
            "chunks": part.meta.chunks_updated_date,
            "deleted": sorted(part.meta.deleted_frames),
            # frame names and numbers (archives written before they were the video's
            # are not reused)
            "numbering": [part.meta.start_frame, part.meta.frame_step, part.number_offset],
        }
        for part in parts
    ]
    return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ExportRunner:
    """Runs export requests (the `RequestHandler` of the export work queue)."""

    def __init__(
        self,
        database: Database,
        storage: ObjectStorage,
        *,
        annotations: AnnotationsClient,
        ingest: IngestClient,
        requests: RequestStore,
        config: RunnerConfig,
    ) -> None:
        self.database = database
        self.storage = storage
        self.annotations = annotations
        self.ingest = ingest
        self.requests = requests
        self.config = config
        self.backups = BackupWriter(annotations, ingest)

    async def run(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Export, ending the request finished (or failed, saying why) with its
        `export.finished`; a request cancelled meanwhile ends as its owner left it."""
        params = ExportParams.model_validate(payload["params"])
        try:
            await self.requests.start(rq_id)
            await self._export(rq_id, params, payload)
            return
        except RequestEnded:
            logger.info("export %s was cancelled", rq_id)
            return
        except Problem as problem:
            if problem.status >= 500:
                raise
            message = problem.detail
        except ValueError as exc:
            message = str(exc)
        except _TRANSIENT:
            raise  # another attempt, by this worker or another
        except Exception as exc:
            # A fault of the writer: another attempt would meet it again.
            logger.exception("export %s failed", rq_id)
            message = f"The export failed: {type(exc).__name__}: {exc}"
        events = [export_failed(rq_id, params, payload, message)]
        await self.requests.fail(rq_id, message, events=events)

    async def clear(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Finish the request if an interrupted attempt had recorded its archive; otherwise
        nothing is left (an unfinished upload was aborted or is removed by the bucket's
        lifecycle rule, and a redo writes the same key). Finished here, the request
        publishes its `export.finished` (once: a later delivery finds it ended)."""
        params = ExportParams.model_validate(payload["params"])
        async with self.database.transaction() as session:
            row = await repository.by_request(session, rq_id)
        if row is not None and row.done:
            path = _result_url(params, rq_id)
            events = [export_finished(rq_id, params, payload, path)]
            await self.requests.finish(rq_id, result_id=row.id, result_url=path, events=events)

    async def _export(self, rq_id: str, params: ExportParams, payload: dict[str, Any]) -> None:
        if params.backup:
            version, object_key, size = await self._backup(rq_id, params, payload)
        else:
            version, object_key, size = await self._dataset(rq_id, params, payload)
        if params.destination is not None:
            destination = params.destination
            await self.ingest.write_cloud_object(
                destination.cloud_storage_id, destination.key, self.storage.stream(object_key)
            )
        expiry = datetime.now(UTC) + self.config.lifetime
        async with self.database.transaction() as session:
            row_id = await repository.mark_done(
                session, rq_id, version_key=version, object_key=object_key, size=size,
                expiry_date=expiry,
            )  # fmt: skip
            await repository.extend(session, object_key, expiry)
        path = _result_url(params, rq_id)
        events = [export_finished(rq_id, params, payload, path)]
        await self.requests.finish(rq_id, result_id=row_id, result_url=path, events=events)

    async def _backup(
        self, rq_id: str, params: ExportParams, payload: dict[str, Any]
    ) -> tuple[str, str, int]:
        """Write (or reuse) a backup's archive; its version, object key and size."""
        if params.target == "project":
            project = payload["project"]
            source = await self.backups.project(
                project["name"], project["bug_tracker"], payload.get("task_ids", [])
            )
        else:
            source = BackupSource([await self.backups.task(params.target_id)])
        version = source.version
        reused = await self._reusable(rq_id, params, version)
        if reused is not None:
            return version, *reused

        async def report(fraction: float) -> None:
            await self.requests.progress(rq_id, fraction)

        object_key = f"{self.config.prefix}{rq_id}.zip"
        async with self.storage.upload(object_key, content_type="application/zip") as upload:
            fill = self.backups.filler(source, report)
            await stream_archive(upload, fill, compresslevel=self.config.compresslevel)
        return version, object_key, upload.size

    async def _dataset(
        self, rq_id: str, params: ExportParams, payload: dict[str, Any]
    ) -> tuple[str, str, int]:
        """Write (or reuse) a dataset's archive; its version, object key and size."""
        exporter = exporter_named(params.format)
        if exporter is None:
            raise ValueError(f"Tessera no longer writes {params.format}.")
        extension = _frame_extension(params)
        async with AsyncExitStack() as stack:
            if params.target == "project":
                parts = await self._project_parts(payload.get("task_ids", []), extension)
                dataset: Any = _ProjectDataset(self.annotations, params, parts)
            else:
                scope = {f"{params.target}_id": params.target_id}
                snapshot = await stack.enter_async_context(self.annotations.snapshot(**scope))
                meta = await self.ingest.task_meta(snapshot.header.task.id)
                parts = [_Part(snapshot.header, meta, 0, extension=extension)]
                dataset = SnapshotDataset(
                    snapshot.header, snapshot, parts[0].frames(), excluded=meta.deleted_frames
                )
            version = version_key(parts)
            reused = await self._reusable(rq_id, params, version)
            if reused is not None:
                object_key, size = reused
            else:
                object_key = f"{self.config.prefix}{rq_id}.zip"
                size = await self._write(
                    rq_id, params, exporter=exporter, dataset=dataset, parts=parts,
                    meta=_cvat_meta(parts, payload.get("base_url", "")), object_key=object_key,
                )  # fmt: skip
        return version, object_key, size

    async def _project_parts(self, task_ids: Sequence[int], extension: str) -> list[_Part]:
        """The project's tasks with media, each task's header read from a snapshot (video
        frames named with `extension`)."""
        found: list[tuple[SnapshotHeader, DataMeta]] = []
        for task_id in task_ids:
            try:
                async with self.annotations.snapshot(task_id=task_id) as snapshot:
                    header = snapshot.header
                meta = await self.ingest.task_meta(task_id)
            except Problem as problem:
                if problem.status == 404:
                    continue  # deleted since, or without media: nothing of it to export
                raise
            found.append((header, meta))
        if not found:
            raise ValueError("The project has no task with media to export.")
        numbers = _number_offsets(found)
        parts: list[_Part] = []
        offset = 0
        taken: set[tuple[str, str]] = set()
        for header, meta in found:
            number_offset = numbers[header.task.id]
            renamed = _renames(header, meta, taken, extension, number_offset)
            parts.append(_Part(header, meta, offset, renamed, extension, number_offset))
            offset += meta.size
        return parts

    async def _reusable(
        self, rq_id: str, params: ExportParams, version: str
    ) -> tuple[str, int] | None:
        """The object key and size of an unexpired archive of the same export and version."""
        async with self.database.transaction() as session:
            found = await repository.reusable(session, params.key, version, datetime.now(UTC))
        if found is None:
            return None
        logger.info("export %s reuses the archive of request %s", rq_id, found.rq_id)
        return str(found.object_key), int(found.size)

    async def _write(
        self,
        rq_id: str,
        params: ExportParams,
        *,
        exporter: ExportFormat,
        dataset: Any,
        parts: Sequence[_Part],
        meta: CvatTaskMeta,
        object_key: str,
    ) -> int:
        """Write and upload the archive; its size."""
        total = sum(part.count() for part in parts)
        share = _WRITING_SHARE if params.save_images else 1.0
        options = ExportOptions(annotated_only=params.options.frames == "annotated")

        async def report(fraction: float) -> None:
            await self.requests.progress(rq_id, fraction)

        counted = _Counted(dataset, total, share, report, keep=params.save_images,
                           annotated_only=options.annotated_only)  # fmt: skip
        writer = exporter.writer_for(meta)

        async def fill(archive: zipfile.ZipFile, bridge: Bridge) -> None:
            await writer(bridge.dataset(counted), archive, options)
            saved = counted.saved
            images = self._images(parts, [frame.index for frame, _, _ in saved], params.options)

            async def following() -> tuple[bytes, str]:
                return await anext(images)

            async def close() -> None:
                await images.aclose()

            layout = exporter.image_layout()
            try:
                for number, (frame, subset, tags) in enumerate(saved, start=1):
                    data, media_type = await bridge.call(following())
                    item = FrameAnnotations(_named(frame, media_type), (), tags)
                    for path in layout.paths(item, counted.task, subset):
                        _store(archive, path, data)
                    if isinstance(layout, PointCloudLayout):
                        context = await bridge.call(self._context_images(parts, frame.index))
                        for path, content in layout.context_members(item.frame, context):
                            _store(archive, path, content)
                    await bridge.call(report(share + (1 - share) * number / len(saved)))
            finally:
                layout.close()
                with suppress(ArchiveAborted):
                    await bridge.call(close())

        async with self.storage.upload(object_key, content_type="application/zip") as upload:
            await stream_archive(upload, fill, compresslevel=self.config.compresslevel)
        return upload.size

    async def _context_images(self, parts: Sequence[_Part], index: int) -> list[tuple[str, bytes]]:
        """The context images of export frame `index` as ingest serves them (none when its
        task's data meta says it has none)."""
        offsets = [part.offset for part in parts]
        part = parts[bisect.bisect_right(offsets, index) - 1]
        number = index - part.offset
        frames = part.meta.frames
        if len(frames) != part.meta.size or not frames[number].has_related_context:
            return []
        return await self.ingest.context_images(part.task_id, number)

    async def _images(
        self, parts: Sequence[_Part], indices: Sequence[int], options: ExportOptionsIn
    ) -> AsyncGenerator[tuple[bytes, str]]:
        """The image of each export frame `indices` (increasing) and its media type, in
        order: an image task's original files as they are, one by one; a video task's
        frames in one stream from ingest, encoded as `options` say."""
        offsets = [part.offset for part in parts]
        by_part = itertools.groupby(indices, key=lambda i: bisect.bisect_right(offsets, i) - 1)
        for position, wanted in by_part:
            part = parts[position]
            numbers = [index - part.offset for index in wanted]
            if part.video:
                media_type = FRAME_MEDIA_TYPES[options.image_format]
                frames = self.ingest.video_frames(
                    part.task_id, numbers, image_format=options.image_format,
                    quality=options.image_quality,
                )  # fmt: skip
                async for _, data in frames:
                    yield data, media_type
            else:
                for number in numbers:
                    yield await self.ingest.original_frame(part.task_id, number)


@dataclass
class _Counted:
    """A dataset that reports progress as its frames are read, and keeps the frames
    whose images go into the archive."""

    source: Any
    total: int
    share: float
    report: Callable[[float], Awaitable[None]]
    keep: bool
    annotated_only: bool
    saved: list[tuple[FrameInfo, str, Sequence[Tag]]] = field(default_factory=list)

    @property
    def task(self) -> TaskInfo:
        task: TaskInfo = self.source.task
        return task

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        done = 0
        async for item in self.source.frames():
            if self.keep and not (
                self.annotated_only
                and not item.tags
                and not shapes_as_cvat_writes_them(item.shapes)
            ):
                subset = item.frame.subset or self.task.subset or "default"
                self.saved.append((item.frame, subset, item.tags))
            yield item
            done += 1
            await self.report(self.share * done / max(self.total, 1))


class _ProjectDataset:
    """A project's tasks as one dataset: each task's snapshot opened in turn."""

    def __init__(
        self, annotations: AnnotationsClient, params: ExportParams, parts: Sequence[_Part]
    ) -> None:
        self._annotations = annotations
        self._parts = parts
        first = task_info(parts[0].header)
        self._task = TaskInfo(
            id=params.target_id,
            name=parts[0].header.task.project_name or first.name,
            mode="annotation",
            dimension=first.dimension,
            size=sum(part.meta.size for part in parts),
            labels=first.labels,
            project_name=parts[0].header.task.project_name,
            owner=first.owner,
        )

    @property
    def task(self) -> TaskInfo:
        return self._task

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        for part in self._parts:
            async with self._annotations.snapshot(task_id=part.task_id) as snapshot:
                dataset = SnapshotDataset(
                    snapshot.header, snapshot, part.frames(), excluded=part.meta.deleted_frames
                )
                async for item in dataset.frames():
                    yield item


def _number_offsets(tasks: Sequence[tuple[SnapshotHeader, DataMeta]]) -> dict[int, int]:
    """CVAT's offsets of a project's tasks' frame numbers, by task id
    (`ProjectData._init_task_frame_offsets`, `abs_frame_id`): in each subset, the tasks
    by id, each one's numbers following on from the previous one's `start_frame + step *
    size` (so that a subset's video frames, `frame_<number>`, have names of their own)."""
    offsets: dict[int, int] = {}
    following: dict[str, int] = {}
    for header, meta in sorted(tasks, key=lambda task: (task[0].task.subset, task[0].task.id)):
        subset = header.task.subset
        offsets[header.task.id] = start = following.get(subset, 0)
        following[subset] = start + meta.start_frame + meta.frame_step * meta.size
    return offsets


def _renames(
    header: SnapshotHeader,
    meta: DataMeta,
    taken: set[tuple[str, str]],
    extension: str,
    number_offset: int = 0,
) -> dict[int, str]:
    """Names for the frames of a project's task that an earlier task of the same subset
    already uses: `task_<id>/<name>`, so that no two frames of a subset share a file
    (video frames named with `extension`, by their numbers after `number_offset`)."""
    renamed = {}
    subset = header.task.subset
    for index, frame in enumerate(meta.frame_sizes(extension, offset=number_offset)):
        name = frame.name
        if (subset, name) in taken:
            name = renamed[index] = f"task_{header.task.id}/{frame.name}"
        taken.add((subset, name))
    return renamed


def _result_url(params: ExportParams, rq_id: str) -> str | None:
    """The download's path; none for an archive written into a cloud storage (CVAT's
    clients take a `result_url` there for a misunderstanding of the parameters)."""
    return None if params.destination is not None else params.download_path(rq_id)


def _frame_extension(params: ExportParams) -> str:
    """The extension of a video's frames in the export: that of the type they are saved
    as; none without images (each format then names them as CVAT does)."""
    return FRAME_EXTENSIONS[params.options.image_format] if params.save_images else ""


def _named(frame: FrameInfo, media_type: str) -> FrameInfo:
    """The frame, its name given the extension of its file's type when it has none (an
    image file named without one)."""
    if os.path.splitext(frame.name)[1]:
        return frame
    extension = _IMAGE_EXTENSIONS.get(media_type.split(";", maxsplit=1)[0].strip(), ".jpg")
    return replace(frame, name=frame.name + extension)


def _store(archive: zipfile.ZipFile, path: str, data: bytes) -> None:
    """Add an image as it is (images are compressed already)."""
    info = zipfile.ZipInfo(path, date_time=datetime.now(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    archive.writestr(info, data)


def _cvat_meta(parts: Sequence[_Part], base_url: str) -> CvatTaskMeta:
    """What CVAT's `<meta><task>` carries beyond the task itself, from the first task;
    for a job, its first and last frames' numbers in the media, as CVAT's `<job>` meta
    gives them (`JobData._init_meta`)."""
    header, media = parts[0].header, parts[0].meta
    task = header.task
    video = task.media_type == "video"
    start_frame, stop_frame = task.start_frame, task.stop_frame
    if header.scope == "job" and header.jobs:
        job = header.jobs[0]
        start_frame, stop_frame = (
            media.source_frame(job.start_frame),
            media.source_frame(job.stop_frame),
        )
    return CvatTaskMeta(
        overlap=task.overlap or 0,
        bugtracker=task.bug_tracker,
        created=task.created_date,
        updated=task.updated_date,
        start_frame=start_frame,
        stop_frame=stop_frame,
        frame_filter=task.frame_filter,
        segments=tuple(
            CvatSegment(
                job.id, job.start_frame, job.stop_frame, f"{base_url.rstrip('/')}/api/jobs/{job.id}"
            )
            for job in header.jobs
        ),
        assignee=CvatUser(task.assignee) if task.assignee else None,
        original_size=(media.frames[0].width, media.frames[0].height)
        if video and media.frames
        else None,
        source=media.frames[0].name if video and media.frames else None,
        dumped=datetime.now(UTC),
    )
