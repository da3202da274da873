"""Exports of a video task with its frames: the image format and quality asked for, the
frames read from ingest in one stream, and names that the annotations and the archive
share. Annotations and ingest run on sockets, export in-process (`export_fleet`)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from tessera.ingest.media.testing import frame_index, make_test_video

from .conftest import ExportFleet

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SOURCES = [0, 2, 4, 6, 8, 10]  # the task's frames: every second frame of a 12-frame video
SIZE = (64, 48)


async def _video_task(fleet: ExportFleet) -> int:
    """A task of frames 0, 2, ..., 10 of a marked video, a box on task frames 1 and 4."""
    created = await fleet.annotations.post(
        "/api/tasks", json={"name": "video", "labels": [{"name": "car"}]}
    )
    assert created.status_code == 201, created.text
    task_id: int = created.json()["id"]
    folder = fleet.share / f"video{task_id}"
    folder.mkdir()
    make_test_video(folder / "clip.mp4", 12, SIZE, gop=4)
    sent = await fleet.ingest.post(
        f"/api/tasks/{task_id}/data/",
        json={"image_quality": 70, "server_files": [f"video{task_id}/clip.mp4"],
              "frame_filter": "step=2"},
    )  # fmt: skip
    assert sent.status_code == 202, sent.text
    ended = await fleet.wait(fleet.ingest, sent.json()["rq_id"])
    assert ended["status"] == "finished", ended
    car = (await fleet.labels(task_id))["car"]
    await fleet.put_annotations(task_id, {"shapes": [
        {"type": "rectangle", "frame": frame, "label_id": car, "points": [1, 2, 11, 12],
         "attributes": []}
        for frame in (1, 4)
    ]})  # fmt: skip
    return task_id


def _images(archive: zipfile.ZipFile) -> dict[str, Image.Image]:
    """The archive's images by member name."""
    return {
        name: Image.open(io.BytesIO(archive.read(name)))
        for name in archive.namelist()
        if name.startswith("images/")
    }


def _coco_names(archive: zipfile.ZipFile) -> list[str]:
    coco = json.loads(archive.read("annotations/instances_default.json"))
    return [image["file_name"] for image in coco["images"]]


async def test_video_frames_are_saved_in_the_format_asked_for(export_fleet: ExportFleet) -> None:
    task_id = await _video_task(export_fleet)
    path = f"/api/tasks/{task_id}/dataset/export"
    exported: dict[str, zipfile.ZipFile] = {}
    for image_format, params in (
        ("png", {}),
        ("jpeg", {"image_format": "jpeg", "image_quality": "80"}),
        ("webp", {"image_format": "webp"}),
    ):
        _, archive = await export_fleet.run_export(
            path, format="COCO 1.0", save_images="true", **params
        )
        exported[image_format] = archive
        extension = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}[image_format]
        names = [f"frame_{number:06d}{extension}" for number in range(6)]
        # The annotations name the files the archive holds.
        assert _coco_names(archive) == names
        images = _images(archive)
        assert list(images) == [f"images/default/{name}" for name in names]
        for number, image in enumerate(images.values()):
            assert (image.format, image.size) == (image_format.upper(), SIZE)
            assert frame_index(np.asarray(image.convert("RGB"))) == SOURCES[number]

    jpeg = exported["jpeg"].read("images/default/frame_000003.jpg")
    _, better = await export_fleet.run_export(
        path, format="COCO 1.0", save_images="true", image_format="jpeg", image_quality="100"
    )
    assert len(better.read("images/default/frame_000003.jpg")) > len(jpeg)


async def test_annotated_frames_only_skip_frames_of_the_stream(
    export_fleet: ExportFleet,
) -> None:
    task_id = await _video_task(export_fleet)

    _, archive = await export_fleet.run_export(
        f"/api/tasks/{task_id}/dataset/export", format="Datumaro 1.0", save_images="true",
        frames="annotated", image_format="jpeg",
    )  # fmt: skip

    images = _images(archive)
    assert list(images) == ["images/default/frame_000001.jpg", "images/default/frame_000004.jpg"]
    assert [frame_index(np.asarray(image)) for image in images.values()] == [2, 8]
    items = json.loads(archive.read("annotations/default.json"))["items"]
    assert [item["id"] for item in items] == ["frame_000001", "frame_000004"]


async def test_image_options_are_checked_and_make_the_export_s_identity(
    export_fleet: ExportFleet,
) -> None:
    task_id = await _video_task(export_fleet)
    client = export_fleet.export.client
    path = f"/api/tasks/{task_id}/dataset/export"
    cases: list[tuple[dict[str, Any], int]] = [
        ({"image_quality": "90"}, 400),  # png takes no quality
        ({"image_format": "jpeg", "image_quality": "0"}, 422),
        ({"image_format": "jpeg", "image_quality": "101"}, 422),
        ({"image_format": "gif"}, 422),
    ]
    for params, status in cases:
        refused = await client.post(path, params={"format": "COCO 1.0", **params})
        assert refused.status_code == status, (params, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        field = "query.image_format" if "gif" in params.values() else "query.image_quality"
        assert refused.json()["errors"][0]["field"] == field, (params, refused.json())

    # The default quality is 95: asking for it is the same export, reused.
    first, archive = await export_fleet.run_export(
        path, format="COCO 1.0", save_images="true", image_format="jpeg"
    )
    second, again = await export_fleet.run_export(
        path, format="COCO 1.0", save_images="true", image_format="jpeg", image_quality="95"
    )
    assert first["id"] != second["id"]
    assert await _archives(export_fleet) == 1  # the second request reused the first's archive
    assert again.namelist() == archive.namelist()
    # Without images the image options change nothing: those exports are one too.
    await export_fleet.run_export(path, format="COCO 1.0", image_format="jpeg")
    await export_fleet.run_export(path, format="COCO 1.0")
    assert await _archives(export_fleet) == 2


async def _archives(fleet: ExportFleet) -> int:
    """How many archives the export service wrote."""
    async with fleet.export.platform.database.transaction() as session:
        found = await session.scalar(
            sa.text("SELECT count(DISTINCT object_key) FROM export.exports")
        )
        return int(found or 0)
