"""Frames from many concurrent callers, sent to Triton in batches.

    batcher = FrameBatcher(client, "ppocr_v4_det")
    result = await batcher.infer({"images": frame})   # one frame: uint8 [H, W, 3]
    result["probability"]                              # its output: uint8 [H, W]
    await batcher.aclose()

Each caller hands over one item (its tensors without the batch axis) and waits. A
dispatcher takes the oldest waiting item and every other waiting item of the same
shapes, up to the model's `max_batch_size` (from Triton's configuration, or lower if
asked), waits at most `linger_s` for more when the batch is not full, sends them as one
request, and hands each caller its slice of the outputs. Items of different shapes go in
different requests (a tensor has one shape). At most `max_in_flight` requests are out at
once; while they are, new items keep gathering, so batches grow with the load. A failed
request fails each of its callers with the same error; a caller that gives up (its task
is cancelled) is left out of the batch if it has not been sent yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tessera.inference.triton.client import TritonClient
from tessera.inference.triton.errors import TritonError

ShapeKey = tuple[tuple[str, tuple[int, ...], str], ...]


@dataclass
class _Item:
    inputs: Mapping[str, np.ndarray]
    key: ShapeKey
    future: asyncio.Future[dict[str, np.ndarray]]
    enqueued: float


@dataclass
class BatcherStats:
    """Requests sent and items carried (items / requests: the mean batch size)."""

    requests: int = 0
    items: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)


class FrameBatcher:
    """Gathers single items from concurrent callers into batched Triton requests."""

    def __init__(
        self,
        client: TritonClient,
        model: str,
        *,
        version: str = "",
        outputs: Sequence[str] | None = None,
        max_batch_size: int | None = None,
        linger_s: float = 0.005,
        max_in_flight: int = 2,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.client = client
        self.model = model
        self.version = version
        self.outputs = list(outputs) if outputs is not None else None
        self.requested_max_batch_size = max_batch_size
        self.linger_s = linger_s
        self.max_in_flight = max_in_flight
        self.stats = BatcherStats()
        self._pending: list[_Item] = []
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._dispatcher: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._max_batch_size: int | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Items waiting to be sent (a queue depth, for metrics)."""
        return sum(1 for item in self._pending if not item.future.done())

    async def max_batch_size(self) -> int:
        """The largest batch this batcher sends: the model's, or the lower one asked for."""
        if self._max_batch_size is None:
            info = await self.client.model(self.model, self.version)
            if not info.batches:
                raise ValueError(f"model {self.model!r} does not batch (max_batch_size 0)")
            limit = info.max_batch_size
            if self.requested_max_batch_size is not None:
                limit = max(1, min(limit, self.requested_max_batch_size))
            self._max_batch_size = limit
        return self._max_batch_size

    async def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs for one item (tensors without the batch axis)."""
        if self._closed:
            raise RuntimeError("the batcher is closed")
        await self.max_batch_size()  # the model must be ready before anything waits
        key: ShapeKey = tuple(
            (name, tuple(array.shape), array.dtype.str) for name, array in sorted(inputs.items())
        )
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Item(inputs, key, future, time.monotonic()))
        self._arrived.set()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name=f"batcher-{self.model}")
            self._dispatcher.add_done_callback(self._dispatcher_ended)
        return await future

    def _dispatcher_ended(self, task: asyncio.Task[None]) -> None:
        """A dispatcher that died must not leave callers waiting forever."""
        error = None if task.cancelled() else task.exception()
        if error is None:
            return
        for item in self._pending:
            if not item.future.done():
                item.future.set_exception(error)
        self._pending.clear()

    async def _dispatch(self) -> None:
        limit = await self.max_batch_size()
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            await self._slots.acquire()
            try:
                batch = await self._gather(limit)
            except BaseException:
                self._slots.release()
                raise
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _gather(self, limit: int) -> list[_Item]:
        """The next batch: the oldest item's shape group, after lingering for more."""
        self._pending = [item for item in self._pending if not item.future.done()]
        if not self._pending:
            return []
        first = self._pending[0]
        deadline = first.enqueued + self.linger_s
        while sum(1 for item in self._pending if item.key == first.key) < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
        batch: list[_Item] = []
        rest: list[_Item] = []
        for item in self._pending:
            if item.future.done():
                continue
            if item.key == first.key and len(batch) < limit:
                batch.append(item)
            else:
                rest.append(item)
        self._pending = rest
        return batch

    async def _send(self, batch: list[_Item]) -> None:
        try:
            batch = [item for item in batch if not item.future.done()]
            if not batch:
                return
            stacked = {
                name: np.stack([item.inputs[name] for item in batch]) for name in batch[0].inputs
            }
            try:
                outputs = await self.client.infer(
                    self.model, stacked, version=self.version, outputs=self.outputs
                )
            except Exception as exc:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            self.stats.requests += 1
            self.stats.items += len(batch)
            self.stats.batch_sizes[len(batch)] = self.stats.batch_sizes.get(len(batch), 0) + 1
            for index, item in enumerate(batch):
                if not item.future.done():
                    item.future.set_result({name: value[index] for name, value in outputs.items()})
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Stop taking items, let the requests already sent finish, fail the waiting ones."""
        self._closed = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        for item in self._pending:
            if not item.future.done():
                item.future.set_exception(TritonError("the batcher was closed before sending"))
        self._pending.clear()
