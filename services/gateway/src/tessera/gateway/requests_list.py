"""`GET /api/requests`: the caller's background requests of every service, as one list.

CVAT has one list of a user's background requests; in Tessera each service that starts
background work keeps its own (export: exports, imports and backups; ingest: task
creation; inference: auto-annotation), each at `/api/requests` with the same shape and
parameters (`tessera.platform.requests`): the caller's requests, newest first,
paginated as CVAT's lists, with CVAT's filters. The gateway answers this one path
itself and leaves the rest of `/api/requests/...` (a request's status, its
cancellation) to the routing table, which sends each to the service named in its id.

For page `p` of size `s`, each service is asked for its first `p * s` requests (every
one for `page_size=all`), following its `next` links should it give fewer per page,
with the caller's headers as the proxy forwards them (`Authorization`, cookies,
`X-Organization`, the client's address) and every other query parameter as it came
(the filters). The lists are merged newest first, each keeping its own order (so
requests created at the same instant stay in one order from page to page), and the
page is cut from the merge: `count` is the sum of the services' counts, `next` and
`previous` are on the address the client used.

A service that cannot be reached, or fails, makes the answer 503 naming it: a list
without its requests would look complete. A service's refusal (401 without a token,
400 for a malformed filter) is passed on as it came, before any 503: the caller must
change the request whatever the other services do.

CVAT's `sort` is not applied (the list is always newest first), nor its `org` filter:
the services ignore both.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tessera.gateway.proxy import forward_headers
from tessera.platform.errors import Problem
from tessera.platform.pagination import ALL, Page, PageParams

LIST_PATH = "/api/requests"
SERVICES = ("export", "ingest", "inference")
"""The services with background requests, in the order that breaks ties between them."""

PAGE_PARAMETERS = frozenset({"page", "page_size"})
REFUSAL_HEADERS = frozenset({"content-type", "www-authenticate"})


@dataclass(frozen=True)
class _Listed:
    """A service's first requests, and how many it has in all."""

    count: int
    results: list[dict[str, Any]]


@dataclass(frozen=True)
class _Failed:
    """A service that did not list: unreachable or failing (`refusal` None), or refusing."""

    service: str
    reason: str
    refusal: httpx.Response | None = None


async def _list_one(
    client: httpx.AsyncClient,
    service: str,
    base_url: str,
    *,
    headers: Sequence[tuple[str, str]],
    query: list[tuple[str, str]],
    wanted: int | None,
) -> _Listed | _Failed:
    """The first `wanted` requests (None: all) of one service, page after page."""
    url = httpx.URL(base_url).join(LIST_PATH)
    size = ALL if wanted is None else str(wanted)
    url = url.copy_with(params=[*query, ("page", "1"), ("page_size", size)])
    results: list[dict[str, Any]] = []
    while True:
        try:
            response = await client.get(url, headers=list(headers))
        except httpx.TimeoutException:
            return _Failed(service, "did not answer in time")
        except httpx.TransportError:
            return _Failed(service, "is not reachable")
        if response.status_code >= 500:
            return _Failed(service, f"answered {response.status_code}")
        if response.status_code != 200:
            return _Failed(service, f"refused ({response.status_code})", response)
        try:
            body = response.json()
            count, found, following = int(body["count"]), list(body["results"]), body["next"]
        except (ValueError, KeyError, TypeError):
            return _Failed(service, "answered a list that is not one")
        results += found
        if not following or not found or (wanted is not None and len(results) >= wanted):
            return _Listed(count, results if wanted is None else results[:wanted])
        # The link is on the client's address; its path and query are the service's.
        url = httpx.URL(base_url).join(httpx.URL(following).raw_path.decode("ascii"))


def _created(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["created_date"])


async def list_requests(
    client: httpx.AsyncClient, upstreams: dict[str, str], request: Request
) -> Response:
    """One page of the caller's requests of every service in `upstreams` (name: URL)."""
    params = PageParams.parse(
        request.query_params.get("page"), request.query_params.get("page_size")
    )
    wanted = None if params.page_size is None else params.offset + params.page_size
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in PAGE_PARAMETERS]
    headers = forward_headers(request)
    services = [service for service in SERVICES if service in upstreams]
    answers = await asyncio.gather(
        *(
            _list_one(
                client, service, upstreams[service], headers=headers, query=query, wanted=wanted
            )
            for service in services
        )
    )
    failed = [answer for answer in answers if isinstance(answer, _Failed)]
    refused = [answer.refusal for answer in failed if answer.refusal is not None]
    if refused:
        first = refused[0]
        return Response(
            first.content,
            status_code=first.status_code,
            headers={k: v for k, v in first.headers.items() if k.lower() in REFUSAL_HEADERS},
        )
    if failed:
        named = "; ".join(f"the {answer.service} service {answer.reason}" for answer in failed)
        raise Problem(
            503,
            f"The list of requests is incomplete: {named}.",
            extensions={"services": [answer.service for answer in failed]},
        )
    listed = [answer for answer in answers if isinstance(answer, _Listed)]
    merged = list(heapq.merge(*(one.results for one in listed), key=_created, reverse=True))
    end = None if params.page_size is None else params.offset + params.page_size
    page = Page[dict[str, Any]].build(
        request, params, sum(one.count for one in listed), merged[params.offset : end]
    )
    return JSONResponse(page.model_dump(mode="json"))
