"""The inference service's ASGI app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tessera.inference import __version__, migrations
from tessera.inference.auto_annotation.repository import AutoAnnotationRepository
from tessera.inference.auto_annotation.router import request_store
from tessera.inference.auto_annotation.router import router as auto_annotation_router
from tessera.inference.auto_annotation.runner import AutoAnnotationRunner, RunnerConfig
from tessera.inference.auto_annotation.service import AutoAnnotations
from tessera.inference.config import InferenceSettings
from tessera.inference.detectors.detection import InferFn
from tessera.inference.functions.registry import FunctionRegistry, FunctionSpec, make_runners
from tessera.inference.functions.router import router as functions_router
from tessera.inference.functions.service import Functions
from tessera.inference.metrics import InferenceMetrics
from tessera.inference.queue import auto_annotation_queue
from tessera.inference.state import InferenceState
from tessera.inference.triton import FrameBatcher, TritonClient
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.requests import RequestStore, requests_router
from tessera.platform.service import Platform, ServiceSpec, create_service_app
from tessera.platform.workqueue import QueueMetrics, WorkerPool


@asynccontextmanager
async def _running(platform: Platform) -> AsyncIterator[InferenceState]:
    """The service's lifespan: the function registry and each function's code, the Triton
    client with a batcher per model, the clients of annotations and ingest, and the
    metrics (the auto-annotation queue's depth among them, with or without workers here).
    Nothing here waits for Triton: a model is checked at its first use (and by
    `/readyz`)."""
    settings = platform.settings
    assert isinstance(settings, InferenceSettings)
    registry = FunctionRegistry.load(settings.functions_file)
    metrics = InferenceMetrics(platform.metrics.registry)
    triton = TritonClient(
        settings.triton_url,
        timeout_s=settings.triton_timeout_s,
        retries=settings.triton_retries,
        on_request=metrics.observe_request,
    )
    batchers = {
        (model, version): FrameBatcher(
            triton,
            model,
            version=version,
            linger_s=settings.batch_linger_s,
            max_in_flight=settings.batch_max_in_flight,
        )
        for model, version in registry.triton_models()
    }
    for batcher in batchers.values():
        metrics.watch(batcher)

    def infer_for(spec: FunctionSpec) -> InferFn | None:
        return batchers[(spec.model, spec.model_version)].infer if spec.on_triton else None

    runners = make_runners(registry, infer_for)
    annotations = AnnotationsClient(settings.annotations_url, settings.internal_token)
    ingest = IngestClient(settings.ingest_url, settings.internal_token)
    functions = Functions(
        registry, runners, annotations=annotations, ingest=ingest,
        tracker_secret=settings.tracker_state_secret.get_secret_value(),
        previous_tracker_secrets=[
            secret.get_secret_value() for secret in settings.tracker_state_previous_secrets
        ],
    )  # fmt: skip
    # Auto-annotation requests. No fail_interrupted(): the queue gives unfinished
    # requests to a replica, which resumes them.
    requests = RequestStore(platform.database, platform.outbox, platform.name, platform.schema)
    repository = AutoAnnotationRepository(platform.database, requests, platform.schema)
    queue = auto_annotation_queue(
        max_deliveries=settings.auto_annotation_max_deliveries,
        retry_delay_s=settings.auto_annotation_retry_delay_s,
    )
    auto_annotations = AutoAnnotations(
        platform.database, platform.outbox, requests, repository, registry=registry,
        runners=runners, annotations=annotations, ingest=ingest, queue=queue,
    )  # fmt: skip
    workers = None
    if settings.auto_annotation_workers:
        runner = AutoAnnotationRunner(
            repository, requests, registry=registry, runners=runners,
            annotations=annotations, ingest=ingest, queue=queue,
            config=RunnerConfig(
                detect_frames=settings.auto_annotation_detect_frames,
                write_frames=settings.auto_annotation_write_frames,
                write_shapes=settings.auto_annotation_write_shapes,
            ),
        )  # fmt: skip
        workers = WorkerPool(
            queue, platform.bus, requests, runner, workers=settings.auto_annotation_workers
        )
        workers.start()
    QueueMetrics(platform.metrics, platform.bus).watch(queue, workers)
    try:
        yield InferenceState(
            triton, batchers, annotations, ingest, registry, functions, metrics,
            requests=requests, auto_annotations=auto_annotations,
            auto_annotation_workers=workers,
        )  # fmt: skip
    finally:
        if workers is not None:
            await workers.stop()
        for batcher in batchers.values():
            await batcher.aclose()
        await triton.close()
        await ingest.close()
        await annotations.close()


SPEC = ServiceSpec(
    name="inference",
    schema=migrations.SCHEMA,
    version=__version__,
    description="Model registry, auto-annotation requests, interactors and trackers over Triton.",
    migrations=migrations.LOCATION,
    routers=(functions_router, auto_annotation_router, requests_router(request_store)),
    lifespan=_running,
    uses_storage=False,
)


def create_app(settings: InferenceSettings | None = None) -> FastAPI:
    """Build the inference app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or InferenceSettings())
