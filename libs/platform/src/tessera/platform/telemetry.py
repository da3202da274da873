"""JSON logs carrying a request id, the request-id middleware, and Prometheus metrics.

The request id arrives in `X-Request-ID` (or is made here), is kept in a context
variable for the duration of the request, is written on every log line, is sent on
outgoing HTTP calls (`http_client`) and NATS messages (`tessera.platform.bus`), and is
restored from them on the other side.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
SERVICE_HEADER = "X-Tessera-Service"
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The request id of the work in progress, if any."""
    return _request_id.get()


def new_request_id() -> str:
    """A fresh request id."""
    return uuid.uuid4().hex


@contextmanager
def request_id_scope(request_id: str | None) -> Iterator[str]:
    """Run a block under `request_id` (a new one when None)."""
    value = request_id or new_request_id()
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, service, request id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO", json_lines: bool = True) -> None:
    """Send the root logger to stderr, as JSON lines unless `json_lines` is False."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


async def _send_request_id(request: httpx.Request) -> None:
    request_id = current_request_id()
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def http_client(**kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that forwards the current request id on every call."""
    hooks = kwargs.pop("event_hooks", {})
    hooks.setdefault("request", []).append(_send_request_id)
    return httpx.AsyncClient(event_hooks=hooks, **kwargs)


Refresher = Callable[[], Awaitable[None]]
REFRESH_TIMEOUT_S = 2.0


class Metrics:
    """The Prometheus collectors of one service, in a registry of its own.

    Collectors whose values live elsewhere (a JetStream consumer's pending messages) are
    read at each scrape: `on_scrape` registers an async refresher, and `/metrics` awaits
    `refresh()` (every refresher at once, each cut off after REFRESH_TIMEOUT_S; one that
    fails or is late is logged and leaves its collectors as it set them) before `render()`.
    """

    def __init__(self, service: str) -> None:
        self._refreshers: list[Refresher] = []
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tessera_http_requests_total",
            "HTTP requests handled",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tessera_http_request_duration_seconds",
            "Time to the end of the response body",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.service = service

    def on_scrape(self, refresher: Refresher) -> None:
        """Await `refresher` before each scrape's exposition."""
        self._refreshers.append(refresher)

    async def refresh(self) -> None:
        """Run every refresher (see the class doc)."""

        async def run(refresher: Refresher) -> None:
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT_S):
                    await refresher()
            except Exception:
                logging.getLogger(__name__).warning(
                    "a metrics refresher failed; its values stay as they were", exc_info=True
                )

        await asyncio.gather(*(run(refresher) for refresher in self._refreshers))

    def render(self) -> Response:
        """The text exposition of every collector."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _route_template(app: ASGIApp, scope: Scope) -> str:
    for route in getattr(app, "routes", []):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", scope["path"]))
    return "unmatched"


class TelemetryMiddleware:
    """Sets the request id, tags responses with the service, and records metrics."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, router_app: ASGIApp) -> None:
        self.app = app
        self.metrics = metrics
        self.router_app = router_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Request(scope).headers.get(REQUEST_ID_HEADER)
        started = time.perf_counter()
        status = 500
        with request_id_scope(incoming) as request_id:

            async def send_tagged(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    # Behind the gateway, the owning service has already tagged the response.
                    for name, value in (
                        (REQUEST_ID_HEADER, request_id),
                        (SERVICE_HEADER, self.metrics.service),
                    ):
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                    message["headers"] = headers
                await send(message)

            try:
                await self.app(scope, receive, send_tagged)
            finally:
                route = _route_template(self.router_app, scope)
                method = scope["method"]
                self.metrics.requests.labels(self.metrics.service, method, route, str(status)).inc()
                self.metrics.latency.labels(self.metrics.service, method, route).observe(
                    time.perf_counter() - started
                )
