"""The ingest service's ASGI app."""

from fastapi import FastAPI

from tessera.ingest import __version__, migrations
from tessera.ingest.annotations_client import AnnotationsClient
from tessera.ingest.cloud_storages.router import router as cloud_storages_router
from tessera.ingest.cloud_storages.service import CloudStorages
from tessera.ingest.config import IngestSettings
from tessera.ingest.creation import CreationQueue, CreationRunner
from tessera.ingest.frames.router import router as frames_router
from tessera.ingest.frames.service import MediaReader
from tessera.ingest.share.router import router as share_router
from tessera.ingest.task_data.router import router as task_data_router
from tessera.platform.requests import RequestStore, requests_router
from tessera.platform.service import Platform, ServiceSpec, create_service_app


async def _start(platform: Platform) -> None:
    settings = platform.settings
    assert isinstance(settings, IngestSettings)
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    annotations = AnnotationsClient(settings.annotations_url, settings.internal_token)
    # No fail_interrupted(): the creation queue gives unfinished creations to a replica.
    requests = RequestStore(platform.database, platform.outbox, platform.name, platform.schema)
    clouds = CloudStorages(platform.database, settings)
    platform.extras.update(
        annotations=annotations,
        clouds=clouds,
        requests=requests,
        reader=MediaReader(platform.database, platform.storage, settings, clouds),
    )
    runner = CreationRunner(
        platform.database, platform.storage, settings, annotations, requests, clouds=clouds
    )
    queue = CreationQueue(platform.bus, runner, workers=settings.creation_workers)
    queue.start()
    platform.extras["creation"] = queue


async def _stop(platform: Platform) -> None:
    await platform.extras["creation"].stop()
    platform.extras["reader"].close()
    await platform.extras["clouds"].close()
    await platform.extras["annotations"].close()


SPEC = ServiceSpec(
    name="ingest",
    schema=migrations.SCHEMA,
    version=__version__,
    description="Task media: uploads, cloud storage, URLs, shares, frames, chunks and segments.",
    migrations=migrations.LOCATION,
    routers=(
        task_data_router,
        frames_router,
        cloud_storages_router,
        share_router,
        requests_router(),
    ),
    on_start=(_start,),
    on_stop=(_stop,),
)


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    """Build the ingest app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or IngestSettings())
