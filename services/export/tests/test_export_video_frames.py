"""Exports of a video task with its frames: the image format and quality asked for, the
frames read from ingest in one stream, and names that the annotations and the archive
share. Annotations and ingest run on sockets, export in-process (`export_fleet`)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from tessera.ingest.media.testing import frame_index, make_test_video

from .conftest import ExportFleet
from .test_import_flow import upload_and_import

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
        # CVAT names a video's frames by their numbers in the video: 0, 2, ... with step=2
        names = [f"frame_{number:06d}{extension}" for number in SOURCES]
        # The annotations name the files the archive holds.
        assert _coco_names(archive) == names
        images = _images(archive)
        assert list(images) == [f"images/default/{name}" for name in names]
        for number, image in enumerate(images.values()):
            assert (image.format, image.size) == (image_format.upper(), SIZE)
            assert frame_index(np.asarray(image.convert("RGB"))) == SOURCES[number]

    jpeg = exported["jpeg"].read("images/default/frame_000006.jpg")
    _, better = await export_fleet.run_export(
        path, format="COCO 1.0", save_images="true", image_format="jpeg", image_quality="100"
    )
    assert len(better.read("images/default/frame_000006.jpg")) > len(jpeg)


async def test_annotated_frames_only_skip_frames_of_the_stream(
    export_fleet: ExportFleet,
) -> None:
    task_id = await _video_task(export_fleet)

    _, archive = await export_fleet.run_export(
        f"/api/tasks/{task_id}/dataset/export", format="Datumaro 1.0", save_images="true",
        frames="annotated", image_format="jpeg",
    )  # fmt: skip

    images = _images(archive)
    # task frames 1 and 4 are the video's 2 and 8, which name them
    assert list(images) == ["images/default/frame_000002.jpg", "images/default/frame_000008.jpg"]
    assert [frame_index(np.asarray(image)) for image in images.values()] == [2, 8]
    items = json.loads(archive.read("annotations/default.json"))["items"]
    assert [(item["id"], item["attr"]["frame"]) for item in items] == [
        ("frame_000002", 2), ("frame_000008", 8),
    ]  # fmt: skip


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


CUT = [10, 12, 14, 16, 18, 20]  # the task's frames: from frame 10 to 20 of a 24-frame video


async def _cut_task(fleet: ExportFleet) -> int:
    """A task of frames 10, 12, ..., 20 of a marked video: a car tracked over task frames
    1..3 (keyframes 1 and 3, outside from 4), a box on task frame 2, a tag on frame 0."""
    created = await fleet.annotations.post(
        "/api/tasks", json={"name": "cut", "labels": [{"name": "car"}, {"name": "rain"}]}
    )
    assert created.status_code == 201, created.text
    task_id: int = created.json()["id"]
    folder = fleet.share / f"video{task_id}"
    folder.mkdir()
    make_test_video(folder / "clip.mp4", 24, SIZE, gop=4)
    sent = await fleet.ingest.post(
        f"/api/tasks/{task_id}/data/",
        json={"image_quality": 70, "server_files": [f"video{task_id}/clip.mp4"],
              "start_frame": 10, "stop_frame": 20, "frame_filter": "step=2"},
    )  # fmt: skip
    assert sent.status_code == 202, sent.text
    ended = await fleet.wait(fleet.ingest, sent.json()["rq_id"])
    assert ended["status"] == "finished", ended
    labels = await fleet.labels(task_id)

    def box(frame: int, x: float, **fields: Any) -> dict[str, Any]:
        return {"type": "rectangle", "frame": frame, "points": [x, 2, x + 10, 12],
                "attributes": [], **fields}  # fmt: skip

    await fleet.put_annotations(task_id, {
        "shapes": [{**box(2, 1), "label_id": labels["car"]}],
        "tags": [{"frame": 0, "label_id": labels["rain"], "attributes": []}],
        "tracks": [{"frame": 1, "label_id": labels["car"], "attributes": [], "shapes": [
            box(1, 10), box(3, 30), box(4, 30, outside=True),
        ]}],
    })  # fmt: skip
    return task_id


async def test_a_cut_videos_exports_number_its_frames_in_the_video(
    export_fleet: ExportFleet,
) -> None:
    task_id = await _cut_task(export_fleet)
    path = f"/api/tasks/{task_id}/dataset/export"

    _, archive = await export_fleet.run_export(path, format="CVAT for video 1.1")
    root = ElementTree.fromstring(archive.read("annotations.xml"))
    assert (root.findtext("meta/task/start_frame"), root.findtext("meta/task/stop_frame")) == (
        "10", "20",
    )  # fmt: skip
    assert [
        [(box.get("frame"), box.get("keyframe"), box.get("outside")) for box in track]
        for track in root.iter("track")
    ] == [
        [("12", "1", "0"), ("14", "0", "0"), ("16", "1", "0"), ("18", "1", "1")],
        [("14", "1", "0"), ("16", "1", "1")],
    ]

    # the images are the video's frames their names and ids say
    _, archive = await export_fleet.run_export(
        path, format="CVAT for images 1.1", save_images="true"
    )
    root = ElementTree.fromstring(archive.read("annotations.xml"))
    assert [(image.get("id"), image.get("name")) for image in root.iter("image")] == [
        (str(number), f"frame_{number:06d}.png") for number in CUT
    ]
    images = _images(archive)
    assert list(images) == [f"images/frame_{number:06d}.png" for number in CUT]
    assert [frame_index(np.asarray(image.convert("RGB"))) for image in images.values()] == CUT

    _, archive = await export_fleet.run_export(path, format="Datumaro 1.0")
    items = json.loads(archive.read("annotations/default.json"))["items"]
    assert [(item["id"], item["attr"]["frame"]) for item in items] == [
        (f"frame_{number:06d}", number) for number in CUT
    ]

    _, archive = await export_fleet.run_export(path, format="MOT 1.1")
    gt = archive.read("gt/gt.txt").decode()
    assert [tuple(line.split(",")[:2]) for line in gt.splitlines()] == [
        ("2", "1"), ("3", "-1"), ("3", "1"), ("4", "1"),
    ]  # fmt: skip


@pytest.mark.parametrize("exporter", ["CVAT for images 1.1", "Datumaro 1.0"])
async def test_a_cut_videos_export_imports_back_onto_its_frames(
    export_fleet: ExportFleet, exporter: str
) -> None:
    task_id = await _cut_task(export_fleet)
    path = f"/api/tasks/{task_id}/dataset/export"
    _, archive = await export_fleet.run_export(path, format=exporter)
    member = "annotations.xml" if exporter.startswith("CVAT") else "annotations/default.json"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as upload:
        upload.writestr(member, archive.read(member))
    importer = "CVAT 1.1" if exporter.startswith("CVAT") else exporter
    client = export_fleet.export.client

    rq_id = await upload_and_import(
        client, f"tasks/{task_id}", buffer.getvalue(), "upload.zip", format=importer
    )
    ended = await export_fleet.wait(client, rq_id)

    assert ended["status"] == "finished", ended
    assert "Left out" not in ended["message"], ended
    _, again = await export_fleet.run_export(path, format=exporter)
    assert again.read(member).split(b"</meta>")[-1] == archive.read(member).split(b"</meta>")[-1]


async def test_a_cut_videos_cvat_for_video_export_imports_back_onto_its_frames(
    export_fleet: ExportFleet,
) -> None:
    task_id = await _cut_task(export_fleet)
    path = f"/api/tasks/{task_id}/dataset/export"
    _, archive = await export_fleet.run_export(path, format="CVAT for video 1.1")
    xml = archive.read("annotations.xml")
    client = export_fleet.export.client

    rq_id = await upload_and_import(
        client, f"tasks/{task_id}", xml, "annotations.xml", format="CVAT 1.1"
    )
    ended = await export_fleet.wait(client, rq_id)

    assert ended["status"] == "finished", ended
    assert "Left out" not in ended["message"], ended
    _, again = await export_fleet.run_export(path, format="CVAT for video 1.1")
    assert again.read("annotations.xml").split(b"</meta>")[-1] == xml.split(b"</meta>")[-1]
