"""Segments and jobs of a created task, by CVAT's rules (`_generate_segment_params` in
cvat/apps/engine/task.py): a segment size of 0 (or over the task size) is the task size;
the overlap defaults to 5 for video and 0 otherwise and is clamped to half a segment; the
task shows the values used. And a creation redone after its jobs were made completes.

The annotations service runs under uvicorn; ingest runs in-process; files come from the
connected share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tessera.ingest.creation.runner import CreationRunner
from tessera.ingest.media.testing import make_test_video
from tessera.ingest.state import IngestState
from tessera.ingest.tables import task_media
from tessera.ingest.task_data.schemas import DataRequest
from tessera.ingest.task_data.service import CreationPlan
from tessera.ingest.testing import Fleet, png_bytes


def share_images(tmp_path: Path, count: int) -> list[str]:
    """`count` PNGs in the share's folder `set/`; their share paths."""
    folder = tmp_path / "share" / "set"
    folder.mkdir(exist_ok=True)
    for i in range(count):
        (folder / f"{i:02d}.png").write_bytes(png_bytes(i))
    return [f"set/{i:02d}.png" for i in range(count)]


async def created(fleet: Fleet, task_id: int, server_files: list[str]) -> dict[str, Any]:
    """Send the task's data from the share; the task once its jobs are made."""
    request = await fleet.send_data(task_id, server_files=server_files)
    assert request["status"] == "finished", request["message"]
    task: dict[str, Any] = (await fleet.annotations.get(f"/api/tasks/{task_id}")).json()
    return task


async def job_ranges(fleet: Fleet, task_id: int) -> list[tuple[int, int, int]]:
    """(id, start_frame, stop_frame) of the task's jobs, by start."""
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    return sorted(
        ((j["id"], j["start_frame"], j["stop_frame"]) for j in jobs["results"]),
        key=lambda job: job[1],
    )


@pytest.mark.parametrize(
    ("fields", "used", "ranges"),
    [
        ({}, (5, 0), [(0, 4)]),  # segment_size 0: one segment of the whole task
        ({"segment_size": 9, "overlap": 1}, (5, 1), [(0, 4)]),  # over the size: the size
        ({"segment_size": 4, "overlap": 5}, (4, 2), [(0, 3), (2, 4)]),  # clamped to 4 // 2
        ({"segment_size": 2}, (2, 0), [(0, 1), (2, 3), (4, 4)]),  # images: no overlap
    ],
)
async def test_images_store_the_segment_size_and_overlap_used(
    fleet: Fleet,
    tmp_path: Path,
    fields: dict[str, int],
    used: tuple[int, int],
    ranges: list[tuple[int, int]],
) -> None:
    task_id = await fleet.create_task(**fields)
    task = await created(fleet, task_id, share_images(tmp_path, 5))
    assert (task["size"], task["segment_size"], task["overlap"]) == (5, *used)
    assert [(a, b) for _, a, b in await job_ranges(fleet, task_id)] == ranges


@pytest.mark.parametrize(
    ("segment_size", "used", "ranges"),
    [
        (0, (20, 5), [(0, 19)]),  # the default overlap 5 of video, one segment
        (12, (12, 5), [(0, 11), (7, 18), (14, 19)]),
        (6, (6, 3), [(0, 5), (3, 8), (6, 11), (9, 14), (12, 17), (15, 19)]),  # 5 clamped
    ],
)
async def test_video_overlaps_by_5_frames_unless_told(
    fleet: Fleet,
    tmp_path: Path,
    segment_size: int,
    used: tuple[int, int],
    ranges: list[tuple[int, int]],
) -> None:
    make_test_video(tmp_path / "share" / "clip.mp4", 20, gop=5)
    task_id = await fleet.create_task(segment_size=segment_size)
    task = await created(fleet, task_id, ["clip.mp4"])
    assert (task["size"], task["mode"]) == (20, "interpolation")
    assert (task["segment_size"], task["overlap"]) == used
    assert [(a, b) for _, a, b in await job_ranges(fleet, task_id)] == ranges


async def test_a_creation_redone_after_its_jobs_were_made_completes(
    fleet: Fleet, tmp_path: Path
) -> None:
    files = share_images(tmp_path, 6)
    task_id = await fleet.create_task(segment_size=4, overlap=1)
    first = await fleet.send_data(task_id, server_files=files)
    assert first["status"] == "finished", first["message"]
    jobs = await job_ranges(fleet, task_id)
    assert [(a, b) for _, a, b in jobs] == [(0, 3), (3, 5)]
    # A replica died after the annotations service made the jobs and before the media
    # was marked ready: the queue gives the creation to another replica, which redoes it.
    platform = fleet.ingest.platform
    async with platform.database.transaction() as session:
        await session.execute(
            task_media.update().where(task_media.c.task_id == task_id).values(status="creating")
        )
        # its request was still running then (only an open request is run again)
        await session.execute(
            sa.text("UPDATE ingest.requests SET status = 'started' WHERE id = :id"),
            {"id": first["id"]},
        )
    state = fleet.ingest.app.state.service
    assert isinstance(state, IngestState)
    runner = state.creation.handler
    assert isinstance(runner, CreationRunner)
    plan = CreationPlan(task_id, [], DataRequest(image_quality=70, server_files=files), 4, 1)
    await runner.clear(first["id"], {"plan": plan.to_json()})
    await runner.run(first["id"], {"plan": plan.to_json()})

    request = await fleet.wait(first["id"])
    assert request["status"] == "finished", request["message"]
    assert await job_ranges(fleet, task_id) == jobs  # the same jobs, no others
    meta = await fleet.get_data(f"/api/tasks/{task_id}/data/meta")
    assert meta.json()["size"] == 6
    frame = await fleet.get_data(
        f"/api/tasks/{task_id}/data", type="frame", number=5, quality="original"
    )
    assert frame.content == png_bytes(5)
