"""The API documentation page loads everything it needs from the gateway itself."""

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tessera.gateway.app import create_app
from tessera.gateway.config import GatewaySettings
from tessera.gateway.docs import STATIC_PREFIX

BASE_URL = "http://gateway.test"


class _References(HTMLParser):
    """Collects the `src` and `href` attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway app, in process (no upstream is needed for the docs)."""
    transport = httpx.ASGITransport(app=create_app(GatewaySettings()))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@pytest.mark.parametrize("page", ["/api/docs", "/api/docs/"])
async def test_docs_page_and_each_asset_come_from_the_gateway(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _References()
    parser.feed(response.text)
    assert len(parser.urls) >= 3, parser.urls  # script, stylesheet, icon
    expected = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for reference in parser.urls:
        url = urlsplit(urljoin(f"{BASE_URL}{page}", reference))
        assert f"{url.scheme}://{url.netloc}" == BASE_URL, reference
        asset = await client.get(url.path)
        assert asset.status_code == 200, reference
        kind = next(v for suffix, v in expected.items() if url.path.endswith(suffix))
        assert kind in asset.headers["content-type"], (reference, asset.headers)
        assert "max-age=31536000" in asset.headers["cache-control"]
        assert asset.content


@pytest.mark.parametrize(
    "path",
    [
        "/api/docs/static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "/api/docs/%2e%2e%2f%2e%2e%2fschema",
        "/api/docs/static/..%2f..%2f__init__.py",
        "/api/docs/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        f"/api/docs/{STATIC_PREFIX}%2e%2e%2f%2e%2e%2fcore.py",
        f"/api/docs/{STATIC_PREFIX}redoc.standalone.js",
        "/api/docs/favicon.png",
        "/api/docs/static/0/swagger-ui.css",
    ],
)
async def test_files_outside_the_assets_are_not_found(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "root:" not in response.text
