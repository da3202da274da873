"""`IngestClient.video_frames` against a stand-in ingest: the request it sends, the records
it reads across any chunking, and a stream that breaks its promise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tessera.platform.clients.ingest import IngestClient
from tessera.platform.contracts.ingest import FRAME_RECORD, VIDEO_FRAMES_MEDIA_TYPE
from tessera.platform.errors import Problem


def _record(number: int, image: bytes) -> bytes:
    return FRAME_RECORD.pack(number, len(image)) + image


def _client(answer: Callable[[httpx.Request], httpx.Response]) -> IngestClient:
    client = IngestClient("http://ingest", "service-token")
    client._http = httpx.AsyncClient(
        base_url="http://ingest", transport=httpx.MockTransport(answer)
    )
    return client


def _streamed(body: bytes, piece: int) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), piece):
            yield body[start : start + piece]

    return httpx.Response(200, content=chunks(), headers={"content-type": VIDEO_FRAMES_MEDIA_TYPE})


async def _read(client: IngestClient, numbers: list[int]) -> list[tuple[int, bytes]]:
    try:
        return [item async for item in client.video_frames(7, numbers, image_format="jpeg")]
    finally:
        await client.close()


@pytest.mark.parametrize("piece", [1, 5, 1000])
async def test_records_are_read_whatever_the_chunks(piece: int) -> None:
    sent: list[httpx.Request] = []
    images = {0: b"zero", 1: b"", 2: b"two!" * 50, 5: b"five"}

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return _streamed(b"".join(_record(n, image) for n, image in images.items()), piece)

    assert await _read(_client(answer), [0, 1, 2, 5]) == list(images.items())
    (request,) = sent
    assert (request.method, request.url.path) == ("POST", "/api/internal/tasks/7/frames")
    assert request.headers["authorization"] == "Bearer service-token"
    assert json.loads(request.content) == {
        "ranges": [[0, 2], [5, 5]], "format": "jpeg", "quality": None
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_record(0, b"zero") + _record(1, b"one")[:-1], "within a frame"),
        (_record(0, b"zero"), "before frame 1"),
        (_record(1, b"one"), "frame 1 out of turn"),
    ],
)
async def test_a_stream_that_breaks_its_promise_is_a_failure_of_ingest(
    body: bytes, words: str
) -> None:
    with pytest.raises(Problem) as raised:
        await _read(_client(lambda _: _streamed(body, 3)), [0, 1])
    assert raised.value.status == 502
    assert words in raised.value.detail


async def test_a_refusal_raises_as_ingest_answered_it() -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Task 7 has no data yet."})

    with pytest.raises(Problem) as raised:
        await _read(_client(answer), [0])
    assert (raised.value.status, raised.value.detail) == (404, "Task 7 has no data yet.")
