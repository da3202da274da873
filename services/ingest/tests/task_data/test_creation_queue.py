"""Task creation runs from a JetStream work queue shared by the ingest replicas: a
replica that stops hands its unfinished creation back, and another one makes the task.

The one file of the task comes from a local HTTP server that holds its first answer
until the test releases it, so the first replica is caught in the middle of the work.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response

from tessera.devstack.testing import ADMIN_TOKEN, OpenService, serve_in_thread
from tessera.ingest.creation.queue import CREATION
from tessera.ingest.testing import Fleet, png_bytes

IMAGE = png_bytes(7)


class HeldServer:
    """Serves /frame.png; the first request waits until `release` is set."""

    def __init__(self) -> None:
        self.first_request = threading.Event()
        self.release = threading.Event()
        self.requests = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/frame.png")
        async def frame() -> Response:
            self.requests += 1
            if self.requests == 1:
                self.first_request.set()
                await asyncio.to_thread(self.release.wait, 60)
            return Response(IMAGE, media_type="image/png")

        return app


@pytest.fixture
def held() -> Iterator[tuple[HeldServer, str]]:
    """The held server and its URL."""
    server = HeldServer()
    with serve_in_thread(server.app()) as url:
        try:
            yield server, url
        finally:
            server.release.set()


async def test_a_stopping_replica_hands_its_creation_to_another(
    open_service: OpenService,
    annotations_url: str,
    tmp_path: Path,
    held: tuple[HeldServer, str],
) -> None:
    server, url = held
    settings: dict[str, Any] = {
        "annotations_url": annotations_url,
        "remote_allowed_networks": ("127.0.0.0/8",),
    }
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=annotations_url, headers=admin) as annotations:
        async with open_service("ingest", scratch_dir=tmp_path / "a", **settings) as first:
            fleet = Fleet(first, annotations)
            task_id = await fleet.create_task()
            sent = await first.client.post(
                f"/api/tasks/{task_id}/data/",
                json={"image_quality": 70, "remote_files": [f"{url}/frame.png"]},
            )
            assert sent.status_code == 202, sent.text
            rq_id = sent.json()["rq_id"]
            assert await asyncio.to_thread(server.first_request.wait, 30)
            running = (await first.client.get(f"/api/requests/{rq_id}")).json()
            assert running["status"] == "started"
        # The first replica has stopped in the middle of the download.
        server.release.set()
        async with open_service("ingest", scratch_dir=tmp_path / "b", **settings) as second:
            fleet = Fleet(second, annotations)
            # Handed back at once when the first replica could say so, else after the ack wait.
            request = await fleet.wait(rq_id, timeout_s=CREATION.ack_wait_s + 30)
            assert request["status"] == "finished", request["message"]
            frame = await fleet.get_data(
                f"/api/tasks/{task_id}/data", type="frame", number=0, quality="original"
            )
            assert frame.content == IMAGE
            jobs = (await annotations.get("/api/jobs", params={"task_id": task_id})).json()
            assert jobs["count"] == 1, jobs
    assert server.requests == 2, "the file was fetched once by each replica"
