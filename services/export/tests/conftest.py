"""Fixtures of the export tests: annotations and ingest on sockets (export calls both over
HTTP), export in-process, and helpers to make annotated tasks and run exports."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tessera.annotations.app import create_app as create_annotations
from tessera.devstack.testing import (
    ADMIN_TOKEN,
    OpenService,
    ServiceHandle,
    serve_in_thread,
    settings_for,
)
from tessera.ingest.app import create_app as create_ingest
from tessera.ingest.testing import png_bytes


@dataclass
class ExportFleet:
    """Export in-process; admin clients of annotations and ingest on their sockets."""

    export: ServiceHandle
    annotations: httpx.AsyncClient
    ingest: httpx.AsyncClient
    share: Path

    async def create_task(self, frames: int = 3, **fields: Any) -> int:
        """A task with `frames` PNG frames (`f0.png`, ...) from the share; its id."""
        body = {"name": "export task", "labels": [{"name": "car"}, {"name": "person"}], **fields}
        created = await self.annotations.post("/api/tasks", json=body)
        assert created.status_code == 201, created.text
        task_id: int = created.json()["id"]
        folder = self.share / f"task{task_id}"
        folder.mkdir()
        for index in range(frames):
            (folder / f"f{index}.png").write_bytes(png_bytes(index, (40, 30)))
        sent = await self.ingest.post(
            f"/api/tasks/{task_id}/data/",
            json={"image_quality": 70, "server_files": [f"task{task_id}/"], **_segments(fields)},
        )
        assert sent.status_code == 202, sent.text
        ended = await self.wait(self.ingest, sent.json()["rq_id"])
        assert ended["status"] == "finished", ended
        return task_id

    async def labels(self, task_id: int) -> dict[str, int]:
        """The task's label ids by name."""
        found = await self.annotations.get("/api/labels", params={"task_id": task_id})
        return {label["name"]: label["id"] for label in found.json()["results"]}

    async def put_annotations(self, task_id: int, body: dict[str, Any]) -> None:
        """Replace the task's annotations."""
        put = await self.annotations.put(
            f"/api/tasks/{task_id}/annotations", json={"version": 0, **body}
        )
        assert put.status_code == 200, put.text

    async def start(self, path: str, **params: Any) -> str:
        """POST an export (`path` like `/api/tasks/1/dataset/export`); its rq_id."""
        started = await self.export.client.post(path, params=params)
        assert started.status_code == 202, started.text
        rq_id: str = started.json()["rq_id"]
        return rq_id

    async def wait(
        self, client: httpx.AsyncClient, rq_id: str, *, timeout_s: float = 60.0
    ) -> dict[str, Any]:
        """The request once it has finished or failed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            response = await client.get(f"/api/requests/{rq_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["status"] in ("finished", "failed"):
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"request {rq_id} did not end in {timeout_s} s")

    async def run_export(self, path: str, **params: Any) -> tuple[dict[str, Any], zipfile.ZipFile]:
        """Run an export to its end and download it: the request and the archive."""
        ended = await self.wait(self.export.client, await self.start(path, **params))
        assert ended["status"] == "finished", ended
        url = httpx.URL(ended["result_url"])
        downloaded = await self.export.client.get(url.path, params=url.params)
        assert downloaded.status_code == 200, downloaded.text
        assert downloaded.headers["content-type"] == "application/zip"
        assert int(downloaded.headers["content-length"]) == len(downloaded.content)
        return ended, zipfile.ZipFile(io.BytesIO(downloaded.content))


def _segments(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: fields[key] for key in ("segment_size", "overlap") if key in fields}


@pytest.fixture
def export_overrides() -> dict[str, Any]:
    """Extra export settings for the `export_fleet` fixture (override in a test module)."""
    return {}


@pytest.fixture
def annotations_url(service_settings: dict[str, Any]) -> Iterator[str]:
    """The annotations service on a real socket."""
    with serve_in_thread(
        create_annotations(settings_for("annotations", **service_settings))
    ) as url:
        yield url


@pytest.fixture
def ingest_url(
    service_settings: dict[str, Any], annotations_url: str, tmp_path: Path
) -> Iterator[str]:
    """The ingest service on a real socket, its share at tmp_path/share."""
    (tmp_path / "share").mkdir(exist_ok=True)
    settings = settings_for(
        "ingest",
        **service_settings,
        annotations_url=annotations_url,
        scratch_dir=tmp_path / "scratch",
        share_root=tmp_path / "share",
        # the tests' cloud storages are buckets of the session's S3 server, on loopback
        remote_allowed_networks=("127.0.0.0/8",),
    )
    with serve_in_thread(create_ingest(settings)) as url:
        yield url


@pytest.fixture
async def export_fleet(
    open_service: OpenService,
    annotations_url: str,
    ingest_url: str,
    tmp_path: Path,
    export_overrides: dict[str, Any],
) -> AsyncIterator[ExportFleet]:
    """Export in-process, talking to annotations and ingest over HTTP."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with (
        open_service(
            "export", annotations_url=annotations_url, ingest_url=ingest_url, **export_overrides
        ) as export,
        httpx.AsyncClient(base_url=annotations_url, headers=headers) as annotations,
        httpx.AsyncClient(base_url=ingest_url, headers=headers, timeout=30) as ingest,
    ):
        yield ExportFleet(export, annotations, ingest, tmp_path / "share")
