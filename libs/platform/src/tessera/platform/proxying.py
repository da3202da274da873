"""How a service sees requests that reached it through the gateway or an ingress.

CVAT's paths end in a slash (`/api/tasks/`) and its clients send them that way; a
redirect to the slashless form would name the service's own address, which a client
behind the gateway cannot reach (and an HTTP client drops `Authorization` when it
follows a redirect to another host). `TrailingSlashMiddleware` therefore serves both
forms from one route, without redirecting.

Absolute URLs in responses (`url`, `next`, TUS `Location`, ...) must name the address
the client used. The proxy in front passes it in `Host`, `X-Forwarded-Host` and
`X-Forwarded-Proto`; `ForwardedHeadersMiddleware` believes those headers only from
the proxies it is told to trust, and removes them from every other request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

FORWARDED_FOR = b"x-forwarded-for"
FORWARDED_HOST = b"x-forwarded-host"
FORWARDED_PROTO = b"x-forwarded-proto"
FORWARDED_HEADERS = frozenset({FORWARDED_FOR, FORWARDED_HOST, FORWARDED_PROTO, b"forwarded"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrailingSlashMiddleware:
    """Routes `/a/b/` as `/a/b`, so both forms answer the same and nothing redirects."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] in ("http", "websocket") and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
            raw_path = scope.get("raw_path")
            if raw_path:
                scope["raw_path"] = raw_path.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


def public_url(request: Request, path: str) -> str:
    """`path` (starting with `/`) as an absolute URL on the address the client used."""
    return f"{str(request.base_url).rstrip('/')}{path}"


def parse_networks(values: Iterable[str]) -> list[Network]:
    """Addresses and CIDR blocks (`127.0.0.1`, `10.0.0.0/8`, `::1`) as networks."""
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values]


def _is_trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _last(value: bytes) -> str:
    """The entry the nearest proxy added to a comma-separated header."""
    return value.decode("latin-1").rsplit(",", 1)[-1].strip()


class ForwardedHeadersMiddleware:
    """Takes the client's scheme, host and address from trusted proxies' headers.

    From a peer in `trusted`: `X-Forwarded-Proto` becomes the scheme, `X-Forwarded-Host`
    the `Host` header, and the client address is the nearest untrusted one in
    `X-Forwarded-For`. From any other peer the forwarded headers are dropped, so no code
    further in can be misled by them.
    """

    def __init__(self, app: ASGIApp, *, trusted: Iterable[str]) -> None:
        self.app = app
        self.networks = parse_networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer_trusted = client is not None and _is_trusted(client[0], self.networks)
        forwarded: dict[bytes, bytes] = {}
        headers: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name in FORWARDED_HEADERS:
                forwarded[name] = forwarded[name] + b"," + value if name in forwarded else value
            else:
                headers.append((name, value))
        if not peer_trusted:
            if forwarded:
                scope = {**scope, "headers": headers}
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        if FORWARDED_PROTO in forwarded:
            proto = _last(forwarded[FORWARDED_PROTO]).lower()
            if proto in ("http", "https"):
                is_websocket = scope["type"] == "websocket"
                scope["scheme"] = {"http": "ws", "https": "wss"}[proto] if is_websocket else proto
        if FORWARDED_HOST in forwarded and _last(forwarded[FORWARDED_HOST]):
            host = _last(forwarded[FORWARDED_HOST]).encode("latin-1")
            headers = [(n, v) for n, v in headers if n != b"host"] + [(b"host", host)]
        if FORWARDED_FOR in forwarded:
            hops = [hop.strip() for hop in forwarded[FORWARDED_FOR].decode("latin-1").split(",")]
            for hop in reversed([hop for hop in hops if hop]):
                if not _is_trusted(hop, self.networks):
                    scope["client"] = (hop, 0)
                    break
        scope["headers"] = [*headers, *forwarded.items()]
        await self.app(scope, receive, send)
