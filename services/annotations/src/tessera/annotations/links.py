"""Absolute URLs to API resources, as CVAT puts them in its responses."""

from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from tessera.platform.proxying import public_url


def api_url(request: Request, path: str, **query: Any) -> str:
    """`{base}/api/{path}`, with `query` as its query string."""
    url = public_url(request, f"/api/{path}")
    return f"{url}?{urlencode(query)}" if query else url
