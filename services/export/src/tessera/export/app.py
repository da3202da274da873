"""The export service's ASGI app."""

from fastapi import FastAPI

from tessera.export import __version__, migrations
from tessera.export.config import ExportSettings
from tessera.platform.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="export",
    schema=migrations.SCHEMA,
    version=__version__,
    description="Dataset export and import in every annotation format, as requests with progress.",
    migrations=migrations.LOCATION,
)


def create_app(settings: ExportSettings | None = None) -> FastAPI:
    """Build the export app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or ExportSettings())
