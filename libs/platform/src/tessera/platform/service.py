"""The skeleton every Tessera service is built on.

`create_service_app` gives a FastAPI app whose lifespan opens the service's clients
(database, NATS, object storage, outbox relay), runs its migrations in dev, then the
service's own start hooks and lifespan, and closes everything in reverse order; it
installs problem+json errors, the telemetry middleware, `/healthz`, `/readyz`,
`/metrics`, and requires a verified caller on every API route.

What a service holds besides the platform (its clients of other services, its workers)
is one typed object that its `ServiceSpec.lifespan` yields; the app keeps it for the
requests, which receive its parts as typed FastAPI dependencies (`service_state`). When
that object has a `readiness_checks()` method (`HasReadinessChecks`), `/readyz` asks
those dependencies too (the inference service's Triton and models); the service's own
Prometheus collectors go in `platform.metrics.registry`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from tessera.platform.auth import AuthenticationMiddleware
from tessera.platform.bus import Bus, Outbox
from tessera.platform.db import Database, migrate
from tessera.platform.errors import install_error_handlers, readiness_response
from tessera.platform.proxying import ForwardedHeadersMiddleware, TrailingSlashMiddleware
from tessera.platform.settings import PlatformSettings
from tessera.platform.storage import ObjectStorage
from tessera.platform.telemetry import Metrics, TelemetryMiddleware, configure_logging

logger = logging.getLogger(__name__)
READINESS_TIMEOUT_S = 3.0
# Health and metrics are for probes and scrapers; the API description carries no data.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
)


@dataclass
class Platform:
    """The clients a service holds for its lifetime (in `app.state.platform`)."""

    name: str
    schema: str
    settings: PlatformSettings
    database: Database
    bus: Bus
    object_storage: ObjectStorage | None
    outbox: Outbox
    # The service's Prometheus registry (served at `/metrics`), for its own collectors.
    metrics: Metrics

    @property
    def storage(self) -> ObjectStorage:
        """The service's bucket; only for services whose spec says `uses_storage`."""
        if self.object_storage is None:
            raise RuntimeError(f"{self.name} does not use object storage (its spec says so)")
        return self.object_storage


Hook = Callable[[Platform], Awaitable[None]]
# A readiness check: returns when the dependency answers, raises saying why otherwise.
ReadinessCheck = Callable[[], Awaitable[None]]


@runtime_checkable
class HasReadinessChecks(Protocol):
    """A service state whose dependencies `/readyz` asks besides the platform's."""

    def readiness_checks(self) -> Mapping[str, ReadinessCheck]:
        """The checks by name, as `/readyz` reports them."""
        ...


ServiceLifespan = Callable[[Platform], AbstractAsyncContextManager[object]]
State = TypeVar("State")


@dataclass(frozen=True)
class ServiceSpec:
    """What distinguishes one service from another."""

    name: str
    schema: str
    version: str
    description: str
    migrations: Path
    routers: Sequence[APIRouter] = ()
    # API paths served without a token, on top of health, metrics and the OpenAPI document.
    public_paths: frozenset[str] = frozenset()
    # Run once the platform is open, in order (the bootstrap admin, ...).
    on_start: Sequence[Hook] = ()
    # Entered after `on_start` and left before the platform closes: it opens what the
    # service holds for its lifetime and yields it as one typed object (`service_state`).
    lifespan: ServiceLifespan | None = None
    # Whether the service reads or writes the bucket. One that does not opens no S3
    # client and leaves storage out of its readiness, so that in production it needs no
    # credentials for the bucket (annotations and inference run without an IAM role).
    uses_storage: bool = True


def service_state(request: Request, kind: type[State]) -> State:
    """What the spec's `lifespan` yielded for the app serving `request`, as a `kind`.

    For the service's typed dependencies: `def reader(request) -> MediaReader:
    return service_state(request, IngestState).reader`.
    """
    state = request.app.state.service
    if not isinstance(state, kind):
        raise TypeError(f"the service's state is a {type(state).__name__}, not a {kind.__name__}")
    return state


async def check_readiness(
    platform: Platform, extra: Mapping[str, ReadinessCheck] | None = None
) -> dict[str, str]:
    """Ask each dependency (the platform's, then `extra`) in parallel; `"ok"` or the
    error for each."""
    checks: dict[str, ReadinessCheck] = {
        "database": platform.database.ping,
        "nats": platform.bus.ping,
        **({"storage": platform.object_storage.ping} if platform.object_storage else {}),
        **(extra or {}),
    }

    async def run(check: Callable[[], Awaitable[None]]) -> str:
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_S):
                await check()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return "ok"

    results = await asyncio.gather(*(run(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


def _health_router(spec: ServiceSpec, metrics: Metrics) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @router.get(
        "/readyz",
        summary="Readiness: the database, NATS, object storage and the service's own "
        "dependencies answer",
    )
    async def readyz(request: Request) -> JSONResponse:
        state = getattr(request.app.state, "service", None)
        extra = state.readiness_checks() if isinstance(state, HasReadinessChecks) else None
        return readiness_response(
            request, spec.name, await check_readiness(request.app.state.platform, extra)
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        await metrics.refresh()
        return metrics.render()

    return router


def _lifespan(
    spec: ServiceSpec, settings: PlatformSettings, metrics: Metrics
) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database_url = settings.database_url.get_secret_value()
        if settings.should_migrate_on_start:
            await migrate(database_url, spec.migrations, spec.schema)
        async with AsyncExitStack() as stack:
            database = Database(
                database_url, pool_size=settings.database_pool_size, application_name=spec.name
            )
            stack.push_async_callback(database.dispose)
            bus = Bus(
                settings.nats_url,
                token=settings.nats_token.get_secret_value() if settings.nats_token else None,
                name=spec.name,
                stream_replicas=settings.nats_stream_replicas,
            )
            stack.push_async_callback(bus.close)
            await bus.start()
            storage = None
            if spec.uses_storage:
                storage = ObjectStorage(
                    bucket=settings.s3_bucket,
                    endpoint_url=settings.s3_endpoint_url,
                    region=settings.s3_region,
                    access_key=settings.s3_access_key,
                    secret_key=settings.s3_secret_key.get_secret_value()
                    if settings.s3_secret_key
                    else None,
                )
                await storage.start()
                stack.push_async_callback(storage.close)
                if settings.should_create_bucket:
                    await storage.ensure_bucket()
            outbox = Outbox(database, bus, spec.schema)
            outbox.start()
            stack.push_async_callback(outbox.stop)
            platform = Platform(
                spec.name, spec.schema, settings, database, bus, storage, outbox, metrics
            )
            app.state.platform = platform
            for hook in spec.on_start:
                await hook(platform)
            if spec.lifespan is not None:
                app.state.service = await stack.enter_async_context(spec.lifespan(platform))
            logger.info("%s started", spec.name)
            yield
            logger.info("%s stopping", spec.name)

    return lifespan


def create_service_app(spec: ServiceSpec, settings: PlatformSettings) -> FastAPI:
    """Build the FastAPI app of one service.

    Every route outside PUBLIC_PATHS and the spec's `public_paths` needs a token; paths
    answer the same with and without a trailing slash; forwarded headers count only
    from `settings.trusted_proxies`.
    """
    configure_logging(spec.name, settings.log_level, settings.log_json)
    metrics = Metrics(spec.name)
    app = FastAPI(
        title=f"Tessera {spec.name}",
        version=spec.version,
        description=spec.description,
        lifespan=_lifespan(spec, settings, metrics),
        redirect_slashes=False,
    )
    install_error_handlers(app)
    app.include_router(_health_router(spec, metrics))
    for router in spec.routers:
        app.include_router(router)
    app.add_middleware(AuthenticationMiddleware, public_paths=PUBLIC_PATHS | spec.public_paths)
    app.add_middleware(TelemetryMiddleware, metrics=metrics, router_app=app.router)
    app.add_middleware(TrailingSlashMiddleware)
    app.add_middleware(ForwardedHeadersMiddleware, trusted=settings.trusted_proxies)
    app.state.spec = spec
    return app
