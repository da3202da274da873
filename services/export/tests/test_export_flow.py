"""Export requests end to end: annotations and ingest on sockets, the export service's
queue, worker, archive upload, request progress and download."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
import sqlalchemy as sa
from pycocotools.coco import COCO

from tessera.devstack.testing import Stack
from tessera.export.expiry import ExpiredExports
from tessera.export.formats.registry import EXPORTERS
from tessera.export.state import ExportState
from tessera.ingest.testing import png_bytes
from tessera.platform.auth import ensure_token, ensure_user

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
    assert formats["importers"] == []


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
    names = [item["name"] for item in formats["exporters"]]
    assert len(names) == len(EXPORTERS)

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
