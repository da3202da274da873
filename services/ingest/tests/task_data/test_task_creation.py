"""Task creation from uploads (Upload-Multiple and TUS), the share and URLs, end to end.

The annotations service runs under uvicorn (ingest asks it over HTTP who may do what
and has it make the jobs); ingest runs in-process. Frames and chunks are read back and
compared byte for byte with what was uploaded.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

from tessera.ingest.testing import Fleet, png_bytes


async def test_images_from_uploads_make_jobs_and_read_back_bit_exact(fleet: Fleet) -> None:
    task_id = await fleet.create_task(segment_size=3, overlap=1)
    files = {f"img_{i}.png": png_bytes(i) for i in (10, 2, 1, 3, 4)}
    rq_id = await fleet.upload(task_id, files, chunk_size=2, sorting_method="natural")
    request = await fleet.wait(rq_id)
    assert request["status"] == "finished", request["message"]
    assert request["progress"] == 1.0
    assert request["operation"] == {
        "type": "create:task",
        "target": "task",
        "task_id": task_id,
        "project_id": None,
        "job_id": None,
        "format": None,
        "function_id": None,
    }
    order = ["img_1.png", "img_2.png", "img_3.png", "img_4.png", "img_10.png"]

    client = fleet.ingest.client
    meta = (await client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [f["name"] for f in meta["frames"]] == order
    assert (meta["size"], meta["chunk_size"], meta["frames"][0]["width"]) == (5, 2, 32)
    for number in range(5):
        frame = await client.get(
            f"/api/tasks/{task_id}/data",
            params={"type": "frame", "number": number, "quality": "original"},
        )
        assert frame.content == files[order[number]]
        assert frame.headers["content-type"] == "image/png"
    for number in range(3):
        chunk = await client.get(
            f"/api/tasks/{task_id}/data",
            params={"type": "chunk", "number": number, "quality": "original"},
        )
        members = zipfile.ZipFile(io.BytesIO(chunk.content)).infolist()
        expected = order[number * 2 : number * 2 + 2]
        assert [m.filename for m in members] == [f"{i:06d}.png" for i in range(len(expected))]
        with zipfile.ZipFile(io.BytesIO(chunk.content)) as archive:
            assert [archive.read(m) for m in members] == [files[n] for n in expected]
    compressed = await client.get(
        f"/api/tasks/{task_id}/data", params={"type": "chunk", "number": 0}
    )
    with zipfile.ZipFile(io.BytesIO(compressed.content)) as archive:
        assert archive.namelist() == ["000000.jpeg", "000001.jpeg"]
        assert Image.open(io.BytesIO(archive.read("000000.jpeg"))).size == (32, 24)

    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    ranges = sorted((j["start_frame"], j["stop_frame"]) for j in jobs["results"])
    assert ranges == [(0, 2), (2, 4)]  # segment_size 3, overlap 1
    task = (await fleet.annotations.get(f"/api/tasks/{task_id}")).json()
    assert (task["size"], task["data_chunk_size"]) == (5, 2)
    second = min(jobs["results"], key=lambda j: -j["start_frame"])
    job_meta = (await client.get(f"/api/jobs/{second['id']}/data/meta")).json()
    assert [f["name"] for f in job_meta["frames"]] == order[2:5]
    job_chunk = await client.get(
        f"/api/jobs/{second['id']}/data",
        params={"type": "chunk", "index": 0, "quality": "original"},
    )
    with zipfile.ZipFile(io.BytesIO(job_chunk.content)) as archive:
        assert [archive.read(n) for n in archive.namelist()] == [files[n] for n in order[2:4]]

    again = await client.post(f"/api/tasks/{task_id}/data/", headers={"Upload-Start": ""})
    assert again.status_code == 409


async def test_a_corrupt_image_fails_the_request_and_leaves_no_task(fleet: Fleet) -> None:
    task_id = await fleet.create_task()
    files = {"good.png": png_bytes(1), "broken.png": png_bytes(2)[:40], "last.png": png_bytes(3)}
    request = await fleet.wait(await fleet.upload(task_id, files))
    assert request["status"] == "failed"
    assert "broken.png" in request["message"]
    meta = await fleet.ingest.client.get(f"/api/tasks/{task_id}/data/meta")
    assert meta.status_code == 404
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    assert jobs["count"] == 0
    storage = fleet.ingest.platform.storage
    assert [key async for key, _ in storage.list_keys(f"tasks/{task_id}/media/")] == []


async def test_share_files_are_confined_to_the_share(fleet: Fleet, tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "set").mkdir()
    for i in range(3):
        (share / "set" / f"{i}.png").write_bytes(png_bytes(i))
    (tmp_path / "secret.png").write_bytes(png_bytes(9))
    (share / "set" / "link.png").symlink_to(tmp_path / "secret.png")
    task_id = await fleet.create_task()
    client = fleet.ingest.client
    escaped = await client.post(
        f"/api/tasks/{task_id}/data/", json={"image_quality": 70, "server_files": ["../secret.png"]}
    )
    failed = await fleet.wait(escaped.json()["rq_id"])
    assert failed["status"] == "failed"
    assert "outside the connected share" in failed["message"]
    linked = await client.post(
        f"/api/tasks/{task_id}/data/", json={"image_quality": 70, "server_files": ["set/"]}
    )
    failed = await fleet.wait(linked.json()["rq_id"])
    assert failed["status"] == "failed"
    assert "link.png" in failed["message"]
    (share / "set" / "link.png").unlink()
    ok = await client.post(
        f"/api/tasks/{task_id}/data/", json={"image_quality": 70, "server_files": ["set/"]}
    )
    finished = await fleet.wait(ok.json()["rq_id"])
    assert finished["status"] == "finished", finished["message"]
    meta = (await client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [f["name"] for f in meta["frames"]] == ["set/0.png", "set/1.png", "set/2.png"]


async def test_remote_urls_to_internal_addresses_are_refused(fleet: Fleet) -> None:
    task_id = await fleet.create_task()
    for url in (
        "http://127.0.0.1:9/a.png",
        "http://169.254.169.254/latest/meta-data/x.png",
        "http://[::1]/b.png",
        "file:///etc/passwd",
    ):
        sent = await fleet.ingest.client.post(
            f"/api/tasks/{task_id}/data/", json={"image_quality": 70, "remote_files": [url]}
        )
        assert sent.status_code == 202, sent.text
        failed = await fleet.wait(sent.json()["rq_id"])
        assert failed["status"] == "failed", url
        assert url in failed["message"]


async def test_bad_data_requests_name_the_field(fleet: Fleet, enrol: Any) -> None:
    task_id = await fleet.create_task()
    client = fleet.ingest.client
    url = f"/api/tasks/{task_id}/data/"
    missing = await client.post(url, json={"server_files": ["a.png"]})
    assert missing.status_code == 422
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["errors"][0]["field"] == "body.image_quality"
    step = await client.post(
        url, json={"image_quality": 70, "frame_filter": "every=2", "server_files": ["a.png"]}
    )
    assert step.json()["errors"][0]["field"] == "body.frame_filter"
    for quality in (2, 101):
        blurred = await client.post(url, json={"image_quality": quality, "server_files": ["a.png"]})
        assert blurred.status_code == 422, quality
        assert blurred.json()["errors"][0]["field"] == "body.image_quality"
    nothing = await client.post(url, json={"image_quality": 70})
    assert nothing.status_code == 422
    assert nothing.json()["errors"][0]["field"] == "body"
    anonymous = await fleet.ingest.anonymous.post(url, json={"image_quality": 70})
    assert anonymous.status_code == 401
    stranger = await enrol(fleet.ingest, "stranger")
    hidden = await stranger.client.post(url, json={"image_quality": 70})
    assert hidden.status_code == 404
