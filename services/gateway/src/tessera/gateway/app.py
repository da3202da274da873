"""The gateway's ASGI app: the router of `make run`, and the API's merged documentation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from tessera.gateway import __version__
from tessera.gateway.config import GatewaySettings
from tessera.gateway.docs import DOCS_PATH, swagger_ui_asset, swagger_ui_page
from tessera.gateway.openapi import merge_openapi
from tessera.gateway.proxy import forward
from tessera.gateway.requests_list import LIST_PATH, SERVICES, list_requests
from tessera.gateway.routing import RoutingTable, routing_table
from tessera.platform.errors import NotFound, install_error_handlers, readiness_response
from tessera.platform.proxying import ForwardedHeadersMiddleware
from tessera.platform.telemetry import Metrics, TelemetryMiddleware, configure_logging, http_client

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class Upstreams:
    """The services behind the gateway, with a shared connection pool."""

    def __init__(self, settings: GatewaySettings, table: RoutingTable) -> None:
        missing = set(table.services) - set(settings.upstreams)
        if missing:
            raise ValueError(f"TESSERA_GATEWAY_UPSTREAMS lacks {sorted(missing)}")
        self.settings = settings
        self.table = table
        self.client = http_client(
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
            follow_redirects=False,
        )
        self._schema: dict[str, Any] | None = None
        self._schema_at = 0.0

    def url(self, service: str) -> str:
        """The base URL of a service; 404 for a name that is not in the table."""
        if service not in self.table.services:
            raise NotFound(f"There is no service named {service!r}.")
        return self.settings.upstreams[service]

    async def probe(self, service: str, path: str) -> tuple[int, Any]:
        """GET a health path of one service; (503, reason) when it does not answer."""
        try:
            response = await self.client.get(self.url(service) + path, timeout=5.0)
        except httpx.HTTPError as exc:
            return 503, {
                "status": "unreachable",
                "service": service,
                "detail": str(exc) or type(exc).__name__,
            }
        return response.status_code, response.json()

    async def openapi(self) -> dict[str, Any]:
        """The merged document, refreshed at most every `schema_cache_s` seconds."""
        if (
            self._schema is None
            or time.monotonic() - self._schema_at > self.settings.schema_cache_s
        ):
            documents: dict[str, dict[str, Any]] = {}

            async def fetch(service: str) -> None:
                response = await self.client.get(self.url(service) + "/openapi.json", timeout=10.0)
                response.raise_for_status()
                documents[service] = response.json()

            results = await asyncio.gather(
                *(fetch(s) for s in self.table.services), return_exceptions=True
            )
            merged = merge_openapi(self.table, documents)
            failed = [
                s
                for s, r in zip(self.table.services, results, strict=True)
                if isinstance(r, Exception)
            ]
            if failed:
                merged["info"]["description"] += (
                    f"\n\nNot included (unreachable): {', '.join(failed)}."
                )
                return merged
            self._schema, self._schema_at = merged, time.monotonic()
        return self._schema


def create_app(
    settings: GatewaySettings | None = None, table: RoutingTable | None = None
) -> FastAPI:
    """Build the gateway app."""
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    upstreams = Upstreams(settings, table or routing_table())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await upstreams.client.aclose()

    app = FastAPI(
        title="Tessera gateway",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.upstreams = upstreams
    install_error_handlers(app)
    metrics = Metrics("gateway")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "gateway"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        services = upstreams.table.services
        probes = await asyncio.gather(*(upstreams.probe(s, "/readyz") for s in services))
        checks = {
            s: ("ok" if status == 200 else "not ready")
            for s, (status, _) in zip(services, probes, strict=True)
        }
        return readiness_response(request, "gateway", checks)

    @app.get("/healthz/{service}")
    async def service_healthz(service: str) -> JSONResponse:
        status, body = await upstreams.probe(service, "/healthz")
        return JSONResponse(body, status_code=status)

    @app.get("/readyz/{service}")
    async def service_readyz(service: str) -> JSONResponse:
        status, body = await upstreams.probe(service, "/readyz")
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return metrics.render()

    @app.get("/api/schema", include_in_schema=False)
    async def schema() -> JSONResponse:
        return JSONResponse(await upstreams.openapi())

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return swagger_ui_page("/api/schema")

    @app.get(DOCS_PATH + "/{path:path}", include_in_schema=False)
    async def docs_files(path: str) -> Response:
        return swagger_ui_page("/api/schema") if path == "" else swagger_ui_asset(path)

    @app.get(LIST_PATH, include_in_schema=False)
    @app.get(LIST_PATH + "/", include_in_schema=False)
    async def requests_list(request: Request) -> Response:
        """The caller's background requests of every service, merged (see requests_list)."""
        listing = [s for s in SERVICES if s in upstreams.table.services]
        bases = {service: upstreams.url(service) for service in listing}
        return await list_requests(upstreams.client, bases, request)

    @app.api_route("/api/{path:path}", methods=PROXIED_METHODS, include_in_schema=False)
    async def proxy(request: Request) -> Response:
        table = upstreams.table
        service = table.service_for(request.url.path, request.query_params, request.headers)
        return await forward(upstreams.client, upstreams.url(service), service, request)

    app.add_middleware(TelemetryMiddleware, metrics=metrics, router_app=app.router)
    app.add_middleware(ForwardedHeadersMiddleware, trusted=settings.trusted_proxies)
    return app
