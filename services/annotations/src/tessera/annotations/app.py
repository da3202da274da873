"""The annotations service's ASGI app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tessera.annotations import __version__, migrations
from tessera.annotations.access_tokens.router import router as access_tokens_router
from tessera.annotations.annotations.router import router as annotations_router
from tessera.annotations.audit import service as audit
from tessera.annotations.audit.router import router as audit_router
from tessera.annotations.bootstrap import ensure_bootstrap_admin
from tessera.annotations.comments.router import router as comments_router
from tessera.annotations.config import AnnotationsSettings
from tessera.annotations.imports.router import router as imports_router
from tessera.annotations.invitations.router import router as invitations_router
from tessera.annotations.issues.router import router as issues_router
from tessera.annotations.jobs.router import internal_router as segments_router
from tessera.annotations.jobs.router import router as jobs_router
from tessera.annotations.labels.router import router as labels_router
from tessera.annotations.media_access.router import router as media_access_router
from tessera.annotations.memberships.router import router as memberships_router
from tessera.annotations.organizations.router import router as organizations_router
from tessera.annotations.projects.router import router as projects_router
from tessera.annotations.server.router import router as server_router
from tessera.annotations.snapshots.router import router as snapshots_router
from tessera.annotations.state import AnnotationsState
from tessera.annotations.tasks.router import router as tasks_router
from tessera.annotations.users.router import router as users_router
from tessera.annotations.webhooks import service as webhooks
from tessera.annotations.webhooks.router import router as webhooks_router
from tessera.platform.service import Platform, ServiceSpec, create_service_app


@asynccontextmanager
async def _running(platform: Platform) -> AsyncIterator[AnnotationsState]:
    """The service's lifespan: the audit log's consumers and the webhooks' delivery."""
    async with audit.consuming(platform), webhooks.delivering(platform) as deliverer:
        yield AnnotationsState(deliverer)


SPEC = ServiceSpec(
    name="annotations",
    schema=migrations.SCHEMA,
    version=__version__,
    description="Users, organizations, projects, tasks, jobs, labels and annotations.",
    migrations=migrations.LOCATION,
    # CVAT's clients read `about` before they log in, to check the server's version.
    public_paths=frozenset({"/api/server/about"}),
    uses_storage=False,
    routers=(
        server_router,
        users_router,
        access_tokens_router,
        annotations_router,
        projects_router,
        tasks_router,
        labels_router,
        jobs_router,
        segments_router,
        media_access_router,
        snapshots_router,
        imports_router,
        organizations_router,
        memberships_router,
        invitations_router,
        issues_router,
        comments_router,
        audit_router,
        webhooks_router,
    ),
    on_start=(ensure_bootstrap_admin,),
    lifespan=_running,
)


def create_app(settings: AnnotationsSettings | None = None) -> FastAPI:
    """Build the annotations app (settings from the environment by default)."""
    return create_service_app(SPEC, settings or AnnotationsSettings())
