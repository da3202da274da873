"""The snapshot of one frame (`?frame=N`, the export service's read for a render): the
jobs that hold the frame, that frame's tags and shapes, and the tracks that may be
visible there, each exactly as the whole snapshot gives it."""

from __future__ import annotations

from typing import Any

from tessera.devstack.testing import OpenService
from tessera.platform.contracts.annotations import SnapshotEnd

from .test_snapshots import Read, SeedTask, build, snapshot_of


def ids(read: Read) -> list[tuple[str, int, int]]:
    """(kind, frame, id) of the objects, in stream order."""
    return [(kind, obj["frame"], obj["id"]) for kind, _, obj in read.objects]


def expected(whole: Read, frame: int, tracks: set[int]) -> list[tuple[str, int, int]]:
    """(kind, frame, id) of the whole snapshot's tags and shapes on `frame`, then the
    tracks `tracks` (by id)."""
    return [
        (kind, obj["frame"], obj["id"])
        for kind, _, obj in whole.objects
        if (kind != "track" and obj["frame"] == frame) or (kind == "track" and obj["id"] in tracks)
    ]


async def test_a_frame_snapshot_has_the_frames_objects_and_the_tracks_alive_there(
    open_service: OpenService,
) -> None:
    async with open_service("annotations") as svc:
        b = await build(svc.client)
        path = f"/api/internal/tasks/{b.task_id}/snapshot"
        whole = await snapshot_of(svc.client, path)
        by_id: dict[tuple[str, int], dict[str, Any]] = {
            (kind, obj["id"]): obj for kind, _, obj in whole.objects
        }
        car_track, body_track, polygon_track = (
            obj["id"] for kind, _, obj in whole.objects if kind == "track"
        )
        first, second = b.job_ids

        # frame 1: three shapes, the car track (keyframes 0 and 3) and the skeleton track
        one = await snapshot_of(svc.client, f"{path}?frame=1")
        assert [job.id for job in one.header.jobs] == [first]
        assert (one.header.version, one.header.task.id) == (1, b.task_id)
        assert [label.name for label in one.header.labels] == ["car", "flag", "body"]
        assert ids(one) == expected(whole, 1, {car_track, body_track})
        # in frame order, a track by its first frame
        assert [kind for kind, _, _ in one.objects] == ["track", "shape", "shape", "shape", "track"]
        for kind, job, obj in one.objects:
            assert job == first
            assert obj == by_id[kind, obj["id"]]  # whole: keyframes and elements
        assert one.end == SnapshotEnd(tags=0, shapes=3, tracks=2)

        # frame 4: the car track ended (outside) on frame 3; the skeleton's ends on 4
        four = await snapshot_of(svc.client, f"{path}?frame=4")
        assert ids(four) == expected(whole, 4, {body_track})
        assert four.end == SnapshotEnd(tags=1, shapes=1, tracks=1)

        # the second job's frames: the polygon track (6 to 8, outside there)
        seven = await snapshot_of(svc.client, f"{path}?frame=7")
        assert [job.id for job in seven.header.jobs] == [second]
        assert ids(seven) == expected(whole, 7, {polygon_track})
        nine = await snapshot_of(svc.client, f"{path}?frame=9")
        assert ids(nine) == expected(whole, 9, set())
        assert nine.end == SnapshotEnd(tags=0, shapes=1, tracks=0)

        # a job's frame snapshot; a frame the job does not hold gives nothing
        job_one = await snapshot_of(svc.client, f"/api/internal/jobs/{first}/snapshot?frame=1")
        assert ids(job_one) == ids(one)
        outside = await snapshot_of(svc.client, f"/api/internal/jobs/{first}/snapshot?frame=7")
        assert (outside.header.jobs, outside.objects) == ([], [])
        beyond = await snapshot_of(svc.client, f"{path}?frame=50")
        assert (beyond.header.jobs, beyond.objects) == ([], [])

        refused = await svc.client.get(f"{path}?frame=-1")
        assert refused.status_code == 422


async def test_overlapping_jobs_give_the_frames_objects_of_each(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 9), (8, 17)], overlap=2)
        car = seed.labels["car"]
        rect = [0.0, 0.0, 10.0, 10.0]
        put = await svc.client.put(f"/api/tasks/{seed.task_id}/annotations", json={
            "shapes": [{"type": "rectangle", "label_id": car, "frame": f, "points": rect}
                       for f in (1, 8, 15)],
            "tracks": [{"label_id": car, "frame": 2, "shapes": [
                {"type": "rectangle", "frame": 2, "points": rect},
                {"type": "rectangle", "frame": 14, "points": [12.0, 0.0, 22.0, 10.0]},
            ]}],
        })  # fmt: skip
        assert put.status_code == 200, put.text

        read = await snapshot_of(svc.client, f"/api/internal/tasks/{seed.task_id}/snapshot?frame=8")
        first, second = seed.job_ids
        assert [job.id for job in read.header.jobs] == [first, second]
        assert [(kind, job) for kind, job, _ in read.objects] == [
            ("track", first), ("shape", first), ("shape", second), ("track", second),
        ]  # fmt: skip
