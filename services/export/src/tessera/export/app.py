"""The export service's ASGI app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from tessera.export import __version__, migrations
from tessera.export.backups.restorer import RestoreRunner
from tessera.export.backups.restores import Restores
from tessera.export.backups.router import router as backups_router
from tessera.export.config import ExportSettings
from tessera.export.datasets.router import router as datasets_router
from tessera.export.datasets.runner import DatasetImportRunner
from tessera.export.datasets.service import DatasetImports
from tessera.export.events import failure_events
from tessera.export.expiry import ExpiredExports
from tessera.export.exports.router import router as exports_router
from tessera.export.exports.service import Exports
from tessera.export.imports.router import router as imports_router
from tessera.export.imports.runner import ImportRunner
from tessera.export.imports.service import Imports
from tessera.export.queue import DATASETS, EXPORTS, IMPORTS, RESTORES
from tessera.export.renders.router import router as renders_router
from tessera.export.runner import ExportRunner, RunnerConfig
from tessera.export.server.router import router as server_router
from tessera.export.state import ExportState, request_store
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.requests import RequestStore, requests_router
from tessera.platform.service import Platform, ServiceSpec, create_service_app
from tessera.platform.uploads import Uploads
from tessera.platform.workqueue import QueueMetrics, WorkerPool


@asynccontextmanager
async def _running(platform: Platform) -> AsyncIterator[ExportState]:
    """The service's lifespan: its clients, the export and import workers and the expiry
    sweep."""
    settings = platform.settings
    assert isinstance(settings, ExportSettings)
    annotations = AnnotationsClient(settings.annotations_url, settings.internal_token)
    ingest = IngestClient(settings.ingest_url, settings.internal_token)
    # No fail_interrupted(): the export queue gives unfinished exports to a replica.
    requests = RequestStore(platform.database, platform.outbox, platform.name, platform.schema)
    exports = Exports(
        platform.database, platform.outbox, platform.storage,
        annotations=annotations, ingest=ingest, requests=requests,
    )  # fmt: skip
    runner = ExportRunner(
        platform.database,
        platform.storage,
        annotations=annotations,
        ingest=ingest,
        requests=requests,
        config=RunnerConfig(
            prefix=settings.export_prefix,
            lifetime=timedelta(seconds=settings.export_lifetime_s),
            compresslevel=settings.archive_compression_level,
        ),
    )
    workers = WorkerPool(
        EXPORTS, platform.bus, requests, runner,
        workers=settings.export_workers, failure_events=failure_events,
    )  # fmt: skip
    imports = Imports(
        platform.database, platform.outbox, Uploads(platform.storage, platform.schema),
        annotations=annotations, ingest=ingest, requests=requests,
        max_upload_bytes=settings.import_max_bytes,
    )  # fmt: skip
    importer = ImportRunner(platform.storage, annotations=annotations, ingest=ingest,
                            requests=requests)  # fmt: skip
    import_workers = WorkerPool(
        IMPORTS, platform.bus, requests, importer, workers=settings.import_workers
    )
    restores = Restores(
        platform.database, platform.outbox, Uploads(platform.storage, platform.schema),
        annotations=annotations, ingest=ingest, requests=requests,
        max_upload_bytes=settings.backup_max_bytes,
    )  # fmt: skip
    restorer = RestoreRunner(platform.storage, annotations=annotations, ingest=ingest,
                             requests=requests)  # fmt: skip
    restore_workers = WorkerPool(
        RESTORES, platform.bus, requests, restorer, workers=settings.restore_workers
    )
    datasets = DatasetImports(
        platform.database, platform.outbox, Uploads(platform.storage, platform.schema),
        annotations=annotations, ingest=ingest, requests=requests,
        max_upload_bytes=settings.dataset_max_bytes,
    )  # fmt: skip
    dataset_importer = DatasetImportRunner(platform.storage, annotations=annotations,
                                           ingest=ingest, requests=requests)  # fmt: skip
    dataset_workers = WorkerPool(
        DATASETS, platform.bus, requests, dataset_importer, workers=settings.dataset_workers
    )
    queue_metrics = QueueMetrics(platform.metrics, platform.bus)
    for queue, pool in ((EXPORTS, workers), (IMPORTS, import_workers),
                        (RESTORES, restore_workers), (DATASETS, dataset_workers)):  # fmt: skip
        queue_metrics.watch(queue, pool)
    expiry = ExpiredExports(platform.database, platform.storage, settings.expiry_interval_s)
    workers.start()
    import_workers.start()
    restore_workers.start()
    dataset_workers.start()
    expiry.start()
    try:
        yield ExportState(
            exports, imports, requests, workers, import_workers, restores, restore_workers,
            datasets=datasets, dataset_workers=dataset_workers,
        )  # fmt: skip
    finally:
        await expiry.stop()
        await dataset_workers.stop()
        await restore_workers.stop()
        await import_workers.stop()
        await workers.stop()
        await ingest.close()
        await annotations.close()


SPEC = ServiceSpec(
    name="export",
    schema=migrations.SCHEMA,
    version=__version__,
    description="Dataset export and import in every annotation format, as requests with progress.",
    migrations=migrations.LOCATION,
    routers=(
        exports_router,
        backups_router,
        imports_router,
        datasets_router,
        server_router,
        renders_router,
        requests_router(request_store, cancellable=True),
    ),
    lifespan=_running,
)


def create_app(settings: ExportSettings | None = None) -> FastAPI:
    """Build the export app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or ExportSettings())
