"""Export requests end to end: annotations and ingest on sockets, the export service's
queue, worker, archive upload, request progress and download."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import datumaro as dm  # type: ignore[import-untyped]
import httpx
import nats
import orjson
import pytest
import sqlalchemy as sa
from pycocotools.coco import COCO

from tessera.devstack.servers import free_port
from tessera.devstack.testing import Stack
from tessera.export.expiry import ExpiredExports
from tessera.export.formats.registry import EXPORTERS
from tessera.export.queue import EXPORTS
from tessera.export.state import ExportState
from tessera.ingest.testing import png_bytes
from tessera.platform.auth import ensure_token, ensure_user
from tessera.platform.bus import ACTOR_HEADER
from tessera.platform.contracts.export import EXPORT_FINISHED, EXPORT_STREAM

from .conftest import ExportFleet

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _annotations(labels: dict[str, int]) -> dict[str, Any]:
    car, person = labels["car"], labels["person"]
    return {
        "shapes": [
            {"type": "rectangle", "frame": 0, "label_id": car, "points": [1, 2, 11, 12],
             "attributes": []},
            {"type": "polygon", "frame": 1, "label_id": person,
             "points": [5, 5, 20, 5, 20, 20, 5, 20], "attributes": []},
        ],
        "tags": [{"frame": 2, "label_id": car, "attributes": []}],
        "tracks": [
            {"frame": 0, "label_id": person, "attributes": [], "shapes": [
                {"type": "rectangle", "frame": 0, "points": [0, 0, 10, 10], "attributes": []},
                {"type": "rectangle", "frame": 2, "points": [10, 10, 20, 20], "attributes": []},
            ]},
        ],
    }  # fmt: skip


def _coco(archive: zipfile.ZipFile, member: str) -> COCO:
    coco = COCO()
    coco.dataset = json.loads(archive.read(member))
    coco.createIndex()
    return coco


async def test_task_export_in_coco_is_read_by_pycocotools(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=3)
    await export_fleet.put_annotations(task_id, _annotations(await export_fleet.labels(task_id)))

    ended, archive = await export_fleet.run_export(
        f"/api/tasks/{task_id}/dataset/export/", format="COCO 1.0"
    )

    assert ended["progress"] == 1.0
    assert ended["operation"]["type"] == "export:annotations"
    assert ended["operation"]["task_id"] == task_id
    assert ended["operation"]["format"] == "COCO 1.0"
    assert ended["result_url"].startswith("http://")
    assert f"/api/tasks/{task_id}/dataset/download?rq_id=" in ended["result_url"]
    assert archive.namelist() == ["annotations/instances_default.json"]
    coco = _coco(archive, "annotations/instances_default.json")
    assert [image["file_name"] for image in coco.dataset["images"]] == [
        f"task{task_id}/f0.png", f"task{task_id}/f1.png", f"task{task_id}/f2.png"
    ]  # fmt: skip
    # the box and the polygon, and the track on frames 0, 1 (interpolated) and 2
    assert len(coco.getAnnIds()) == 5
    polygons = [ann for ann in coco.loadAnns(coco.getAnnIds()) if ann["segmentation"]]
    assert len(polygons) == 1  # boxes have no segmentation, as CVAT writes them
    assert coco.annToMask(polygons[0]).sum() == polygons[0]["area"]


async def test_images_are_copied_as_they_are(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=2)

    ended, archive = await export_fleet.run_export(
        f"/api/tasks/{task_id}/dataset/export", format="Datumaro 1.0", save_images="true"
    )

    assert ended["operation"]["type"] == "export:dataset"
    assert archive.read(f"images/default/task{task_id}/f0.png") == png_bytes(0, (40, 30))
    assert archive.read(f"images/default/task{task_id}/f1.png") == png_bytes(1, (40, 30))
    items = json.loads(archive.read("annotations/default.json"))["items"]
    assert [item["id"] for item in items] == [f"task{task_id}/f0", f"task{task_id}/f1"]


async def test_annotated_frames_only(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=4)
    labels = await export_fleet.labels(task_id)
    await export_fleet.put_annotations(task_id, {"shapes": [
        {"type": "rectangle", "frame": 2, "label_id": labels["car"], "points": [1, 2, 11, 12],
         "attributes": []},
    ]})  # fmt: skip

    _, archive = await export_fleet.run_export(
        f"/api/tasks/{task_id}/dataset/export", format="COCO 1.0", frames="annotated",
        save_images="true",
    )  # fmt: skip

    coco = _coco(archive, "annotations/instances_default.json")
    assert [image["file_name"] for image in coco.dataset["images"]] == [f"task{task_id}/f2.png"]
    assert [name for name in archive.namelist() if name.startswith("images/")] == [
        f"images/default/task{task_id}/f2.png"
    ]


async def test_an_unchanged_export_is_reused_until_the_annotations_change(
    export_fleet: ExportFleet,
) -> None:
    task_id = await export_fleet.create_task(frames=2)
    path = f"/api/tasks/{task_id}/dataset/export"
    first, archive = await export_fleet.run_export(path, format="CVAT for images 1.1")
    second, again = await export_fleet.run_export(path, format="CVAT for images 1.1")
    assert first["id"] != second["id"]
    objects = await _object_keys(export_fleet)
    assert len(objects) == 1  # the second request reused the first one's archive
    assert again.read("annotations.xml") == archive.read("annotations.xml")

    labels = await export_fleet.labels(task_id)
    await export_fleet.put_annotations(task_id, {"shapes": [
        {"type": "rectangle", "frame": 1, "label_id": labels["car"], "points": [1, 2, 11, 12],
         "attributes": []},
    ]})  # fmt: skip
    _, changed = await export_fleet.run_export(path, format="CVAT for images 1.1")
    assert b"<box " in changed.read("annotations.xml")
    assert len(await _object_keys(export_fleet)) == 2


async def _object_keys(fleet: ExportFleet) -> set[str]:
    async with fleet.export.platform.database.transaction() as session:
        found = await session.scalars(
            sa.text("SELECT DISTINCT object_key FROM export.exports WHERE object_key IS NOT NULL")
        )
        return set(found)


async def test_the_same_export_while_queued_is_answered_with_its_request_and_can_be_cancelled(
    export_fleet: ExportFleet,
) -> None:
    task_id = await export_fleet.create_task(frames=1)
    state = export_fleet.export.app.state.service
    assert isinstance(state, ExportState)
    await state.workers.stop()  # nothing runs: the requests stay queued
    path = f"/api/tasks/{task_id}/dataset/export"

    first = await export_fleet.start(path, format="COCO 1.0")
    assert await export_fleet.start(path, format="coco 1.0") == first
    other = await export_fleet.start(path, format="COCO 1.0", save_images="true")
    assert other != first

    cancelled = await export_fleet.export.client.post(f"/api/requests/{first}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    status = (await export_fleet.export.client.get(f"/api/requests/{first}")).json()
    assert status["status"] == "failed"
    assert status["message"] == "Cancelled by admin."
    again = await export_fleet.export.client.delete(f"/api/requests/{first}")
    assert again.status_code == 409
    assert await export_fleet.start(path, format="COCO 1.0") != first

    listed = (await export_fleet.export.client.get("/api/requests")).json()
    assert listed["count"] == 3
    assert {item["id"] for item in listed["results"]} >= {first, other}

    state.workers.start()
    assert (await export_fleet.wait(export_fleet.export.client, other))["status"] == "finished"
    assert (await export_fleet.export.client.get(f"/api/requests/{first}")).json()[
        "status"
    ] == "failed"


async def _read_stream(
    stack: Stack, subject: str, count: int
) -> list[tuple[dict[str, Any], str | None]]:
    """The messages of `subject` on the EXPORT stream (payload, actor header), read until
    `count` came, and for a moment longer so that one too many would show."""
    connection = await nats.connect(stack.nats.url, token=stack.nats.token)
    found: list[tuple[dict[str, Any], str | None]] = []
    try:
        reader = await connection.jetstream().pull_subscribe(subject, stream=EXPORT_STREAM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len(found) < count and loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                for msg in await reader.fetch(count, timeout=0.5):
                    found.append((orjson.loads(msg.data), (msg.headers or {}).get(ACTOR_HEADER)))
        with contextlib.suppress(TimeoutError):
            for msg in await reader.fetch(1, timeout=1.0):
                found.append((orjson.loads(msg.data), (msg.headers or {}).get(ACTOR_HEADER)))
    finally:
        await connection.close()
    return found


async def _finished_events(stack: Stack, count: int) -> list[tuple[dict[str, Any], str | None]]:
    """The `export.finished` events so far (`count` of them expected)."""
    return await _read_stream(stack, EXPORT_FINISHED, count)


async def test_finished_and_failed_exports_publish_export_finished_cancelled_ones_not(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """Once each, by the user who asked; the annotations service's webhooks send it as
    `finish:export` to the hooks of the exported job's project."""
    client = export_fleet.export.client
    admin = (await export_fleet.annotations.get("/api/users/self")).json()["id"]
    project = await export_fleet.annotations.post(
        "/api/projects", json={"name": "p", "labels": [{"name": "car"}]}
    )
    project_id = project.json()["id"]
    task_id = await export_fleet.create_task(
        frames=3, segment_size=2, project_id=project_id, labels=[]
    )
    jobs = (await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    job_id = min(jobs["results"], key=lambda job: job["start_frame"])["id"]
    empty = (await export_fleet.annotations.post("/api/projects", json={"name": "empty"})).json()
    media_less = await export_fleet.annotations.post(
        "/api/tasks", json={"name": "no media", "project_id": empty["id"]}
    )
    assert media_less.status_code == 201, media_less.text
    # a delivery is recorded whether or not it reaches its target
    hook = await export_fleet.annotations.post("/api/webhooks", json={
        "target_url": f"http://127.0.0.1:{free_port()}/nobody", "type": "project",
        "project_id": project_id, "events": ["finish:export"],
    })  # fmt: skip
    assert hook.status_code == 201, hook.text

    state = export_fleet.export.app.state.service
    assert isinstance(state, ExportState)
    await state.workers.stop()
    cancelled = await export_fleet.start(f"/api/tasks/{task_id}/dataset/export", format="COCO 1.0")
    assert (await client.post(f"/api/requests/{cancelled}/cancel")).status_code == 200
    state.workers.start()
    finished = await export_fleet.wait(client, await export_fleet.start(
        f"/api/jobs/{job_id}/dataset/export", format="COCO 1.0", filename="job-export"
    ))  # fmt: skip
    failed = await export_fleet.wait(client, await export_fleet.start(
        f"/api/projects/{empty['id']}/dataset/export", format="CVAT for images 1.1",
        filename="project-export",
    ))  # fmt: skip
    assert (finished["status"], failed["status"]) == ("finished", "failed")

    events = await _finished_events(stack, 2)
    assert events == [
        ({
            "rq_id": finished["id"], "status": "finished", "message": None, "format": "COCO 1.0",
            "target": "job", "task_id": task_id, "project_id": project_id, "job_id": job_id,
            "organization_id": None, "result_url": finished["result_url"], "location": "local",
            "cloud_storage_id": None, "filename": "job-export.zip",
        }, str(admin)),
        ({
            "rq_id": failed["id"], "status": "failed",
            "message": "The project has no task with media to export.",
            "format": "CVAT for images 1.1", "target": "project", "task_id": None,
            "project_id": empty["id"], "job_id": None, "organization_id": None,
            "result_url": None, "location": "local", "cloud_storage_id": None,
            "filename": "project-export.zip",
        }, str(admin)),
    ]  # fmt: skip
    deliveries = f"/api/webhooks/{hook.json()['id']}/deliveries"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not (delivered := (await export_fleet.annotations.get(deliveries)).json())["count"]:
        assert loop.time() < deadline, "no delivery of finish:export"
        await asyncio.sleep(0.1)
    (delivery,) = delivered["results"]
    assert delivery["event"] == "finish:export"
    sent = delivery["request"]
    expected = (finished["id"], job_id, admin)
    assert (sent["export"]["id"], sent["export"]["job_id"], sent["sender"]["id"]) == expected


async def test_an_export_finished_by_clearing_an_interrupted_attempt_publishes_once(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """An attempt that recorded its archive and died before ending its request: the next
    delivery's `clear` finishes it, with its event; a delivery after that adds none."""
    task_id = await export_fleet.create_task(frames=1)
    ended, _ = await export_fleet.run_export(
        f"/api/tasks/{task_id}/dataset/export", format="COCO 1.0"
    )
    ((event, _),) = await _finished_events(stack, 1)
    async with export_fleet.export.platform.database.transaction() as session:
        await session.execute(
            sa.text("UPDATE export.requests SET status = 'started' WHERE id = :id"),
            {"id": ended["id"]},
        )
    ((payload, _),) = await _read_stream(stack, EXPORTS.subject, 1)
    assert payload.pop("rq_id") == ended["id"]
    state = export_fleet.export.app.state.service
    assert isinstance(state, ExportState)

    await state.workers.handler.clear(ended["id"], payload)
    await state.workers.handler.clear(ended["id"], payload)

    assert [data for data, _ in await _finished_events(stack, 2)] == [event, event]


async def test_job_export_has_the_jobs_frames(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=5, segment_size=2)
    jobs = (await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    second = sorted(jobs["results"], key=lambda job: job["start_frame"])[1]

    _, archive = await export_fleet.run_export(
        f"/api/jobs/{second['id']}/dataset/export", format="COCO 1.0"
    )

    coco = _coco(archive, "annotations/instances_default.json")
    assert [image["file_name"] for image in coco.dataset["images"]] == [
        f"task{task_id}/f2.png", f"task{task_id}/f3.png"
    ]  # fmt: skip


async def test_project_export_has_each_tasks_subset(export_fleet: ExportFleet) -> None:
    created = await export_fleet.annotations.post(
        "/api/projects", json={"name": "p", "labels": [{"name": "car"}]}
    )
    project_id = created.json()["id"]
    train = await export_fleet.create_task(frames=2, project_id=project_id, subset="Train",
                                           labels=[])  # fmt: skip
    validation_task = await export_fleet.create_task(
        frames=1, project_id=project_id, subset="Validation", labels=[]
    )
    car = (await export_fleet.labels(train))["car"]
    await export_fleet.put_annotations(train, {"shapes": [
        {"type": "rectangle", "frame": 1, "label_id": car, "points": [1, 2, 11, 12],
         "attributes": []},
    ]})  # fmt: skip

    ended, archive = await export_fleet.run_export(
        f"/api/projects/{project_id}/dataset/export", format="COCO 1.0"
    )

    assert ended["operation"]["project_id"] == project_id
    assert sorted(archive.namelist()) == [
        "annotations/instances_Train.json", "annotations/instances_Validation.json"
    ]  # fmt: skip
    train_coco = _coco(archive, "annotations/instances_Train.json")
    assert [image["file_name"] for image in train_coco.dataset["images"]] == [
        f"task{train}/f0.png", f"task{train}/f1.png"
    ]  # fmt: skip
    assert len(train_coco.getAnnIds()) == 1
    validation = _coco(archive, "annotations/instances_Validation.json")
    assert [image["file_name"] for image in validation.dataset["images"]] == [
        f"task{validation_task}/f0.png"
    ]


async def test_bad_requests_name_the_parameter(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=1)
    client = export_fleet.export.client
    unknown = await client.post(f"/api/tasks/{task_id}/dataset/export", params={"format": "PNG"})
    assert unknown.status_code == 400
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["errors"][0]["field"] == "query.format"
    missing = await client.post(f"/api/tasks/{task_id}/dataset/export")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "query.format"
    nowhere = await client.post(f"/api/tasks/{task_id + 100}/dataset/export",
                                params={"format": "COCO 1.0"})  # fmt: skip
    assert nowhere.status_code == 404
    anonymous = await export_fleet.export.anonymous.post(
        f"/api/tasks/{task_id}/dataset/export", params={"format": "COCO 1.0"}
    )
    assert anonymous.status_code == 401
    wrong = await client.get(f"/api/tasks/{task_id}/dataset/download", params={"rq_id": "nope"})
    assert wrong.status_code == 404


async def test_another_user_cannot_see_or_download_an_export(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=1)
    ended, _ = await export_fleet.run_export(f"/api/tasks/{task_id}/dataset/export",
                                         format="COCO 1.0")  # fmt: skip
    token = await _user_token(export_fleet, "stranger")
    stranger = export_fleet.export.anonymous
    as_stranger = {"Authorization": f"Bearer {token}"}
    seen = await stranger.get(f"/api/requests/{ended['id']}", headers=as_stranger)
    assert seen.status_code == 404
    url = httpx.URL(ended["result_url"])
    downloaded = await stranger.get(url.path, params=url.params, headers=as_stranger)
    assert downloaded.status_code == 404
    export = await stranger.post(
        f"/api/tasks/{task_id}/dataset/export", params={"format": "COCO 1.0"}, headers=as_stranger
    )
    assert export.status_code == 404


async def _user_token(fleet: ExportFleet, username: str) -> str:
    token = f"tsr_{username}-token-0123456789abcdefghijklmnop"
    async with fleet.export.platform.database.transaction() as session:
        user_id = await ensure_user(
            session, username=username, email=f"{username}@example.com", password="a-password"
        )
        await ensure_token(session, owner_id=user_id, name="test", token=token)
    return token


async def test_formats_list_the_exporters(export_fleet: ExportFleet) -> None:
    formats = (await export_fleet.export.client.get("/api/server/annotation/formats/")).json()
    names = {item["name"] for item in formats["exporters"]}
    assert {"COCO 1.0", "CVAT for images 1.1", "Datumaro 1.0"} <= names
    coco = next(item for item in formats["exporters"] if item["name"] == "COCO 1.0")
    assert coco == {"name": "COCO 1.0", "ext": "ZIP", "version": "1.0", "enabled": True,
                    "dimension": "2D"}  # fmt: skip
    assert {importer["name"] for importer in formats["importers"]} >= {"CVAT 1.1"}


async def test_expired_archives_are_deleted(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=1)
    ended, _ = await export_fleet.run_export(f"/api/tasks/{task_id}/dataset/export",
                                         format="COCO 1.0")  # fmt: skip
    platform = export_fleet.export.platform
    async with platform.database.transaction() as session:
        await session.execute(
            sa.text("UPDATE export.exports SET expiry_date = now() - interval '1 second'")
        )
    sweep = ExpiredExports(platform.database, platform.storage, 60)
    assert await sweep.sweep() == 1
    assert [key async for key, _ in platform.storage.list_keys("exports/")] == []
    url = httpx.URL(ended["result_url"])
    gone = await export_fleet.export.client.get(url.path, params=url.params)
    assert gone.status_code == 404
    assert "expired" in gone.json()["detail"]


async def test_every_format_exports_a_task_with_its_images(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=3)
    labels = await export_fleet.labels(task_id)
    await export_fleet.put_annotations(task_id, _annotations(labels))
    formats = (await export_fleet.export.client.get("/api/server/annotation/formats")).json()
    assert len(formats["exporters"]) == len(EXPORTERS)
    names = [item["name"] for item in formats["exporters"] if item["dimension"] == "2D"]

    for name in names:
        ended, archive = await export_fleet.run_export(
            f"/api/tasks/{task_id}/dataset/export", format=name, save_images="true"
        )
        assert ended["operation"]["format"] == name
        images = [
            member for member in archive.namelist() if member.endswith((".png", ".PNG"))
            and archive.read(member) in {png_bytes(index, (40, 30)) for index in range(3)}
        ]  # fmt: skip
        assert images, f"{name}: no original image in {archive.namelist()}"
        assert archive.testzip() is None


async def test_export_into_a_cloud_storage(export_fleet: ExportFleet, stack: Stack) -> None:
    task_id = await export_fleet.create_task(frames=2)
    bucket = f"customer-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client(
        "s3", endpoint_url=stack.s3.url, region_name="us-east-1",
        aws_access_key_id=stack.s3.access_key, aws_secret_access_key=stack.s3.secret_key,
    )  # fmt: skip
    s3.create_bucket(Bucket=bucket)
    storage = await export_fleet.ingest.post("/api/cloudstorages", json={
        "provider_type": "AWS_S3_BUCKET", "resource": bucket, "display_name": "exports",
        "credentials_type": "KEY_SECRET_KEY_PAIR", "key": stack.s3.access_key,
        "secret_key": stack.s3.secret_key,
        "specific_attributes": f"endpoint_url={stack.s3.url}&region=us-east-1",
    })  # fmt: skip
    assert storage.status_code == 201, storage.text
    storage_id = storage.json()["id"]
    path = f"/api/tasks/{task_id}/dataset/export"

    ended = await export_fleet.wait(export_fleet.export.client, await export_fleet.start(
        path, format="Datumaro 1.0", save_images="true", location="cloud_storage",
        cloud_storage_id=storage_id, filename="exports/task.zip",
    ))  # fmt: skip

    assert ended["status"] == "finished", ended
    assert ended["result_url"] is None  # as CVAT: the archive is in the bucket
    ((event, _),) = await _finished_events(stack, 1)
    expected = ("cloud_storage", storage_id, "exports/task.zip")
    assert (event["location"], event["cloud_storage_id"], event["filename"]) == expected
    assert (event["status"], event["result_url"], event["task_id"]) == ("finished", None, task_id)
    written = s3.get_object(Bucket=bucket, Key="exports/task.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(written)) as archive:
        assert archive.read(f"images/default/task{task_id}/f1.png") == png_bytes(1, (40, 30))

    client = export_fleet.export.client
    missing = await client.post(path, params={"format": "COCO 1.0", "location": "cloud_storage"})
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "query.cloud_storage_id"
    unknown = await client.post(path, params={
        "format": "COCO 1.0", "location": "cloud_storage", "cloud_storage_id": storage_id + 10
    })  # fmt: skip
    assert unknown.status_code == 404


def _pcd(seed: int, points: int) -> bytes:
    """An ASCII PCD file of `points` points (x y z)."""
    header = (
        "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
        f"WIDTH {points}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {points}\nDATA ascii\n"
    )
    return (header + "".join(f"{seed} {i} {-i / 4}\n" for i in range(points))).encode()


async def _point_cloud_task(fleet: ExportFleet, files: dict[str, bytes]) -> int:
    """A 3D task of the files (point clouds and context images) put in the share, its labels
    a cuboid `car` and a tag `rain`; its id."""
    created = await fleet.annotations.post("/api/tasks", json={"name": "drive", "labels": [
        {"name": "car", "type": "cuboid", "attributes": [
            {"name": "parked", "mutable": True, "input_type": "checkbox", "default_value": "false",
             "values": ["false"]},
        ]},
        {"name": "rain", "type": "tag"},
    ]})  # fmt: skip
    assert created.status_code == 201, created.text
    task_id: int = created.json()["id"]
    for name, data in files.items():
        path = fleet.share / f"drive{task_id}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    sent = await fleet.ingest.post(
        f"/api/tasks/{task_id}/data/",
        json={"image_quality": 70, "server_files": [f"drive{task_id}/"]},
    )
    assert sent.status_code == 202, sent.text
    assert (await fleet.wait(fleet.ingest, sent.json()["rq_id"]))["status"] == "finished"
    return task_id


def _box(x: float) -> list[float]:
    """A 3D cuboid's points: position (x, 1, 0.5), rotation about z 0.25, scale 4 x 2 x 1.5."""
    return [x, 1.0, 0.5, 0.0, 0.0, 0.25, 4.0, 2.0, 1.5, 0, 0, 0, 0, 0, 0, 0]


async def test_point_cloud_task_in_the_3d_formats_with_its_images(
    export_fleet: ExportFleet, tmp_path: Path
) -> None:
    clouds = {"pointcloud/a.pcd": _pcd(1, 4), "pointcloud/b.pcd": _pcd(2, 5),
              "pointcloud/c.pcd": _pcd(3, 6)}  # fmt: skip
    context = {"related_images/a_pcd/front.png": png_bytes(4),
               "related_images/a_pcd/back.png": png_bytes(5)}  # fmt: skip
    task_id = await _point_cloud_task(export_fleet, {**clouds, **context})
    labels = await export_fleet.labels(task_id)
    await export_fleet.put_annotations(task_id, {
        "shapes": [{"type": "cuboid", "frame": 1, "label_id": labels["car"], "points": _box(9),
                    "occluded": True, "attributes": []}],
        "tags": [{"frame": 2, "label_id": labels["rain"], "attributes": []}],
        "tracks": [{"frame": 0, "label_id": labels["car"], "attributes": [], "shapes": [
            {"type": "cuboid", "frame": 0, "points": _box(2), "attributes": []},
            {"type": "cuboid", "frame": 2, "points": _box(6), "outside": True, "attributes": []},
        ]}],
    })  # fmt: skip
    path = f"/api/tasks/{task_id}/dataset/export"
    refused = await export_fleet.export.client.post(path, params={"format": "COCO 1.0"})
    assert refused.status_code == 400
    assert "does not take 3D tasks" in refused.json()["detail"]

    _, kitti = await export_fleet.run_export(
        path, format="Kitti Raw Format 1.0", save_images="true"
    )
    assert sorted(kitti.namelist()) == [
        "frame_list.txt", "image_00/data/a.jpg", "image_01/data/a.jpg", "tracklet_labels.xml",
        "velodyne_points/data/a.pcd", "velodyne_points/data/b.pcd", "velodyne_points/data/c.pcd",
    ]  # fmt: skip
    assert kitti.read("frame_list.txt") == b"0 a\n1 b\n2 c\n"
    for name in ("a", "b", "c"):
        assert kitti.read(f"velodyne_points/data/{name}.pcd") == clouds[f"pointcloud/{name}.pcd"]
    # context images as ingest serves them, JPEGs, sorted by name: back, then front
    assert all(kitti.read(f"image_0{i}/data/a.jpg")[:2] == b"\xff\xd8" for i in (0, 1))
    kitti.extractall(tmp_path / "kitti")
    read = dm.Dataset.import_from(str(tmp_path / "kitti"), "kitti_raw")
    # the track on frames 0 and 1 (interpolated), the plain cuboid on frame 1
    found = sorted((item.id, ann.position[0]) for item in read for ann in item.annotations)
    assert found == [("a", 2.0), ("b", 4.0), ("b", 9.0)]
    (a,) = [item for item in read if item.id == "a"]
    assert len(a.media.extra_images) == 2

    _, sly = await export_fleet.run_export(
        path, format="Sly Point Cloud Format 1.0", save_images="true"
    )
    related = "ds0/related_images/a_pcd"
    assert sorted(sly.namelist()) == [
        "ds0/ann/a.pcd.json", "ds0/ann/b.pcd.json", "ds0/ann/c.pcd.json",
        "ds0/pointcloud/a.pcd", "ds0/pointcloud/b.pcd", "ds0/pointcloud/c.pcd",
        f"{related}/back.jpg", f"{related}/back.jpg.json", f"{related}/front.jpg",
        f"{related}/front.jpg.json", "key_id_map.json", "meta.json",
    ]  # fmt: skip
    assert sly.read("ds0/pointcloud/b.pcd") == clouds["pointcloud/b.pcd"]
    assert json.loads(sly.read(f"{related}/front.jpg.json"))["name"] == "front.jpg"
    first = json.loads(sly.read("ds0/ann/a.pcd.json"))
    task = (await export_fleet.annotations.get(f"/api/tasks/{task_id}")).json()
    created = str(datetime.fromisoformat(task["created_date"].replace("Z", "+00:00")))
    assert first["tags"][0]["createdAt"] == created
    assert first["figures"][0]["geometry"]["rotation"] == {"x": 0.0, "y": 0.0, "z": 0.25}
    sly.extractall(tmp_path / "sly")
    read = dm.Dataset.import_from(str(tmp_path / "sly"), "sly_pointcloud")
    objects = sorted(
        (item.id, ann.position[0], ann.attributes["track_id"], ann.attributes["occluded"])
        for item in read
        for ann in item.annotations
    )
    assert objects == [("a", 2.0, 1, False), ("b", 4.0, 1, False), ("b", 9.0, 2, True)]
