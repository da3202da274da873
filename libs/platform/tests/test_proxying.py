"""Trailing slashes without redirects, and forwarded headers believed only from proxies."""

import httpx
import pytest
from fastapi import FastAPI, Request

from tessera.platform.proxying import (
    ForwardedHeadersMiddleware,
    TrailingSlashMiddleware,
    parse_networks,
    public_url,
)

GATEWAY = ("127.0.0.1", 50000)
STRANGER = ("203.0.113.9", 50000)


def _app() -> FastAPI:
    app = FastAPI(redirect_slashes=False)

    @app.api_route("/api/things", methods=["GET", "PUT"])
    async def things(request: Request) -> dict[str, object]:
        return {
            "self": public_url(request, "/api/things"),
            "client": request.client.host if request.client else None,
            "forwarded_host": request.headers.get("x-forwarded-host"),
        }

    app.add_middleware(TrailingSlashMiddleware)
    app.add_middleware(ForwardedHeadersMiddleware, trusted=["127.0.0.1", "10.0.0.0/8"])
    return app


def _client(peer: tuple[str, int]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), client=peer)
    return httpx.AsyncClient(transport=transport, base_url="http://service:8000")


@pytest.mark.parametrize("path", ["/api/things", "/api/things/", "/api/things//"])
async def test_both_forms_answer_without_redirect(path: str) -> None:
    async with _client(GATEWAY) as client:
        for method in ("GET", "PUT"):
            response = await client.request(method, path)
            assert response.status_code == 200, (method, path, response.headers)
            assert "location" not in response.headers


async def test_a_trusted_proxy_sets_scheme_host_and_client() -> None:
    async with _client(GATEWAY) as client:
        response = await client.get(
            "/api/things/",
            headers={
                "x-forwarded-host": "tessera.example.org",
                "x-forwarded-proto": "https",
                "x-forwarded-for": "198.51.100.7, 10.1.2.3",
            },
        )
    body = response.json()
    assert body["self"] == "https://tessera.example.org/api/things"
    assert body["client"] == "198.51.100.7"


async def test_without_forwarded_headers_the_host_header_is_the_address() -> None:
    async with _client(GATEWAY) as client:
        response = await client.get("/api/things", headers={"host": "127.0.0.1:8080"})
    assert response.json()["self"] == "http://127.0.0.1:8080/api/things"


async def test_anyone_else_cannot_forge_the_address() -> None:
    async with _client(STRANGER) as client:
        response = await client.get(
            "/api/things",
            headers={
                "x-forwarded-host": "evil.example",
                "x-forwarded-proto": "https",
                "x-forwarded-for": "1.2.3.4",
            },
        )
    body = response.json()
    assert body["self"] == "http://service:8000/api/things"
    assert body["client"] == STRANGER[0]
    assert body["forwarded_host"] is None


def test_networks_are_checked() -> None:
    assert [str(n) for n in parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    with pytest.raises(ValueError, match="not-an-address"):
        parse_networks(["not-an-address"])
