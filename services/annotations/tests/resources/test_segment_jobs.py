"""The ingest service's segments call: jobs once per task, idempotent, with the segment
size and overlap actually used stored on the task in the same transaction."""

from typing import Any

from tessera.devstack.testing import OpenService

SEGMENTS: dict[str, Any] = {
    "size": 10, "media_type": "image", "chunk_size": 4, "image_quality": 80,
    "segment_size": 4, "overlap": 2,
    "segments": [{"start_frame": 0, "stop_frame": 3}, {"start_frame": 2, "stop_frame": 5},
                 {"start_frame": 4, "stop_frame": 7}, {"start_frame": 6, "stop_frame": 9}],
}  # fmt: skip


async def new_task(svc: Any, **fields: Any) -> dict[str, Any]:
    created = await svc.client.post(
        "/api/tasks", json={"name": "t", "labels": [{"name": "car"}], **fields}
    )
    assert created.status_code == 201, created.text
    task: dict[str, Any] = created.json()
    return task


async def test_segments_asked_twice_give_the_same_jobs(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        task = await new_task(svc, segment_size=4, overlap=5)
        path = f"/api/internal/tasks/{task['id']}/segments"
        made = await svc.client.post(path, json=SEGMENTS)
        assert made.status_code == 201, made.text
        ids = [job["id"] for job in made.json()["jobs"]]
        assert len(ids) == 4
        after = (await svc.client.get(f"/api/tasks/{task['id']}")).json()
        # The values used (overlap clamped to half a segment), as CVAT stores them.
        assert (after["segment_size"], after["overlap"], after["size"]) == (4, 2, 10)
        assert (after["image_quality"], after["jobs"]["count"]) == (80, 4)

        again = await svc.client.post(path, json=SEGMENTS)
        assert again.status_code == 200, again.text
        assert again.json() == made.json()
        jobs = (await svc.client.get("/api/jobs", params={"task_id": task["id"]})).json()
        assert sorted(job["id"] for job in jobs["results"]) == ids
        unchanged = (await svc.client.get(f"/api/tasks/{task['id']}")).json()
        assert unchanged == after


async def test_other_segments_for_a_task_with_jobs_get_409(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        task = await new_task(svc)
        path = f"/api/internal/tasks/{task['id']}/segments"
        assert (await svc.client.post(path, json=SEGMENTS)).status_code == 201
        before = (await svc.client.get(f"/api/tasks/{task['id']}")).json()

        fewer = {**SEGMENTS, "segments": SEGMENTS["segments"][:3]}
        refused = await svc.client.post(path, json=fewer)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "already has jobs" in refused.json()["detail"]
        assert [e["field"] for e in refused.json()["errors"]] == ["body.segments"]

        other_media = {**SEGMENTS, "chunk_size": 8, "overlap": 1}
        refused = await svc.client.post(path, json=other_media)
        assert refused.status_code == 409, refused.text
        fields = {e["field"] for e in refused.json()["errors"]}
        assert fields == {"body.chunk_size", "body.overlap"}

        other_frames = {**SEGMENTS, "segments": [
            {**segment, "frames": [segment["start_frame"]]} for segment in SEGMENTS["segments"]
        ]}  # fmt: skip
        assert (await svc.client.post(path, json=other_frames)).status_code == 409

        jobs = (await svc.client.get("/api/jobs", params={"task_id": task["id"]})).json()
        assert jobs["count"] == 4
        assert (await svc.client.get(f"/api/tasks/{task['id']}")).json() == before


async def test_segment_size_and_overlap_must_fit_the_task(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        task = await new_task(svc)
        path = f"/api/internal/tasks/{task['id']}/segments"
        too_long = await svc.client.post(path, json={**SEGMENTS, "segment_size": 11})
        assert too_long.status_code == 422, too_long.text
        assert [e["field"] for e in too_long.json()["errors"]] == ["body.segment_size"]
        too_wide = await svc.client.post(path, json={**SEGMENTS, "overlap": 3})
        assert too_wide.status_code == 422, too_wide.text
        assert [e["field"] for e in too_wide.json()["errors"]] == ["body.overlap"]
        assert (await svc.client.get(f"/api/tasks/{task['id']}")).json()["jobs"]["count"] == 0

        # Without them (older callers), the task keeps the values it was given.
        plain = {k: v for k, v in SEGMENTS.items() if k not in ("segment_size", "overlap")}
        assert (await svc.client.post(path, json=plain)).status_code == 201
        after = (await svc.client.get(f"/api/tasks/{task['id']}")).json()
        assert (after["segment_size"], after["overlap"]) == (0, None)
        assert (await svc.client.post(path, json=plain)).status_code == 200
