"""Swagger UI for the merged API document, with its scripts and styles served by the gateway.

The fleet runs where no CDN can be reached, so the page takes Swagger UI's files from the
`fastapi-offline` wheel. They are served under `/api/docs/static/<package version>/`, so a
new version gets new URLs and browsers may cache each file for good.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from importlib.resources import files

from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from tessera.platform.errors import NotFound

DOCS_PATH = "/api/docs"
"""The page; the gateway also answers every path below it (the assets, a trailing slash)."""

STATIC_PREFIX = f"static/{version('fastapi-offline')}/"
"""Where the assets live, relative to `DOCS_PATH`."""

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
"""The files of the package's `static` folder that the page uses, with their media types."""

CACHE_CONTROL = "public, max-age=31536000, immutable"


def swagger_ui_page(openapi_url: str) -> HTMLResponse:
    """The Swagger UI page for the document at `openapi_url`, with same-origin assets only."""
    base = f"{DOCS_PATH}/{STATIC_PREFIX}"
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title="Tessera API",
        swagger_js_url=base + "swagger-ui-bundle.js",
        swagger_css_url=base + "swagger-ui.css",
        swagger_favicon_url=base + "favicon.png",
        # No badge from Swagger's online validator, which is off the gateway.
        swagger_ui_parameters={"validatorUrl": None},
    )


@cache
def _read(name: str) -> bytes:
    return (files("fastapi_offline") / "static" / name).read_bytes()


def swagger_ui_asset(path: str) -> Response:
    """The asset at `path` (relative to `DOCS_PATH`); 404 for anything not in `ASSETS`."""
    name = path.removeprefix(STATIC_PREFIX)
    if name == path or name not in ASSETS:
        raise NotFound(f"There is no documentation file {path!r}.")
    return Response(_read(name), media_type=ASSETS[name], headers={"Cache-Control": CACHE_CONTROL})
