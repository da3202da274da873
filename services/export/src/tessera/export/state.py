"""What the export service holds for its lifetime besides the platform, and the typed
dependencies that give its parts to the routers."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tessera.export.backups.restores import Restores
from tessera.export.datasets.service import DatasetImports
from tessera.export.exports.service import Exports
from tessera.export.imports.service import Imports
from tessera.platform.requests import RequestStore
from tessera.platform.service import service_state
from tessera.platform.uploads import Uploads
from tessera.platform.workqueue import WorkerPool


@dataclass(frozen=True)
class ExportState:
    """The service's export, import, restore and dataset import requests, their store and
    this replica's workers of each."""

    exports: Exports
    imports: Imports
    requests: RequestStore
    workers: WorkerPool
    import_workers: WorkerPool
    restores: Restores
    restore_workers: WorkerPool
    datasets: DatasetImports
    dataset_workers: WorkerPool


def exports_service(request: Request) -> Exports:
    """Starting exports and downloading their archives."""
    return service_state(request, ExportState).exports


def imports_service(request: Request) -> Imports:
    """Starting annotation imports."""
    return service_state(request, ExportState).imports


def import_uploads(request: Request) -> Uploads:
    """The files uploaded for imports."""
    return service_state(request, ExportState).imports.uploads


def restores_service(request: Request) -> Restores:
    """Starting backup restores."""
    return service_state(request, ExportState).restores


def restore_uploads(request: Request) -> Uploads:
    """The backup archives uploaded for restores."""
    return service_state(request, ExportState).restores.uploads


def datasets_service(request: Request) -> DatasetImports:
    """Starting dataset imports into projects."""
    return service_state(request, ExportState).datasets


def dataset_uploads(request: Request) -> Uploads:
    """The dataset archives uploaded for dataset imports."""
    return service_state(request, ExportState).datasets.uploads


def request_store(request: Request) -> RequestStore:
    """The service's background requests (exports and imports)."""
    return service_state(request, ExportState).requests


ExportsApi = Annotated[Exports, Depends(exports_service)]
ImportsApi = Annotated[Imports, Depends(imports_service)]
RestoresApi = Annotated[Restores, Depends(restores_service)]
DatasetsApi = Annotated[DatasetImports, Depends(datasets_service)]
