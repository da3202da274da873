"""The ingest service's ASGI app."""

from fastapi import FastAPI

from tessera.ingest import __version__, migrations
from tessera.ingest.config import IngestSettings
from tessera.platform.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="ingest",
    schema=migrations.SCHEMA,
    version=__version__,
    description="Task media: uploads, cloud storage, URLs, shares, frames, chunks and segments.",
    migrations=migrations.LOCATION,
)


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    """Build the ingest app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or IngestSettings())
