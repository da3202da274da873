"""The internal stream of a video task's frames (`POST /api/internal/tasks/{id}/frames`):
the frames asked for, in order, mapped through the task's start, stop and step, encoded
as asked, and only for the service token.

Ingest runs in-process, the annotations service under uvicorn. PNG frames are compared
pixel for pixel with PyAV decoding the source; lossy ones by their marks.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from tessera.devstack.testing import Enrol
from tessera.ingest.media.testing import frame_index, make_test_video
from tessera.ingest.testing import Fleet, png_bytes
from tessera.platform.contracts.ingest import (
    FRAME_RECORD,
    VIDEO_FRAMES_MEDIA_TYPE,
    VIDEO_FRAMES_PATH,
)

SOURCES = list(range(2, 29, 3))  # start 2, stop 28, step 3: video frames 2, 5, ..., 26


@pytest.fixture
async def video_task(fleet: Fleet, tmp_path: Path) -> tuple[int, Path]:
    """A task of frames 2, 5, ..., 26 of a 40-frame video (9 frames), and the video."""
    video = make_test_video(tmp_path / "clip.mp4", 40, gop=10)
    task_id = await fleet.create_task()
    request = await fleet.wait(
        await fleet.upload(
            task_id, {"clip.mp4": video.read_bytes()}, start_frame=2, stop_frame=28,
            frame_filter="step=3",
        )
    )  # fmt: skip
    assert request["status"] == "finished", request["message"]
    return task_id, video


def decoded(path: Path) -> list[NDArray[np.uint8]]:
    """Every frame of the video at `path` as PyAV decodes it (RGB)."""
    with av.open(str(path)) as container:
        return [np.asarray(frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]


def records(body: bytes) -> list[tuple[int, bytes]]:
    """The `(number, image)` records of a video frames stream."""
    found, offset = [], 0
    while offset < len(body):
        number, length = FRAME_RECORD.unpack_from(body, offset)
        offset += FRAME_RECORD.size
        found.append((number, body[offset : offset + length]))
        offset += length
    assert offset == len(body), "a record is cut short"
    return found


async def stream(client: httpx.AsyncClient, task_id: int, **body: Any) -> httpx.Response:
    """POST the request `body` for the task's frames."""
    return await client.post(VIDEO_FRAMES_PATH.format(task_id=task_id), json=body)


async def test_frames_come_in_order_mapped_through_start_and_step(
    fleet: Fleet, video_task: tuple[int, Path]
) -> None:
    task_id, video = video_task
    source = decoded(video)

    response = await stream(fleet.ingest.client, task_id, ranges=[[0, 2], [5, 8]])

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == VIDEO_FRAMES_MEDIA_TYPE
    frames = records(response.content)
    assert [number for number, _ in frames] == [0, 1, 2, 5, 6, 7, 8]
    for number, data in frames:
        image = Image.open(io.BytesIO(data))
        assert (image.format, image.size) == ("PNG", (64, 48))
        assert np.array_equal(np.asarray(image), source[SOURCES[number]]), number

    one = records((await stream(fleet.ingest.client, task_id, ranges=[[4, 4]])).content)
    assert [number for number, _ in one] == [4]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(one[0][1]))), source[SOURCES[4]])


async def test_lossy_formats_and_their_quality(fleet: Fleet, video_task: tuple[int, Path]) -> None:
    task_id, _ = video_task
    every = [[0, 8]]
    sizes = {}
    for image_format, quality, pillow_format in (
        ("jpeg", 20, "JPEG"), ("jpeg", None, "JPEG"), ("jpeg", 100, "JPEG"), ("webp", 50, "WEBP"),
    ):  # fmt: skip
        response = await stream(
            fleet.ingest.client, task_id, ranges=every, format=image_format, quality=quality
        )
        assert response.status_code == 200, response.text
        frames = records(response.content)
        assert [number for number, _ in frames] == list(range(9))
        for number, data in frames:
            image = Image.open(io.BytesIO(data))
            assert (image.format, image.size) == (pillow_format, (64, 48))
            assert frame_index(np.asarray(image.convert("RGB"))) == SOURCES[number]
        sizes[image_format, quality] = sum(len(data) for _, data in frames)
    # The default quality (95) lies between: a higher quality keeps more of the frame.
    assert sizes["jpeg", 20] < sizes["jpeg", None] < sizes["jpeg", 100]


async def test_bad_requests_name_the_field(fleet: Fleet, video_task: tuple[int, Path]) -> None:
    task_id, _ = video_task
    client = fleet.ingest.client
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ranges": [[0, 1]], "quality": 90}, "body.quality"),  # png takes none
        ({"ranges": [[0, 1]], "format": "jpeg", "quality": 0}, "body.quality"),
        ({"ranges": [[0, 1]], "format": "jpeg", "quality": 101}, "body.quality"),
        ({"ranges": [[0, 1]], "format": "gif"}, "body.format"),
        ({"ranges": []}, "body.ranges"),
        ({"ranges": [[2, 1]]}, "body.ranges"),
        ({"ranges": [[0, 3], [3, 5]]}, "body.ranges"),  # overlapping
        ({"ranges": [[0, 3], [4, 5]]}, "body.ranges"),  # adjacent: one range
        ({"ranges": [[0, 9]]}, "body.ranges"),  # the task has frames 0..8
    ]
    for body, field in cases:
        response = await stream(client, task_id, **body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == field, (body, response.json())

    images = await fleet.create_task()
    made = await fleet.wait(await fleet.upload(images, {"a.png": png_bytes(1)}))
    assert made["status"] == "finished", made["message"]
    assert (await stream(client, images, ranges=[[0, 0]])).status_code == 400
    empty = await fleet.create_task()
    assert (await stream(client, empty, ranges=[[0, 0]])).status_code == 404


async def test_only_the_service_token_reads_the_stream(
    fleet: Fleet, enrol: Enrol, video_task: tuple[int, Path]
) -> None:
    task_id, _ = video_task
    alice = await enrol(fleet.ingest, "alice")
    refused = await stream(alice.client, task_id, ranges=[[0, 0]])
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    anonymous = await stream(fleet.ingest.anonymous, task_id, ranges=[[0, 0]])
    assert anonymous.status_code == 401
