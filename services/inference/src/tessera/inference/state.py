"""What the inference service holds for its lifetime besides the platform, and the typed
dependencies that give its parts to the routers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tessera.inference.auto_annotation.service import AutoAnnotations
from tessera.inference.functions.registry import FunctionRegistry
from tessera.inference.functions.service import Functions
from tessera.inference.metrics import InferenceMetrics
from tessera.inference.triton import FrameBatcher, TritonClient
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.requests import RequestStore
from tessera.platform.service import ReadinessCheck, service_state
from tessera.platform.workqueue import WorkerPool


@dataclass(frozen=True)
class InferenceState:
    """The Triton client and one batcher per model (name, version) the functions run,
    the clients of annotations and ingest, the function registry and its service, the
    service's metrics, and the auto-annotation requests and workers."""

    triton: TritonClient
    batchers: Mapping[tuple[str, str], FrameBatcher]
    annotations: AnnotationsClient
    ingest: IngestClient
    registry: FunctionRegistry
    functions: Functions
    metrics: InferenceMetrics
    # Auto-annotation requests: their store, the service that takes them, and this
    # replica's workers (None when it runs none).
    requests: RequestStore
    auto_annotations: AutoAnnotations
    auto_annotation_workers: WorkerPool | None

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        """For `/readyz`: Triton (`triton`), and each model the functions run
        (`triton:<model>`, or `triton:<model>:<version>`)."""
        checks: dict[str, ReadinessCheck] = {"triton": self._triton_ready}
        for model, version in self.registry.triton_models():
            name = f"triton:{model}:{version}" if version else f"triton:{model}"
            checks[name] = self._model_check(model, version)
        return checks

    async def _triton_ready(self) -> None:
        if not await self.triton.server_ready():
            raise RuntimeError(f"Triton at {self.triton.url} is not ready")

    def _model_check(self, model: str, version: str) -> ReadinessCheck:
        async def check() -> None:
            if not await self.triton.model_ready(model, version):
                raise RuntimeError(f"model {model!r} is not ready on Triton at {self.triton.url}")

        return check


def functions_service(request: Request) -> Functions:
    """The functions of CVAT's lambda API and their online calls."""
    return service_state(request, InferenceState).functions


def triton_client(request: Request) -> TritonClient:
    """The service's Triton client."""
    return service_state(request, InferenceState).triton


def annotations_client(request: Request) -> AnnotationsClient:
    """The client of the annotations service (access checks, labels, writes)."""
    return service_state(request, InferenceState).annotations


def ingest_client(request: Request) -> IngestClient:
    """The client of the ingest service (frames)."""
    return service_state(request, InferenceState).ingest


FunctionsApi = Annotated[Functions, Depends(functions_service)]
TritonApi = Annotated[TritonClient, Depends(triton_client)]
AnnotationsApi = Annotated[AnnotationsClient, Depends(annotations_client)]
IngestApi = Annotated[IngestClient, Depends(ingest_client)]
