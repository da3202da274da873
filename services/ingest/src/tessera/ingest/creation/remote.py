"""Fetching `remote_files` without letting a URL reach inside the network (SSRF).

Every URL, redirects included, passes `tessera.platform.egress`'s checks, the address
the connection actually reached is checked again before the body is read, and size and
time are limited.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urljoin

import httpx

from tessera.ingest.config import IngestSettings
from tessera.ingest.media.errors import MediaError
from tessera.platform.egress import EgressRefused, check_address, check_public_url

MAX_REDIRECTS = 5


def _name_of(url: str) -> str:
    path = unquote(httpx.URL(url).path)
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not name or name in (".", ".."):
        raise MediaError(url, "the URL does not end with a file name")
    return name


async def _check_url(url: str, current: str, settings: IngestSettings) -> None:
    try:
        await check_public_url(current, settings.remote_allowed_networks)
    except EgressRefused as exc:
        raise MediaError(url, str(exc)) from exc


async def fetch_remote(url: str, target: Path, settings: IngestSettings) -> str:
    """Download `url` into `target` under the file name its path ends with; that name."""
    name = _name_of(url)
    current = url
    timeout = httpx.Timeout(settings.remote_timeout_s)
    async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as http:
        for _ in range(MAX_REDIRECTS + 1):
            await _check_url(url, current, settings)
            try:
                async with asyncio.timeout(settings.remote_timeout_s):
                    async with http.stream("GET", current) as response:
                        stream = response.extensions.get("network_stream")
                        peer = stream.get_extra_info("server_addr") if stream else None
                        if peer:
                            try:
                                check_address(str(peer[0]), settings.remote_allowed_networks)
                            except EgressRefused as exc:
                                raise MediaError(url, str(exc)) from exc
                        if response.is_redirect and "location" in response.headers:
                            current = urljoin(current, response.headers["location"])
                            continue
                        if response.status_code != 200:
                            raise MediaError(
                                url, f"the server answered HTTP {response.status_code}"
                            )
                        await _save(url, response, target / name, settings.remote_max_bytes)
                        return name
            except TimeoutError as exc:
                raise MediaError(
                    url, f"no complete answer in {settings.remote_timeout_s} s"
                ) from exc
            except httpx.HTTPError as exc:
                raise MediaError(
                    url, f"could not be fetched ({type(exc).__name__}: {exc})"
                ) from exc
    raise MediaError(url, f"more than {MAX_REDIRECTS} redirects")


async def _save(url: str, response: httpx.Response, path: Path, limit: int) -> None:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise MediaError(url, f"is {declared} bytes, over the limit of {limit}")
    size = 0
    with path.open("wb") as file:
        async for block in response.aiter_bytes(1 << 20):
            size += len(block)
            if size > limit:
                raise MediaError(url, f"is over the limit of {limit} bytes")
            file.write(block)
