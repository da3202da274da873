"""What the export service holds for its lifetime besides the platform, and the typed
dependencies that give its parts to the routers."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tessera.export.exports.service import Exports
from tessera.platform.requests import RequestStore
from tessera.platform.service import service_state
from tessera.platform.workqueue import WorkerPool


@dataclass(frozen=True)
class ExportState:
    """The service's export requests, their store and this replica's workers."""

    exports: Exports
    requests: RequestStore
    workers: WorkerPool


def exports_service(request: Request) -> Exports:
    """Starting exports and downloading their archives."""
    return service_state(request, ExportState).exports


def request_store(request: Request) -> RequestStore:
    """The service's background requests (exports)."""
    return service_state(request, ExportState).requests


ExportsApi = Annotated[Exports, Depends(exports_service)]
