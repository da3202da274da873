"""The inference service's ASGI app."""

from fastapi import FastAPI

from tessera.inference import __version__, migrations
from tessera.inference.config import InferenceSettings
from tessera.platform.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="inference",
    schema=migrations.SCHEMA,
    version=__version__,
    description="Model registry, auto-annotation requests, interactors and trackers over Triton.",
    migrations=migrations.LOCATION,
)


def create_app(settings: InferenceSettings | None = None) -> FastAPI:
    """Build the inference app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or InferenceSettings())
