"""Checks before a service connects to a URL a user gave (SSRF protection).

A URL's host is resolved and every address it resolves to must be public: loopback,
private, link-local (cloud metadata endpoints live there), multicast, reserved and
unspecified addresses are refused unless configuration allows their network. Callers
check the address a connection actually reached too (`check_address`), so a name that
resolves differently the second time gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressRefused(ValueError):
    """The URL may not be reached from the service; the message says why."""


def is_internal(address: Address) -> bool:
    """Whether an address is inside a network (not a public internet address)."""
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


def check_address(raw: str, allowed_networks: Sequence[str]) -> None:
    """EgressRefused if the address is internal and not in `allowed_networks`."""
    address = ipaddress.ip_address(raw.split("%", 1)[0])
    allowed = any(address in ipaddress.ip_network(net) for net in allowed_networks)
    if is_internal(address) and not allowed:
        raise EgressRefused(f"refused: its host resolves to the internal address {address}")


def endpoint_of(url: str) -> str:
    """`host:port` of an http(s) URL, the port spelt out (`http://h` is `h:80`)."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"{parsed.host}:{port}"


async def check_public_url(
    url: str, allowed_networks: Sequence[str], allowed_endpoints: Sequence[str] = ()
) -> None:
    """EgressRefused unless `url` is http(s) and every address of its host is public (or
    in `allowed_networks`), or its `host:port` is one of `allowed_endpoints` (a single
    internal server allowed by name, rather than its whole network and every port)."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise EgressRefused("only http and https URLs can be reached")
    if not parsed.host:
        raise EgressRefused("the URL has no host")
    if endpoint_of(url) in allowed_endpoints:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parsed.host, port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise EgressRefused(f"its host does not resolve ({exc.strerror})") from exc
    for info in infos:
        check_address(str(info[4][0]), allowed_networks)
