"""The ingest service's ASGI app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tessera.ingest import __version__, migrations
from tessera.ingest.cloud_storages.router import internal_router as cloud_objects_router
from tessera.ingest.cloud_storages.router import router as cloud_storages_router
from tessera.ingest.cloud_storages.service import CloudStorages
from tessera.ingest.config import IngestSettings
from tessera.ingest.creation import CREATION, CreationRunner
from tessera.ingest.frames.router import internal_router as video_frames_router
from tessera.ingest.frames.router import router as frames_router
from tessera.ingest.frames.service import MediaReader
from tessera.ingest.media_files.router import router as media_files_router
from tessera.ingest.previews.router import router as previews_router
from tessera.ingest.share.router import router as share_router
from tessera.ingest.state import IngestState, request_store
from tessera.ingest.task_data.router import router as task_data_router
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.requests import RequestStore, requests_router
from tessera.platform.service import Platform, ServiceSpec, create_service_app
from tessera.platform.uploads import Uploads
from tessera.platform.workqueue import QueueMetrics, WorkerPool


@asynccontextmanager
async def _running(platform: Platform) -> AsyncIterator[IngestState]:
    """The service's lifespan: its clients, the media reader and the creation workers."""
    settings = platform.settings
    assert isinstance(settings, IngestSettings)
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    annotations = AnnotationsClient(settings.annotations_url, settings.internal_token)
    # No fail_interrupted(): the creation queue gives unfinished creations to a replica.
    requests = RequestStore(platform.database, platform.outbox, platform.name, platform.schema)
    uploads = Uploads(platform.storage, platform.schema)
    clouds = CloudStorages(platform.database, settings)
    reader = MediaReader(platform.database, platform.storage, settings, clouds)
    runner = CreationRunner(
        platform.database, platform.storage, settings, annotations, requests,
        clouds=clouds, uploads=uploads,
    )  # fmt: skip
    queue = WorkerPool(CREATION, platform.bus, requests, runner, workers=settings.creation_workers)
    queue.start()
    QueueMetrics(platform.metrics, platform.bus).watch(CREATION, queue)
    try:
        yield IngestState(annotations, clouds, requests, uploads, reader, creation=queue)
    finally:
        await queue.stop()
        reader.close()
        await clouds.close()
        await annotations.close()


SPEC = ServiceSpec(
    name="ingest",
    schema=migrations.SCHEMA,
    version=__version__,
    description="Task media: uploads, cloud storage, URLs, shares, frames, chunks and segments.",
    migrations=migrations.LOCATION,
    routers=(
        # Before the TUS routes of task data: `PATCH /api/tasks/{id}/data/meta` would
        # otherwise be taken for a TUS append to an upload named "meta".
        frames_router,
        task_data_router,
        previews_router,
        video_frames_router,
        media_files_router,
        cloud_storages_router,
        cloud_objects_router,
        share_router,
        requests_router(request_store),
    ),
    lifespan=_running,
)


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    """Build the ingest app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or IngestSettings())
