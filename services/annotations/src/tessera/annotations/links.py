"""Absolute URLs to API resources, as CVAT puts them in its responses."""

from typing import Any
from urllib.parse import urlencode

from fastapi import Request


def api_url(request: Request, path: str, **query: Any) -> str:
    """`{base}/api/{path}`, with `query` as its query string."""
    url = f"{str(request.base_url).rstrip('/')}/api/{path}"
    return f"{url}?{urlencode(query)}" if query else url
