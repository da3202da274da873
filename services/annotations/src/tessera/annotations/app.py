"""The annotations service's ASGI app."""

from fastapi import FastAPI

from tessera.annotations import __version__, migrations
from tessera.annotations.access_tokens.router import router as access_tokens_router
from tessera.annotations.bootstrap import ensure_bootstrap_admin
from tessera.annotations.config import AnnotationsSettings
from tessera.annotations.server.router import router as server_router
from tessera.annotations.users.router import router as users_router
from tessera.platform.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="annotations",
    schema=migrations.SCHEMA,
    version=__version__,
    description="Users, organizations, projects, tasks, jobs, labels and annotations.",
    migrations=migrations.LOCATION,
    routers=(server_router, users_router, access_tokens_router),
    on_start=(ensure_bootstrap_admin,),
)


def create_app(settings: AnnotationsSettings | None = None) -> FastAPI:
    """Build the annotations app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or AnnotationsSettings())
