"""all_or_cancel: results in order, and no job outlives a failed step."""

from __future__ import annotations

import asyncio

import pytest

from tessera.ingest.creation.together import all_or_cancel


async def test_results_come_in_the_order_of_the_jobs() -> None:
    async def late(value: int) -> int:
        await asyncio.sleep(0.01 * (3 - value))
        return value

    assert await all_or_cancel(late(i) for i in range(3)) == [0, 1, 2]


async def test_a_failure_cancels_and_awaits_the_other_jobs() -> None:
    finished: list[str] = []
    cancelled: list[str] = []

    async def slow(name: str) -> None:
        try:
            await asyncio.sleep(10)
            finished.append(name)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async def failing() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("broken.png")

    with pytest.raises(ValueError, match=r"broken\.png"):
        await all_or_cancel([slow("a"), failing(), slow("b")])
    assert (sorted(cancelled), finished) == (["a", "b"], [])
