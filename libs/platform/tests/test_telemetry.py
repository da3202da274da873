"""Request ids: accepted or made, returned, logged as JSON, and forwarded on HTTP calls."""

import io
import json
import logging

import httpx

from tessera.devstack.testing import OpenService
from tessera.platform.telemetry import JsonFormatter, http_client, request_id_scope


async def test_request_id_is_echoed_or_made(open_service: OpenService) -> None:
    async with open_service("inference") as svc:
        given = await svc.anonymous.get("/healthz", headers={"X-Request-ID": "abc-123"})
        made = await svc.anonymous.get("/healthz")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32


def test_log_lines_are_json_with_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("export"))
    logger = logging.getLogger("tessera.test.telemetry")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with request_id_scope("req-42"):
            logger.warning("exporting %d shapes", 5)
        logger.warning("outside any request")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["msg"] == "exporting 5 shapes"
    assert inside["request_id"] == "req-42"
    assert inside["service"] == "export"
    assert inside["level"] == "WARNING"
    assert "request_id" not in outside


async def test_http_client_forwards_the_request_id() -> None:
    seen: list[str | None] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("X-Request-ID"))
        return httpx.Response(204)

    async with http_client(transport=httpx.MockTransport(record)) as client:
        with request_id_scope("req-7"):
            await client.get("http://127.0.0.1/next-hop")
        await client.get("http://127.0.0.1/next-hop")
    assert seen == ["req-7", None]
