"""The inference service's ASGI app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tessera.inference import __version__, migrations
from tessera.inference.config import InferenceSettings
from tessera.inference.detectors.detection import InferFn
from tessera.inference.functions.registry import FunctionRegistry, FunctionSpec, make_runners
from tessera.inference.functions.router import router as functions_router
from tessera.inference.functions.service import Functions
from tessera.inference.metrics import InferenceMetrics
from tessera.inference.state import InferenceState
from tessera.inference.triton import FrameBatcher, TritonClient
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.service import Platform, ServiceSpec, create_service_app


@asynccontextmanager
async def _running(platform: Platform) -> AsyncIterator[InferenceState]:
    """The service's lifespan: the function registry and each function's code, the Triton
    client with a batcher per model, the clients of annotations and ingest, and the
    metrics. Nothing here waits for Triton: a model is checked at its first use (and by
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
    functions = Functions(registry, runners, annotations=annotations, ingest=ingest)
    try:
        yield InferenceState(
            triton, batchers, annotations, ingest, registry, functions, metrics
        )  # fmt: skip
    finally:
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
    routers=(functions_router,),
    lifespan=_running,
)


def create_app(settings: InferenceSettings | None = None) -> FastAPI:
    """Build the inference app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or InferenceSettings())
