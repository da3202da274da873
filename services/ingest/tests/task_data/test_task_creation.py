"""Task creation from uploads (Upload-Multiple and TUS), the share and URLs, end to end.

The annotations service runs under uvicorn (ingest asks it over HTTP who may do what
and has it make the jobs); ingest runs in-process. Frames and chunks are read back and
compared byte for byte with what was uploaded.
"""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tessera.annotations.app import create_app as create_annotations
from tessera.devstack.testing import (
    ADMIN_TOKEN,
    OpenService,
    ServiceHandle,
    serve_in_thread,
    settings_for,
)


@pytest.fixture
def annotations_url(service_settings: dict[str, Any]) -> Iterator[str]:
    """The annotations service on a real socket."""
    with serve_in_thread(
        create_annotations(settings_for("annotations", **service_settings))
    ) as url:
        yield url


@dataclass
class Fleet:
    """Ingest in-process and an admin client of the annotations service."""

    ingest: ServiceHandle
    annotations: httpx.AsyncClient


@pytest.fixture
async def fleet(
    open_service: OpenService, annotations_url: str, tmp_path: Path
) -> AsyncIterator[Fleet]:
    """Both services, ingest with a share under tmp_path/share."""
    (tmp_path / "share").mkdir()
    async with (
        open_service(
            "ingest",
            annotations_url=annotations_url,
            scratch_dir=tmp_path / "scratch",
            share_root=tmp_path / "share",
        ) as ingest,
        httpx.AsyncClient(
            base_url=annotations_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as annotations,
    ):
        yield Fleet(ingest, annotations)


def _png(i: int, size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (i * 40 % 256, 100, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _task(fleet: Fleet, **fields: Any) -> int:
    body = {"name": "t", "labels": [{"name": "car"}], **fields}
    response = await fleet.annotations.post("/api/tasks", json=body)
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


async def _wait(fleet: Fleet, rq_id: str) -> dict[str, Any]:
    for _ in range(600):
        response = await fleet.ingest.client.get(f"/api/requests/{rq_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("finished", "failed"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the request did not end")


async def _upload(fleet: Fleet, task_id: int, files: dict[str, bytes], **options: Any) -> str:
    client, url = fleet.ingest.client, f"/api/tasks/{task_id}/data/"
    assert (await client.post(url, headers={"Upload-Start": ""})).status_code == 202
    names = list(files)
    multiple = {f"client_files[{i}]": (f"/home/me/{n}", files[n]) for i, n in enumerate(names[:-1])}
    response = await client.post(
        url, headers={"Upload-Multiple": ""}, data={"image_quality": "70"}, files=multiple
    )
    assert response.status_code == 200, response.text
    last = names[-1]
    metadata = f"filename {base64.b64encode(last.encode()).decode()}"
    created = await client.post(
        url,
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(files[last])),
            "Upload-Metadata": metadata,
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["Upload-Filename"] == last
    location = httpx.URL(created.headers["Location"])
    assert location.is_absolute_url
    data, offset = files[last], 0
    while offset < len(data):
        piece = data[offset : offset + 100]
        patched = await client.patch(
            location.path,
            content=piece,
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert patched.status_code == 204, patched.text
        offset = int(patched.headers["Upload-Offset"])
    finish = await client.post(
        url, headers={"Upload-Finish": ""}, json={"image_quality": 70, **options}
    )
    assert finish.status_code == 202, finish.text
    rq_id: str = finish.json()["rq_id"]
    return rq_id


async def test_images_from_uploads_make_jobs_and_read_back_bit_exact(fleet: Fleet) -> None:
    task_id = await _task(fleet, segment_size=3, overlap=1)
    files = {f"img_{i}.png": _png(i) for i in (10, 2, 1, 3, 4)}
    rq_id = await _upload(fleet, task_id, files, chunk_size=2, sorting_method="natural")
    request = await _wait(fleet, rq_id)
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
    task_id = await _task(fleet)
    files = {"good.png": _png(1), "broken.png": _png(2)[:40], "last.png": _png(3)}
    request = await _wait(fleet, await _upload(fleet, task_id, files))
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
        (share / "set" / f"{i}.png").write_bytes(_png(i))
    (tmp_path / "secret.png").write_bytes(_png(9))
    (share / "set" / "link.png").symlink_to(tmp_path / "secret.png")
    task_id = await _task(fleet)
    client = fleet.ingest.client
    escaped = await client.post(
        f"/api/tasks/{task_id}/data/", json={"image_quality": 70, "server_files": ["../secret.png"]}
    )
    failed = await _wait(fleet, escaped.json()["rq_id"])
    assert failed["status"] == "failed"
    assert "outside the connected share" in failed["message"]
    linked = await client.post(
        f"/api/tasks/{task_id}/data/", json={"image_quality": 70, "server_files": ["set/"]}
    )
    failed = await _wait(fleet, linked.json()["rq_id"])
    assert failed["status"] == "failed"
    assert "link.png" in failed["message"]
    (share / "set" / "link.png").unlink()
    ok = await client.post(
        f"/api/tasks/{task_id}/data/", json={"image_quality": 70, "server_files": ["set/"]}
    )
    finished = await _wait(fleet, ok.json()["rq_id"])
    assert finished["status"] == "finished", finished["message"]
    meta = (await client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [f["name"] for f in meta["frames"]] == ["set/0.png", "set/1.png", "set/2.png"]


async def test_remote_urls_to_internal_addresses_are_refused(fleet: Fleet) -> None:
    task_id = await _task(fleet)
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
        failed = await _wait(fleet, sent.json()["rq_id"])
        assert failed["status"] == "failed", url
        assert url in failed["message"]


async def test_bad_data_requests_name_the_field(fleet: Fleet, enrol: Any) -> None:
    task_id = await _task(fleet)
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
    nothing = await client.post(url, json={"image_quality": 70})
    assert nothing.status_code == 422
    assert nothing.json()["errors"][0]["field"] == "body"
    anonymous = await fleet.ingest.anonymous.post(url, json={"image_quality": 70})
    assert anonymous.status_code == 401
    stranger = await enrol(fleet.ingest, "stranger")
    hidden = await stranger.client.post(url, json={"image_quality": 70})
    assert hidden.status_code == 404
