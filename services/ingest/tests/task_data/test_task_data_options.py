"""Task creation options end to end: a video cut by start/stop/step, chunks made on
request and evicted, and who may read a task's data.

The annotations service runs under uvicorn; ingest runs in-process. Video frames read
back at original quality are compared pixel for pixel with PyAV decoding the source at
the frame numbers the options select.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from tessera.devstack.testing import Enrol
from tessera.ingest.media.testing import frame_index, make_test_video
from tessera.ingest.testing import Fleet, client_with_token, png_bytes

# Original chunks of the cache test are ~25 kB (two 64x64 noise PNGs): two fit, three do not.
CACHE_BUDGET = 60_000


@pytest.fixture
def ingest_overrides() -> dict[str, Any]:
    """A chunk cache small enough to evict in a test."""
    return {"chunk_cache_bytes": CACHE_BUDGET}


def source_frames(path: Path, numbers: Iterable[int]) -> dict[int, NDArray[np.uint8]]:
    """Frames `numbers` of the video at `path` as PyAV decodes them (RGB), by number."""
    wanted = set(numbers)
    found: dict[int, NDArray[np.uint8]] = {}
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number in wanted:
                found[number] = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
    assert set(found) == wanted
    return found


def zip_images(data: bytes) -> list[tuple[str, NDArray[np.uint8]]]:
    """The entries of an image-set chunk: (name, RGB pixels), in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [
            (name, np.asarray(Image.open(io.BytesIO(archive.read(name))).convert("RGB")))
            for name in archive.namelist()
        ]


def mp4_frames(data: bytes) -> list[NDArray[np.uint8]]:
    """The decoded frames of an MP4 chunk (RGB)."""
    assert data[4:8] == b"ftyp", "not an MP4 file"
    with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
        return [
            np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
            for frame in container.decode(video=0)
        ]


async def media_keys(fleet: Fleet, task_id: int, under: str = "") -> list[str]:
    """Stored object keys under the task's media prefix (and `under` within it)."""
    storage = fleet.ingest.platform.storage
    prefix = f"tasks/{task_id}/media/{under}"
    return sorted([key async for key, _ in storage.list_keys(prefix)])


async def test_video_frame_range_and_step_select_source_frames(
    fleet: Fleet, tmp_path: Path
) -> None:
    video = make_test_video(tmp_path / "clip.mp4", 75, gop=10)  # 3 s at 25 fps
    task_id = await fleet.create_task(segment_size=8, overlap=2)
    request = await fleet.wait(
        await fleet.upload(
            task_id,
            {"clip.mp4": video.read_bytes()},
            start_frame=5,
            stop_frame=60,
            frame_filter="step = 3",  # stored as "step=3"
            chunk_size=6,
        )
    )
    assert request["status"] == "finished", request["message"]
    sources = list(range(5, 60, 3))  # 5, 8, ..., 59: 19 frames
    assert len(sources) == 19
    decoded = source_frames(video, sources)

    client = fleet.ingest.client
    meta = (await client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert (meta["size"], meta["chunk_size"]) == (19, 6)
    assert (meta["start_frame"], meta["stop_frame"], meta["frame_filter"]) == (5, 59, "step=3")
    assert [(f["name"], f["width"], f["height"]) for f in meta["frames"]] == [("clip.mp4", 64, 48)]
    task = (await fleet.annotations.get(f"/api/tasks/{task_id}")).json()
    assert (task["size"], task["mode"]) == (19, "interpolation")

    for number in range(4):  # chunks of 6, 6, 6 and 1 frames
        frames = list(range(number * 6, min(number * 6 + 6, 19)))
        original = await fleet.get_data(
            f"/api/tasks/{task_id}/data", type="chunk", number=number, quality="original"
        )
        # Original chunks are lossless MP4: they decode to exactly the source's frames.
        assert original.headers["content-type"] == "video/mp4"
        exact = mp4_frames(original.content)
        assert len(exact) == len(frames)
        for pixels, frame in zip(exact, frames, strict=True):
            assert np.array_equal(pixels, decoded[sources[frame]]), f"task frame {frame}"
        compressed = await fleet.get_data(f"/api/tasks/{task_id}/data", type="chunk", number=number)
        assert compressed.headers["content-type"] == "video/mp4"
        shown = [frame_index(pixels) for pixels in mp4_frames(compressed.content)]
        assert shown == [sources[frame] for frame in frames]

    single = await fleet.get_data(
        f"/api/tasks/{task_id}/data", type="frame", number=4, quality="original"
    )
    assert single.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(single.content))), decoded[17])

    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    by_start = sorted(jobs["results"], key=lambda j: j["start_frame"])
    assert [(j["start_frame"], j["stop_frame"]) for j in by_start] == [(0, 7), (6, 13), (12, 18)]
    first, second, last = (j["id"] for j in by_start)
    job_meta = (await client.get(f"/api/jobs/{second}/data/meta")).json()
    assert (job_meta["size"], job_meta["start_frame"], job_meta["stop_frame"]) == (8, 23, 44)
    # Job chunk 1 of the first job (task frames 6 and 7) is not a task chunk: made on request.
    partial = await fleet.get_data(
        f"/api/jobs/{first}/data", type="chunk", index=1, quality="original"
    )
    exact = mp4_frames(partial.content)
    assert len(exact) == 2
    assert np.array_equal(exact[0], decoded[sources[6]])
    assert np.array_equal(exact[1], decoded[sources[7]])
    # The last job's chunk 1 is task frame 18 alone, the same as task chunk 3.
    tail = await fleet.get_data(f"/api/jobs/{last}/data", type="chunk", index=1)
    assert [frame_index(p) for p in mp4_frames(tail.content)] == [sources[18]]


async def test_video_with_zip_chunks_compresses_to_jpeg(fleet: Fleet, tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "short.mkv", 20, gop=5)
    task_id = await fleet.create_task()
    request = await fleet.wait(
        await fleet.upload(
            task_id, {"short.mkv": video.read_bytes()}, use_zip_chunks=True, chunk_size=8
        )
    )
    assert request["status"] == "finished", request["message"]
    meta = (await fleet.ingest.client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert (meta["size"], meta["start_frame"], meta["stop_frame"]) == (20, 0, 19)
    for number, frames in enumerate((range(0, 8), range(8, 16), range(16, 20))):
        chunk = await fleet.get_data(f"/api/tasks/{task_id}/data", type="chunk", number=number)
        assert chunk.headers["content-type"] == "application/zip"
        entries = zip_images(chunk.content)
        assert [name for name, _ in entries] == [f"{i:06d}.jpeg" for i in range(len(frames))]
        assert [frame_index(pixels) for _, pixels in entries] == list(frames)
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    assert [(j["start_frame"], j["stop_frame"]) for j in jobs["results"]] == [(0, 19)]


def noise_png(seed: int) -> bytes:
    """A 64x64 PNG of random pixels (~12 kB: PNG cannot shrink it)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_cached_chunks_are_made_on_request_and_evicted_lru(fleet: Fleet) -> None:
    files = {f"n{i}.png": noise_png(i) for i in range(6)}
    task_id = await fleet.create_task()
    request = await fleet.wait(
        await fleet.upload(task_id, files, use_cache=True, chunk_size=2, sorting_method="natural")
    )
    assert request["status"] == "finished", request["message"]
    assert await media_keys(fleet, task_id, "chunks/") == []
    names = sorted(files)

    async def original(number: int) -> bytes:
        response = await fleet.get_data(
            f"/api/tasks/{task_id}/data", type="chunk", number=number, quality="original"
        )
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            assert [archive.read(n) for n in archive.namelist()] == [
                files[n] for n in names[number * 2 : number * 2 + 2]
            ]
        return response.content

    def stored(*numbers: int) -> list[str]:
        return [f"tasks/{task_id}/media/chunks/original/{n:06d}.zip" for n in numbers]

    first = await original(0)
    assert CACHE_BUDGET // 3 < len(first) < CACHE_BUDGET // 2
    assert await media_keys(fleet, task_id, "chunks/") == stored(0)
    storage = fleet.ingest.platform.storage
    assert await storage.get(stored(0)[0]) == first
    await original(1)
    assert await media_keys(fleet, task_id, "chunks/") == stored(0, 1)
    await original(2)  # three do not fit: the least recently used (0) goes
    assert await media_keys(fleet, task_id, "chunks/") == stored(1, 2)
    await original(1)  # now 2 is the least recently used
    assert await original(0) == first  # made again, the same bytes
    assert await media_keys(fleet, task_id, "chunks/") == stored(0, 1)
    compressed = await fleet.get_data(f"/api/tasks/{task_id}/data", type="chunk", number=2)
    with zipfile.ZipFile(io.BytesIO(compressed.content)) as archive:
        assert archive.namelist() == ["000000.jpeg", "000001.jpeg"]


async def test_only_the_owner_and_the_organization_read_task_data(
    fleet: Fleet, enrol: Enrol, annotations_url: str
) -> None:
    alice, mary, eve = [await enrol(fleet.ingest, n) for n in ("alice", "mary", "eve")]
    lab = {"X-Organization": "lab"}

    async with (
        client_with_token(annotations_url, alice.token) as as_alice,
        client_with_token(annotations_url, mary.token) as as_mary,
    ):
        org = await as_alice.post("/api/organizations", json={"slug": "lab"})
        assert org.status_code == 201, org.text
        invited = await as_alice.post(
            "/api/invitations", json={"role": "supervisor", "email": "mary@example.com"},
            headers=lab,
        )  # fmt: skip
        assert invited.status_code == 201, invited.text
        accepted = await as_mary.post(f"/api/invitations/{invited.json()['key']}/accept")
        assert accepted.status_code == 200, accepted.text
        made = await as_alice.post(
            "/api/tasks", json={"name": "t", "labels": [{"name": "car"}]}, headers=lab
        )
        assert made.status_code == 201, made.text
    task_id = made.json()["id"]
    request = await fleet.wait(await fleet.upload(task_id, {"a.png": png_bytes(1)}))
    assert request["status"] == "finished", request["message"]
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    job_id = jobs["results"][0]["id"]

    reads: list[tuple[str, dict[str, Any]]] = [
        (f"/api/tasks/{task_id}/data/meta", {}),
        (f"/api/tasks/{task_id}/data", {"type": "frame", "number": 0}),
        (f"/api/tasks/{task_id}/data", {"type": "chunk", "number": 0}),
        (f"/api/jobs/{job_id}/data/meta", {}),
        (f"/api/jobs/{job_id}/data", {"type": "chunk", "index": 0}),
    ]
    for path, params in reads:
        for member in (alice, mary):
            seen = await member.client.get(path, params=params, headers=lab)
            assert seen.status_code == 200, (member.username, path)
        for headers in ({}, lab):
            stranger = await eve.client.get(path, params=params, headers=headers)
            assert stranger.status_code == 404, (headers, path)
        anonymous = await fleet.ingest.anonymous.get(path, params=params)
        assert anonymous.status_code == 401, path
