"""Test support for the ingest service: its fleet (ingest in-process, annotations on a
socket) and the client steps of making a task's data, as CVAT's clients take them."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from tessera.devstack.testing import ServiceHandle


def png_bytes(seed: int, size: tuple[int, int] = (32, 24)) -> bytes:
    """A small PNG whose colour depends on `seed`."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (seed * 40 % 256, 100, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    """A ZIP archive holding `files` (name -> bytes), in order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_members(data: bytes) -> dict[str, bytes]:
    """The entries of a ZIP archive (name -> bytes), in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def client_with_token(base_url: str, token: str) -> httpx.AsyncClient:
    """A client of the service at `base_url` that sends `token` (close it after use)."""
    return httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"})


@dataclass
class Fleet:
    """Ingest in-process and an admin client of the annotations service."""

    ingest: ServiceHandle
    annotations: httpx.AsyncClient

    async def create_task(self, **fields: Any) -> int:
        """A new task (label `car`) made by the admin; its id."""
        body = {"name": "t", "labels": [{"name": "car"}], **fields}
        response = await self.annotations.post("/api/tasks", json=body)
        assert response.status_code == 201, response.text
        task_id: int = response.json()["id"]
        return task_id

    async def wait(self, rq_id: str, *, timeout_s: float = 60.0) -> dict[str, Any]:
        """The request once it has finished or failed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            response = await self.ingest.client.get(f"/api/requests/{rq_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["status"] in ("finished", "failed"):
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"request {rq_id} did not end in {timeout_s} s")

    async def send_data(self, task_id: int, **options: Any) -> dict[str, Any]:
        """A one-shot data request (share, URLs, cloud storage); the ended request."""
        sent = await self.ingest.client.post(
            f"/api/tasks/{task_id}/data/", json={"image_quality": 70, **options}
        )
        assert sent.status_code == 202, sent.text
        return await self.wait(sent.json()["rq_id"])

    async def upload(self, task_id: int, files: dict[str, bytes], **options: Any) -> str:
        """Upload `files` as cvat-sdk does (all but the last with Upload-Multiple, the last
        with TUS in 100-byte pieces), then Upload-Finish with `options`; the request id."""
        client, url = self.ingest.client, f"/api/tasks/{task_id}/data/"
        assert (await client.post(url, headers={"Upload-Start": ""})).status_code == 202
        names = list(files)
        multiple = {
            f"client_files[{i}]": (f"/home/me/{n}", files[n]) for i, n in enumerate(names[:-1])
        }
        if multiple:
            response = await client.post(
                url, headers={"Upload-Multiple": ""}, data={"image_quality": "70"}, files=multiple
            )
            assert response.status_code == 200, response.text
        last = names[-1]
        created = await client.post(
            url,
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Length": str(len(files[last])),
                "Upload-Metadata": f"filename {base64.b64encode(last.encode()).decode()}",
            },
        )
        assert created.status_code == 201, created.text
        assert created.headers["Upload-Filename"] == last
        location = httpx.URL(created.headers["Location"])
        assert location.is_absolute_url
        data, offset = files[last], 0
        while offset < len(data):
            patched = await client.patch(
                location.path,
                content=data[offset : offset + max(100, len(data) // 20)],
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

    async def get_data(self, path: str, **params: Any) -> httpx.Response:
        """GET `path` (e.g. `/api/tasks/1/data`) with query `params`; asserts 200."""
        response = await self.ingest.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response
