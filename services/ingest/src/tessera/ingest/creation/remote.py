"""Fetching `remote_files` without letting a URL reach inside the network (SSRF).

A URL's host is resolved and every address it resolves to must be public: loopback,
private, link-local (cloud metadata endpoints live there), multicast, reserved and
unspecified addresses are refused unless configuration allows their network. The
address the connection actually reached is checked again before the body is read (a
name that resolves differently the second time gains nothing), each redirect is checked
as a new URL, and size and time are limited.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from urllib.parse import unquote, urljoin

import httpx

from tessera.ingest.config import IngestSettings
from tessera.ingest.media.errors import MediaError

MAX_REDIRECTS = 5
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _name_of(url: str) -> str:
    path = unquote(httpx.URL(url).path)
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not name or name in (".", ".."):
        raise MediaError(url, "the URL does not end with a file name")
    return name


def _is_internal(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _check_address(url: str, raw: str, settings: IngestSettings) -> None:
    address = ipaddress.ip_address(raw.split("%", 1)[0])
    allowed = any(address in ipaddress.ip_network(net) for net in settings.remote_allowed_networks)
    if _is_internal(address) and not allowed:
        raise MediaError(url, f"refused: its host resolves to the internal address {address}")


async def _check_host(url: str, settings: IngestSettings) -> None:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise MediaError(url, "only http and https URLs can be fetched")
    if not parsed.host:
        raise MediaError(url, "the URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parsed.host, port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise MediaError(url, f"its host does not resolve ({exc.strerror})") from exc
    for info in infos:
        _check_address(url, str(info[4][0]), settings)


async def fetch_remote(url: str, target: Path, settings: IngestSettings) -> str:
    """Download `url` into `target` under the file name its path ends with; that name."""
    name = _name_of(url)
    current = url
    timeout = httpx.Timeout(settings.remote_timeout_s)
    async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as http:
        for _ in range(MAX_REDIRECTS + 1):
            await _check_host(current, settings)
            try:
                async with asyncio.timeout(settings.remote_timeout_s):
                    async with http.stream("GET", current) as response:
                        stream = response.extensions.get("network_stream")
                        peer = stream.get_extra_info("server_addr") if stream else None
                        if peer:
                            _check_address(url, str(peer[0]), settings)
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
