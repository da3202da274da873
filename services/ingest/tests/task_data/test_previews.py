"""CVAT's preview thumbnails of tasks, jobs and projects: a JPEG of the first frame (the
job's first frame for a job, the newest task's for a project) fitted into 256 x 256 and
turned as its EXIF says, kept once made; 404 without data; the task's access rules."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from tessera.devstack.testing import Enrol
from tessera.ingest.previews.service import preview_key
from tessera.ingest.testing import Fleet, client_with_token

RED, GREEN, BLUE, GREY = (220, 30, 30), (30, 200, 40), (20, 40, 220), (128, 128, 128)


def image_bytes(colour: tuple[int, int, int], size: tuple[int, int], kind: str = "PNG",
                **save: Any) -> bytes:  # fmt: skip
    """An image of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=kind, **save)
    return buffer.getvalue()


def thumbnail(data: bytes) -> tuple[tuple[int, int], tuple[float, ...]]:
    """A preview's size and mean colour, checked to be an RGB JPEG."""
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode) == ("JPEG", "RGB")
        mean = np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)
        return image.size, tuple(float(v) for v in mean)


def near(mean: tuple[float, ...], colour: tuple[int, int, int]) -> bool:
    """Whether a mean colour is the colour, give or take JPEG's loss."""
    return all(abs(m - c) < 12 for m, c in zip(mean, colour, strict=True))


async def made(fleet: Fleet, files: dict[str, bytes], **fields: Any) -> int:
    """A task of `files` (in name order), made through the upload; its id."""
    task_id = await fleet.create_task(**fields)
    ended = await fleet.wait(await fleet.upload(task_id, files, sorting_method="natural"))
    assert ended["status"] == "finished", ended["message"]
    return task_id


async def preview(fleet: Fleet, path: str) -> bytes:
    """GET a preview, checked to be a 200 JPEG."""
    answer = await fleet.ingest.client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    return answer.content


async def test_a_task_preview_is_its_first_frame_fitted_into_256_and_kept(fleet: Fleet) -> None:
    files = {"a.png": image_bytes(RED, (600, 400)), "b.png": image_bytes(BLUE, (600, 400))}
    task_id = await made(fleet, files)

    data = await preview(fleet, f"/api/tasks/{task_id}/preview")
    size, mean = thumbnail(data)
    assert size == (256, 171)  # never wider or taller than CVAT's 256, the aspect kept
    assert near(mean, RED)
    storage = fleet.ingest.platform.storage
    assert await storage.get(preview_key(task_id, 0)) == data
    await storage.put(preview_key(task_id, 0), image_bytes(GREY, (8, 8), "JPEG"))
    again = await preview(fleet, f"/api/tasks/{task_id}/preview/")
    assert near(thumbnail(again)[1], GREY)  # the kept one, not made again

    small = await made(fleet, {"s.png": image_bytes(GREEN, (40, 30))})
    assert thumbnail(await preview(fleet, f"/api/tasks/{small}/preview"))[0] == (40, 30)


async def test_a_preview_is_turned_as_the_frames_exif_orientation_says(fleet: Fleet) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown turned a quarter: portrait
    task_id = await made(fleet, {"turned.jpg": image_bytes(RED, (300, 100), "JPEG", exif=exif)})

    size, mean = thumbnail(await preview(fleet, f"/api/tasks/{task_id}/preview"))
    assert size == (85, 256)  # 100 x 300 as shown, fitted
    assert near(mean, RED)


async def test_a_job_preview_is_the_jobs_first_frame(fleet: Fleet) -> None:
    colours = [RED, GREEN, BLUE, GREY, RED]
    files = {f"f{i}.png": image_bytes(c, (64, 48)) for i, c in enumerate(colours)}
    task_id = await made(fleet, files, segment_size=2)
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    starts = {job["id"]: job["start_frame"] for job in jobs["results"]}
    assert sorted(starts.values()) == [0, 2, 4]

    for job_id, start in starts.items():
        size, mean = thumbnail(await preview(fleet, f"/api/jobs/{job_id}/preview"))
        assert size == (64, 48)
        assert near(mean, colours[start]), (job_id, start)


async def test_a_project_preview_is_its_newest_tasks(fleet: Fleet) -> None:
    async def project() -> int:
        made = await fleet.annotations.post(
            "/api/projects", json={"name": "p", "labels": [{"name": "car"}]}
        )
        assert made.status_code == 201, made.text
        project_id: int = made.json()["id"]
        return project_id

    # (access answers are cached for a few seconds: each case has its own project)
    empty = await fleet.ingest.client.get(f"/api/projects/{await project()}/preview")
    assert empty.status_code == 404
    assert empty.headers["content-type"] == "application/problem+json"

    two = await project()
    await made(fleet, {"a.png": image_bytes(RED, (64, 48))}, project_id=two, labels=[])
    await made(fleet, {"a.png": image_bytes(BLUE, (64, 48))}, project_id=two, labels=[])
    assert near(thumbnail(await preview(fleet, f"/api/projects/{two}/preview"))[1], BLUE)

    newest_bare = await project()
    await made(fleet, {"a.png": image_bytes(RED, (64, 48))}, project_id=newest_bare, labels=[])
    await fleet.create_task(project_id=newest_bare, labels=[])  # as CVAT: no preview then
    bare = await fleet.ingest.client.get(f"/api/projects/{newest_bare}/preview")
    assert bare.status_code == 404
    assert "has no data" in bare.json()["detail"]


async def test_no_preview_without_data_or_for_those_who_cannot_see_the_task(
    fleet: Fleet, enrol: Enrol, annotations_url: str
) -> None:
    bare = await fleet.create_task()
    missing = await fleet.ingest.client.get(f"/api/tasks/{bare}/preview")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "preview not found" in missing.json()["detail"]

    task_id = await made(fleet, {"a.png": image_bytes(RED, (64, 48))})
    job_id = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()[
        "results"
    ][0]["id"]
    eve = await enrol(fleet.ingest, "eve")
    for path in (f"/api/tasks/{task_id}/preview", f"/api/jobs/{job_id}/preview"):
        refused = await eve.client.get(path)
        assert refused.status_code in (403, 404), refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await fleet.ingest.anonymous.get(path)).status_code == 401
    async with client_with_token(annotations_url, eve.token) as as_eve:
        made_by_eve = await as_eve.post(
            "/api/projects", json={"name": "eve's", "labels": [{"name": "a"}]}
        )
        assert made_by_eve.status_code == 201, made_by_eve.text
    project = await fleet.annotations.post(
        "/api/projects", json={"name": "admin's", "labels": [{"name": "a"}]}
    )
    refused = await eve.client.get(f"/api/projects/{project.json()['id']}/preview")
    assert refused.status_code in (403, 404)
    own = await eve.client.get(f"/api/projects/{made_by_eve.json()['id']}/preview")
    assert own.status_code == 404  # hers, but without tasks
    assert "no tasks" in own.json()["detail"]
