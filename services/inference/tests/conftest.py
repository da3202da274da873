"""Fixtures of the inference tests: annotations and ingest on sockets (inference calls both
over HTTP), the local Triton, inference in-process, and images with text drawn on them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tessera.annotations.app import create_app as create_annotations
from tessera.devstack.servers import Triton
from tessera.devstack.testing import (
    ADMIN_TOKEN,
    OpenService,
    ServiceHandle,
    serve_in_thread,
    settings_for,
)
from tessera.ingest.app import create_app as create_ingest
from tessera.platform.storage import ObjectStorage

Box = tuple[int, int, int, int]


def text_image(
    lines: Sequence[tuple[str, tuple[int, int]]],
    size: tuple[int, int] = (320, 640),
    scale: float = 1.5,
    thickness: int = 3,
) -> tuple[np.ndarray, list[Box]]:
    """A white RGB image with black text lines (each `(text, (x, baseline y))`), and the
    box (xtl, ytl, xbr, ybr) of each line, descenders included."""
    image = np.full((*size, 3), 255, np.uint8)
    boxes = []
    for text, (x, y) in lines:
        (width, height), baseline = cv2.getTextSize(
            text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness
        )
        cv2.putText(
            image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA
        )
        boxes.append((x, y - height, x + width, y + baseline))
    return image, boxes


def png(image: np.ndarray) -> bytes:
    """An RGB image encoded as PNG."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (xtl, ytl, xbr, ybr) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class InferenceFleet:
    """Inference in-process; admin clients of annotations and ingest on their sockets."""

    inference: ServiceHandle
    annotations: httpx.AsyncClient
    ingest: httpx.AsyncClient
    share: Path
    annotations_url: str
    ingest_url: str
    # The fleet's bucket (the inference service itself keeps nothing there): for tests
    # that break a stored original.
    bucket: ObjectStorage

    async def create_task(
        self, images: Sequence[bytes], labels: Sequence[dict[str, Any]], **fields: Any
    ) -> int:
        """A task of PNG frames (`f0.png`, ...) from the share, with `labels`; its id."""
        body = {"name": "inference task", "labels": list(labels), **fields}
        created = await self.annotations.post("/api/tasks", json=body)
        assert created.status_code == 201, created.text
        task_id: int = created.json()["id"]
        folder = self.share / f"task{task_id}"
        folder.mkdir()
        for index, data in enumerate(images):
            (folder / f"f{index}.png").write_bytes(data)
        options = {k: fields[k] for k in ("segment_size", "overlap") if k in fields}
        sent = await self.ingest.post(
            f"/api/tasks/{task_id}/data/",
            json={"image_quality": 90, "server_files": [f"task{task_id}/"], **options},
        )
        assert sent.status_code == 202, sent.text
        ended = await self.wait(sent.json()["rq_id"])
        assert ended["status"] == "finished", ended
        return task_id

    async def labels(self, task_id: int) -> dict[str, int]:
        """The task's label ids by name."""
        found = await self.annotations.get("/api/labels", params={"task_id": task_id})
        return {label["name"]: label["id"] for label in found.json()["results"]}

    async def jobs(self, task_id: int) -> list[dict[str, Any]]:
        """The task's jobs, in order of their first frame."""
        found = await self.annotations.get("/api/jobs", params={"task_id": task_id})
        jobs: list[dict[str, Any]] = found.json()["results"]
        return sorted(jobs, key=lambda job: job["start_frame"])

    async def wait(self, rq_id: str, *, timeout_s: float = 60.0) -> dict[str, Any]:
        """An ingest request once it has finished or failed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            response = await self.ingest.get(f"/api/requests/{rq_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["status"] in ("finished", "failed"):
                return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"request {rq_id} did not end in {timeout_s} s")


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
    )
    with serve_in_thread(create_ingest(settings)) as url:
        yield url


@asynccontextmanager
async def open_fleet(
    open_service: OpenService,
    service_settings: dict[str, Any],
    urls: tuple[str, str],
    share: Path,
    **overrides: Any,
) -> AsyncIterator[InferenceFleet]:
    """Inference in-process with `overrides` (its Triton, workers...), talking to
    annotations and ingest (`urls`) over HTTP; admin clients of both, and the bucket."""
    annotations_url, ingest_url = urls
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    bucket = ObjectStorage(
        bucket=service_settings["s3_bucket"], endpoint_url=service_settings["s3_endpoint_url"],
        region="us-east-1", access_key=service_settings["s3_access_key"],
        secret_key=service_settings["s3_secret_key"],
    )  # fmt: skip
    async with (
        open_service(
            "inference", annotations_url=annotations_url, ingest_url=ingest_url, **overrides
        ) as inference,
        httpx.AsyncClient(base_url=annotations_url, headers=headers) as annotations,
        httpx.AsyncClient(base_url=ingest_url, headers=headers, timeout=30) as ingest,
    ):
        await bucket.start()
        try:
            yield InferenceFleet(
                inference, annotations, ingest, share, annotations_url, ingest_url, bucket
            )
        finally:
            await bucket.close()


@pytest.fixture
async def inference_fleet(
    open_service: OpenService,
    *,
    service_settings: dict[str, Any],
    annotations_url: str,
    ingest_url: str,
    triton: Triton,
    tmp_path: Path,
) -> AsyncIterator[InferenceFleet]:
    """Inference in-process with the local Triton, talking to annotations and ingest over
    HTTP."""
    urls = (annotations_url, ingest_url)
    async with open_fleet(
        open_service, service_settings, urls, tmp_path / "share", triton_url=triton.url
    ) as fleet:
        yield fleet
