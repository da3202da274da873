"""What the gateway tells a service about the client: its host, scheme and address."""

from collections.abc import Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request

from tessera.devstack.testing import serve_in_thread
from tessera.gateway.app import create_app
from tessera.gateway.config import GatewaySettings

SERVICES = ("annotations", "ingest", "export", "inference")


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    """An upstream that answers with the headers it received."""
    app = FastAPI()

    @app.api_route("/api/{path:path}", methods=["GET", "PUT"])
    async def headers(request: Request) -> dict[str, str]:
        return dict(request.headers)

    with serve_in_thread(app) as url:
        yield url


async def _seen(
    echo: str, peer: str, trusted: list[str], headers: dict[str, str]
) -> httpx.Response:
    settings = GatewaySettings(
        upstreams=dict.fromkeys(SERVICES, echo), trusted_proxies=trusted, log_json=False
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://edge:8080") as client:
            return await client.put("/api/jobs/1/annotations/", headers=headers)


async def test_the_service_gets_the_host_scheme_and_address_the_gateway_saw(echo: str) -> None:
    forged = {
        "x-forwarded-host": "evil.example",
        "x-forwarded-proto": "https",
        "x-forwarded-for": "1.2.3.4",
    }
    response = await _seen(echo, "198.51.100.20", [], forged)
    seen = response.json()
    assert response.status_code == 200
    assert seen["host"] == "edge:8080"
    assert seen["x-forwarded-host"] == "edge:8080"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-for"] == "198.51.100.20"


async def test_an_ingress_the_gateway_trusts_passes_the_public_address(echo: str) -> None:
    from_ingress = {
        "x-forwarded-host": "tessera.example.org",
        "x-forwarded-proto": "https",
        "x-forwarded-for": "203.0.113.5",
    }
    seen = (await _seen(echo, "10.0.3.4", ["10.0.0.0/16"], from_ingress)).json()
    assert seen["host"] == "tessera.example.org"
    assert seen["x-forwarded-host"] == "tessera.example.org"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-for"] == "203.0.113.5"
