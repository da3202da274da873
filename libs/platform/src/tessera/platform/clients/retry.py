"""Sending an idempotent request to another service again when it could not answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

RETRIED_STATUSES = (502, 503, 504)


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]], tries: int
) -> httpx.Response:
    """`send()` up to `tries` times (backing off 0.5 s, 1 s, ...) while the connection fails
    or the answer is 502, 503 or 504; the last answer, or the last connection error."""
    for attempt in range(tries):
        last = attempt + 1 == tries
        try:
            response = await send()
        except httpx.TransportError:
            if last:
                raise
        else:
            if response.status_code not in RETRIED_STATUSES or last:
                return response
        await asyncio.sleep(0.5 * 2**attempt)
    raise ValueError("tries must be at least 1")
