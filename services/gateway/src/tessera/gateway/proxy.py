"""Streaming reverse proxy: request and response bodies pass through without buffering."""

from __future__ import annotations

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tessera.platform.errors import Problem
from tessera.platform.telemetry import REQUEST_ID_HEADER, current_request_id

# RFC 9110 §7.6.1 connection-specific fields, plus those httpx recomputes.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
# Set afresh from what the gateway itself saw (ForwardedHeadersMiddleware has already
# taken a trusted proxy's values into the request and dropped anyone else's).
FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded"})
# Set again by the gateway's own server on the way out.
SERVER_SET = frozenset({"date", "server"})


def forward_headers(request: Request) -> list[tuple[str, str]]:
    """The request's headers for the service: `Host` as the client sent it, plus the
    client's address, host and scheme, from which the service builds absolute URLs."""
    headers = [
        (k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | FORWARDED
    ]
    if request.headers.get("content-length"):
        headers.append(("content-length", request.headers["content-length"]))
    if request.client:
        headers.append(("x-forwarded-for", request.client.host))
    headers.append(("x-forwarded-host", request.headers.get("host", request.url.netloc)))
    headers.append(("x-forwarded-proto", request.url.scheme))
    request_id = current_request_id()
    if request_id and REQUEST_ID_HEADER.lower() not in request.headers:
        headers.append((REQUEST_ID_HEADER, request_id))
    return headers


async def forward(
    client: httpx.AsyncClient, base_url: str, service: str, request: Request
) -> Response:
    """Send `request` to `base_url` and stream the answer back."""
    url = httpx.URL(base_url).join(request.url.path).copy_with(query=request.url.query.encode())
    has_body = request.method not in ("GET", "HEAD", "OPTIONS", "DELETE") or bool(
        request.headers.get("content-length") or request.headers.get("transfer-encoding")
    )
    upstream_request = client.build_request(
        request.method,
        url,
        headers=forward_headers(request),
        content=request.stream() if has_body else None,
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.TimeoutException as exc:
        raise Problem(504, f"The {service} service did not answer in time.") from exc
    except httpx.TransportError as exc:
        raise Problem(502, f"The {service} service is not reachable.") from exc
    dropped = (HOP_BY_HOP - {"content-length"}) | SERVER_SET
    headers = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in dropped]
    response = StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        background=BackgroundTask(upstream.aclose),
    )
    response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return response
