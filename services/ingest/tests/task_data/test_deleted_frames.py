"""Deleted frames (CVAT's `PATCH /api/{tasks|jobs}/{id}/data/meta` with `deleted_frames`): a
task's replace all of its deleted frames, a job's those among its frames; `data/meta`
lists them (a job's, those among its frames); only those who may change the task (or the
job's annotations) set them. And a frame's context images as they were given, for task
backups: the service token's alone.

The annotations service runs under uvicorn; ingest runs in-process.
"""

from __future__ import annotations

import io
import zipfile

from PIL import Image

from tessera.devstack.testing import Enrol
from tessera.ingest.testing import Fleet, client_with_token, png_bytes, zip_of


async def _task(fleet: Fleet, files: dict[str, bytes], **fields: int) -> int:
    task_id = await fleet.create_task(**fields)
    request = await fleet.wait(await fleet.upload(task_id, {"set.zip": zip_of(files)}))
    assert request["status"] == "finished", request["message"]
    return task_id


async def _deleted(fleet: Fleet, path: str) -> list[int]:
    meta = await fleet.ingest.client.get(f"{path}/data/meta")
    assert meta.status_code == 200, meta.text
    found: list[int] = meta.json()["deleted_frames"]
    return found


async def test_tasks_and_jobs_mark_frames_deleted_as_cvat_does(fleet: Fleet) -> None:
    task_id = await _task(fleet, {f"{i}.png": png_bytes(i) for i in range(5)}, segment_size=2)
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    first, second, last = sorted(
        (job["start_frame"], job["id"]) for job in jobs["results"]
    )  # frames 0-1, 2-3, 4
    client, task = fleet.ingest.client, f"/api/tasks/{task_id}"

    assert await _deleted(fleet, task) == []
    patched = await client.patch(f"{task}/data/meta", json={"deleted_frames": [3, 1, 3]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["deleted_frames"] == [1, 3]
    assert patched.json()["size"] == 5  # deleted frames stay frames, as in CVAT
    assert await _deleted(fleet, task) == [1, 3]
    assert await _deleted(fleet, f"/api/jobs/{first[1]}") == [1]
    assert await _deleted(fleet, f"/api/jobs/{last[1]}") == []

    job = f"/api/jobs/{second[1]}"
    patched = await client.patch(f"{job}/data/meta", json={"deleted_frames": [2]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["deleted_frames"] == [2]
    assert await _deleted(fleet, task) == [1, 2]  # the job's 3 restored, its 2 deleted

    for path, frames, says in [
        (f"{job}/data/meta", [0, 2], "0: not frames of job"),
        (f"{task}/data/meta", [5], "5: not frames of task"),
        (f"{task}/data/meta", [-1], "greater than or equal to 0"),
    ]:
        refused = await client.patch(path, json={"deleted_frames": frames})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"].startswith("body.deleted_frames")
        assert says in refused.text
    assert await _deleted(fleet, task) == [1, 2]

    restored = await client.patch(f"{task}/data/meta", json={"deleted_frames": []})
    assert restored.json()["deleted_frames"] == []
    bare = await fleet.create_task()
    missing = await client.patch(f"/api/tasks/{bare}/data/meta", json={"deleted_frames": []})
    assert missing.status_code == 404, missing.text


async def test_only_those_who_may_change_the_task_or_job_delete_frames(
    fleet: Fleet, enrol: Enrol, annotations_url: str
) -> None:
    alice, mary, eve = [await enrol(fleet.ingest, n) for n in ("alice", "mary", "eve")]
    lab = {"X-Organization": "lab"}
    async with (
        client_with_token(annotations_url, alice.token) as as_alice,
        client_with_token(annotations_url, mary.token) as as_mary,
    ):
        assert (await as_alice.post("/api/organizations", json={"slug": "lab"})).is_success
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
    paths = [f"/api/tasks/{task_id}/data/meta", f"/api/jobs/{jobs['results'][0]['id']}/data/meta"]
    body = {"deleted_frames": [0]}

    for path in paths:
        supervisor = await mary.client.patch(path, json=body, headers=lab)
        assert supervisor.status_code == 403, (path, supervisor.text)
        assert (await mary.client.get(path, headers=lab)).status_code == 200
        stranger = await eve.client.patch(path, json=body)
        assert stranger.status_code == 404, (path, stranger.text)
        assert (await fleet.ingest.anonymous.patch(path, json=body)).status_code == 401
        owner = await alice.client.patch(path, json=body, headers=lab)
        assert owner.status_code == 200, (path, owner.text)
        assert owner.json()["deleted_frames"] == [0]
    internal = f"/api/internal/tasks/{task_id}/media/context_images"
    refused = await alice.client.get(internal, params={"number": 0}, headers=lab)
    assert refused.status_code == 403, refused.text


async def test_a_frames_context_images_come_as_they_were_given(fleet: Fleet) -> None:
    bmp = io.BytesIO()
    Image.new("RGB", (6, 4), (9, 9, 9)).save(bmp, format="BMP")
    related = {
        "sub/related_images/a_png/left.png": png_bytes(5, (12, 8)),
        "sub/related_images/a_png/right.bmp": bmp.getvalue(),
    }
    task_id = await _task(fleet, {"sub/a.png": png_bytes(1), "sub/b.png": png_bytes(2), **related})
    internal = f"/api/internal/tasks/{task_id}/media/context_images"

    found = await fleet.ingest.client.get(internal, params={"number": 0})

    assert found.status_code == 200, found.text
    with zipfile.ZipFile(io.BytesIO(found.content)) as archive:
        stored = {info.filename: info.compress_type for info in archive.infolist()}
        assert stored == dict.fromkeys(related, zipfile.ZIP_STORED)
        assert {name: archive.read(name) for name in archive.namelist()} == related
    none = await fleet.ingest.client.get(internal, params={"number": 1})
    assert none.status_code == 404, none.text
    outside = await fleet.ingest.client.get(internal, params={"number": 2})
    assert outside.status_code == 400, outside.text
    manifest = await fleet.ingest.client.get(f"/api/internal/tasks/{task_id}/media/manifest")
    lines = manifest.text.splitlines()
    assert '"meta":{"related_images":["sub/related_images/a_png/left.png",' in lines[2]
    assert "meta" not in lines[3]
