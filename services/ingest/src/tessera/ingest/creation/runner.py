"""Task creation as a background request: all or nothing.

The work runs in this process after the data request is answered (`202 {rq_id}`); the
request reports its progress. Only when every file has been read, every frame stored
and every chunk written are the task's media records committed (status `creating`),
and then the annotations service makes the jobs; once it has, the media is `ready`. A
failure at any step removes what was stored and recorded, so the task is left as it
was before the request, and the request's message names the file and the reason.

Making the jobs is idempotent on the annotations side: a creation redone after a replica
stopped between the jobs being made and the media being marked ready gets the same jobs
back, and completes.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tessera.ingest.cloud_storages.service import CloudStorages
from tessera.ingest.config import IngestSettings
from tessera.ingest.creation.build import MediaBuild, build, media_prefix
from tessera.ingest.creation.sources import gather
from tessera.ingest.media.errors import MediaError
from tessera.ingest.media.frames import segments
from tessera.ingest.task_data import repository as repo
from tessera.ingest.task_data.schemas import DataRequest
from tessera.ingest.task_data.service import CreationPlan, task_files
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.contracts.annotations import Segment, SegmentsCreate
from tessera.platform.db import Database
from tessera.platform.errors import Problem
from tessera.platform.requests import RequestStore
from tessera.platform.storage import ObjectStorage
from tessera.platform.uploads import Uploads

logger = logging.getLogger(__name__)


def _storage_kind(options: DataRequest) -> str:
    """CVAT's `storage` of task data: where the originals are read from."""
    if options.cloud_storage_id is not None:
        return "local" if options.copy_data else "cloud_storage"
    return "share" if options.server_files and not options.copy_data else "local"


class CreationRunner:
    """The `RequestHandler` of task creation's work queue (`tessera.ingest.creation.queue`)."""

    def __init__(
        self,
        database: Database,
        storage: ObjectStorage,
        settings: IngestSettings,
        annotations: AnnotationsClient,
        requests: RequestStore,
        *,
        clouds: CloudStorages,
        uploads: Uploads,
    ) -> None:
        self.database = database
        self.clouds = clouds
        self.uploads = uploads
        self.storage = storage
        self.settings = settings
        self.annotations = annotations
        self.requests = requests

    async def run(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Make the task's media; the request ends finished, or failed saying why.

        Cancelled (the replica is stopping), it removes what it stored and leaves the
        request running for the queue to give to another replica.
        """
        plan = CreationPlan.from_json(payload["plan"])
        workdir = self.settings.scratch_dir / rq_id
        try:
            await self.requests.start(rq_id)
            await self._create(rq_id, plan, workdir)
        except asyncio.CancelledError:
            await asyncio.shield(self._clear(plan))
            raise
        except MediaError as exc:
            await self._abandon(rq_id, plan, str(exc))
        except Problem as exc:
            await self._abandon(rq_id, plan, exc.detail)
        except Exception as exc:
            logger.exception("task creation %s failed", rq_id)
            await self._abandon(rq_id, plan, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def clear(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Before a creation another try left is redone: finish it if its media got ready,
        else remove what that try stored."""
        if await self._clear(CreationPlan.from_json(payload["plan"])):
            await self.requests.finish(rq_id)

    async def _clear(self, plan: CreationPlan) -> bool:
        """Remove what an interrupted try stored, unless the media is ready; whether it is."""
        try:
            async with self.database.transaction() as session:
                if await repo.delete_unfinished_media(session, plan.task_id):
                    return True
            await self.storage.delete_prefix(media_prefix(plan.task_id))
        except Exception:
            logger.exception("could not clear the media of task %s", plan.task_id)
        return False

    async def _create(self, rq_id: str, plan: CreationPlan, workdir: Path) -> None:
        async def step(low: float, high: float, message: str) -> Any:
            async def report(fraction: float) -> None:
                await self.requests.progress(rq_id, low + (high - low) * fraction, message)

            await report(0.0)
            return report

        names = await gather(
            plan, settings=self.settings, storage=self.storage, clouds=self.clouds,
            target=workdir / "files", progress=await step(0.0, 0.2, "Files are being gathered"),
        )  # fmt: skip
        built = await build(
            plan.task_id, workdir / "files", names=names, options=plan.options,
            storage=self.storage, settings=self.settings,
            progress=await step(0.2, 0.95, "Media is being prepared"),
        )  # fmt: skip
        await self.requests.progress(rq_id, 0.96, "Jobs are being created")
        await self._record(plan, built)
        # CVAT's default overlap is 5 for video (interpolation mode) and 0 otherwise; the
        # segment size and overlap actually used are stored on the task with its jobs.
        overlap = (
            plan.overlap if plan.overlap is not None else (5 if built.media_type == "video" else 0)
        )
        layout = segments(built.size, plan.segment_size, overlap)
        try:
            await self.annotations.create_segment_jobs(plan.task_id, SegmentsCreate(
                size=built.size, media_type=built.media_type,
                dimension=built.dimension, chunk_size=built.chunk_size,
                compressed_chunk_type=built.compressed_chunk_type,
                original_chunk_type=built.original_chunk_type,
                image_quality=plan.options.image_quality,
                start_frame=built.start_frame, stop_frame=built.stop_frame,
                frame_filter=plan.options.frame_filter,
                segment_size=layout.segment_size, overlap=layout.overlap,
                segments=[Segment(start_frame=a, stop_frame=b) for a, b in layout.segments],
            ))  # fmt: skip
        except BaseException:
            async with self.database.transaction() as session:
                await repo.delete_media(session, plan.task_id)
            raise
        async with self.database.transaction() as session:
            await repo.mark_ready(session, plan.task_id)
            await self.uploads.forget(session, task_files(plan.task_id))
        await self.uploads.delete_objects(task_files(plan.task_id))
        await self.requests.finish(rq_id)

    async def _record(self, plan: CreationPlan, built: MediaBuild) -> None:
        options = plan.options
        record = {
            "task_id": plan.task_id, "status": "creating", "media_type": built.media_type,
            "dimension": built.dimension, "size": built.size, "chunk_size": built.chunk_size,
            "image_quality": options.image_quality, "use_zip_chunks": options.use_zip_chunks,
            "use_cache": options.use_cache,
            "compressed_chunk_type": built.compressed_chunk_type,
            "original_chunk_type": built.original_chunk_type,
            "start_frame": built.start_frame, "stop_frame": built.stop_frame,
            "frame_filter": options.frame_filter, "sorting_method": options.sorting_method,
            "storage": _storage_kind(options), "cloud_storage_id": options.cloud_storage_id,
            "video_key": built.video_key, "video_keyframes": built.video_keyframes,
            "manifest_key": built.manifest_key,
        }  # fmt: skip
        frame_rows = [
            {"task_id": plan.task_id, "frame": number, **asdict(frame)}
            for number, frame in enumerate(built.frames)
        ]
        async with self.database.transaction() as session:
            await repo.insert_media(session, record, frame_rows, built.chunks)

    async def _abandon(self, rq_id: str, plan: CreationPlan, message: str) -> None:
        """Remove what the request stored (never the uploads' records) and fail it."""
        try:
            await self.storage.delete_prefix(media_prefix(plan.task_id))
        except Exception:
            logger.exception("could not remove the media of task %s", plan.task_id)
        await self.requests.fail(rq_id, message)
