"""What the ingest service holds for its lifetime besides the platform, and the typed
dependencies that give its parts to the routers."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tessera.ingest.cloud_storages.service import CloudStorages
from tessera.ingest.frames.service import MediaReader
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.requests import RequestStore
from tessera.platform.service import service_state
from tessera.platform.uploads import Uploads
from tessera.platform.workqueue import WorkerPool


@dataclass(frozen=True)
class IngestState:
    """The service's clients and workers (the app's `state.service`)."""

    annotations: AnnotationsClient
    clouds: CloudStorages
    requests: RequestStore
    uploads: Uploads
    reader: MediaReader
    creation: WorkerPool


def annotations_client(request: Request) -> AnnotationsClient:
    """The client of the annotations service."""
    return service_state(request, IngestState).annotations


def cloud_storages(request: Request) -> CloudStorages:
    """The cloud storages tasks read their media from."""
    return service_state(request, IngestState).clouds


def request_store(request: Request) -> RequestStore:
    """The service's background requests (task creations)."""
    return service_state(request, IngestState).requests


def upload_store(request: Request) -> Uploads:
    """The files clients upload for tasks (CVAT's upload protocol)."""
    return service_state(request, IngestState).uploads


def media_reader(request: Request) -> MediaReader:
    """The reader of task media (frames, chunks, context images)."""
    return service_state(request, IngestState).reader


AnnotationsApi = Annotated[AnnotationsClient, Depends(annotations_client)]
Clouds = Annotated[CloudStorages, Depends(cloud_storages)]
Requests = Annotated[RequestStore, Depends(request_store)]
Reader = Annotated[MediaReader, Depends(media_reader)]
UploadStore = Annotated[Uploads, Depends(upload_store)]
