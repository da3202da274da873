"""Writing a zip archive straight into an S3 multipart upload, with flat memory.

Writers are `zipfile` users, and `zipfile` writes synchronously; an upload is async. So
the archive is written on a thread of its own, with an event loop of its own, while the
service's loop uploads the bytes: the thread's writes are cut into blocks and handed over
a bounded queue (a writer that outpaces the upload waits), and whatever the writer needs
from the service's loop (the next frame of the snapshot, an image from ingest) it asks
for through a `Bridge`. Memory stays at a few blocks whatever the archive's size.

A failure on either side stops both: the thread's error is raised here once its last
block was taken (the archive is then incomplete and the caller aborts the upload); an
error or cancellation here stops the thread at its next write or bridge call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import queue
import threading
import zipfile
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from tessera.export.model import Dataset, FrameAnnotations, TaskInfo
from tessera.platform.storage import MultipartUpload

BLOCK_BYTES = 8 * 2**20
QUEUED_BLOCKS = 2
_POLL_S = 0.2
_JOIN_S = 30.0

T = TypeVar("T")
Fill = Callable[[zipfile.ZipFile, "Bridge"], Coroutine[Any, Any, None]]


class ArchiveAborted(Exception):
    """The upload side stopped; the archive's thread gives up."""


class Bridge:
    """Runs coroutines on the service's loop for the archive's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._aborted = threading.Event()
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()

    @property
    def aborted(self) -> bool:
        """Whether the upload side has stopped."""
        return self._aborted.is_set()

    def abort(self) -> None:
        """Stop the thread: its pending calls are cancelled, its next ones refused."""
        self._aborted.set()
        with self._lock:
            for future in self._pending:
                future.cancel()

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await `coroutine` on the service's loop (from the archive's thread)."""
        if self.aborted:
            coroutine.close()
            raise ArchiveAborted
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        with self._lock:
            self._pending.add(future)
        try:
            return await asyncio.wrap_future(future)
        finally:
            with self._lock:
                self._pending.discard(future)

    def dataset(self, source: Dataset) -> Dataset:
        """`source` (read on the service's loop) as a dataset the thread's writer reads."""
        return _BridgedDataset(self, source)


class _BridgedDataset:
    def __init__(self, bridge: Bridge, source: Dataset) -> None:
        self._bridge = bridge
        self._source = source

    @property
    def task(self) -> TaskInfo:
        return self._source.task

    async def frames(self) -> AsyncIterator[FrameAnnotations]:
        frames = aiter(self._source.frames())

        async def following() -> FrameAnnotations | None:
            return await anext(frames, None)

        while (item := await self._bridge.call(following())) is not None:
            yield item


class _Sink(io.RawIOBase):
    """A write-only, unseekable file that hands its bytes over in blocks."""

    def __init__(self, blocks: queue.Queue[bytes | None], bridge: Bridge) -> None:
        super().__init__()
        self._blocks = blocks
        self._bridge = bridge
        self._buffer = bytearray()
        self.discarding = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.discarding:  # a failed archive's remains (zipfile closes itself when freed)
            return len(data)
        self._buffer += data
        while len(self._buffer) >= BLOCK_BYTES:
            self.hand_over(bytes(self._buffer[:BLOCK_BYTES]))
            del self._buffer[:BLOCK_BYTES]
        return len(data)

    def flush(self) -> None:
        if not self.discarding:  # a failed archive's remains may be flushed after close
            super().flush()

    def flush_rest(self) -> None:
        if self._buffer:
            self.hand_over(bytes(self._buffer))
            self._buffer.clear()

    def hand_over(self, block: bytes | None) -> None:
        """Queue a block (None: the end), waiting while the queue is full."""
        while not self._bridge.aborted:
            try:
                self._blocks.put(block, timeout=_POLL_S)
                return
            except queue.Full:
                continue
        raise ArchiveAborted


async def stream_archive(upload: MultipartUpload, fill: Fill, *, compresslevel: int = 1) -> None:
    """Write an archive into `upload`: `fill(archive, bridge)` writes its members, on the
    archive's thread; `bridge.dataset(...)` and `bridge.call(...)` reach this loop.

    Returns once the archive is complete and every byte was written to `upload`; raises
    what `fill` raised (the archive is then incomplete: abort the upload).
    """
    blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_BLOCKS)
    bridge = Bridge(asyncio.get_running_loop())
    failure: list[BaseException] = []

    def work() -> None:
        sink = _Sink(blocks, bridge)
        archive: zipfile.ZipFile | None = None
        try:
            archive = zipfile.ZipFile(
                sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel
            )
            asyncio.run(fill(archive, bridge))
            archive.close()  # the central directory: only for a complete archive
            sink.flush_rest()
        except BaseException as exc:  # handed to the loop, raised there
            sink.discarding = True
            if archive is not None:
                # Nothing more of it is written: without this, the ZipFile would write its
                # end record when collected (and fail on the sink, closed by then).
                archive.fp = None
            failure.append(exc)
        finally:
            with contextlib.suppress(ArchiveAborted):
                sink.hand_over(None)

    thread = threading.Thread(target=work, name="export-archive", daemon=True)
    thread.start()
    try:
        while (block := await asyncio.to_thread(blocks.get)) is not None:
            await upload.write(block)
    except BaseException:
        bridge.abort()
        with contextlib.suppress(queue.Full):
            blocks.put_nowait(None)  # wakes the executor thread still waiting for a block
        raise
    finally:
        await asyncio.shield(asyncio.to_thread(thread.join, _JOIN_S))
    if failure:
        raise failure[0]
