"""Running a creation step's many small jobs at once, all or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def all_or_cancel(jobs: Iterable[Awaitable[T]]) -> list[T]:
    """The results of `jobs`, run at once, in order. When one fails, the others are
    cancelled and awaited before its error is raised, so none outlives the step (and the
    clients it uses); `asyncio.gather` alone would leave them running."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
