"""Requests that name no `location` use the object's default storage, as CVAT's
`get_location_configuration` decides it: an export or a backup goes to the project's or
task's `target_storage` (a job's task's), an import comes from its `source_storage`; no
default storage (or a local one) is the local path, and an explicit `location` wins."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest

from tessera.devstack.testing import Stack
from tessera.gateway.routing import routing_table

from .conftest import ExportFleet
from .test_export_flow import _user_token
from .test_import_flow import TWO_BOXES, CloudBucket, cloud_bucket, upload_and_import

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _in(bucket: CloudBucket) -> dict[str, Any]:
    """A default storage that is the bucket's cloud storage."""
    return {"location": "cloud_storage", "cloud_storage_id": bucket.storage_id}


def _archive(bucket: CloudBucket, key: str) -> zipfile.ZipFile:
    body = bucket.s3.get_object(Bucket=bucket.name, Key=key)["Body"].read()
    return zipfile.ZipFile(io.BytesIO(body))


async def _ended(fleet: ExportFleet, started: httpx.Response) -> dict[str, Any]:
    assert started.status_code == 202, started.text
    return await fleet.wait(fleet.export.client, started.json()["rq_id"])


async def test_an_export_without_location_goes_to_the_target_storage(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """The archive is written into the task's target storage under `filename` (or the
    generated name), and the finished request has no `result_url`, as CVAT answers; a
    job's export and the task's backup go there too; `location=local` downloads."""
    bucket = await cloud_bucket(export_fleet, stack)
    task_id = await export_fleet.create_task(frames=2, segment_size=1, target_storage=_in(bucket))
    client = export_fleet.export.client
    path = f"/api/tasks/{task_id}/dataset/export"

    # what cvat-sdk's `task.export_dataset(...)` sends for a task whose target storage is
    # a cloud storage: no location, the file's path as `filename`
    ended = await _ended(export_fleet, await client.post(path, params={
        "format": "COCO 1.0", "filename": "/out/coco.zip",
    }))  # fmt: skip
    assert ended["status"] == "finished", ended
    assert ended["result_url"] is None
    assert _archive(bucket, "out/coco.zip").namelist() == ["annotations/instances_default.json"]

    generated = await _ended(export_fleet, await client.post(path, params={"format": "YOLO 1.1"}))
    assert generated["status"] == "finished", generated
    assert generated["result_url"] is None
    (yolo,) = bucket.keys() - {"out/coco.zip"}
    assert yolo.startswith(f"task_{task_id}_annotations_")
    assert yolo.endswith("_yolo_1.1.zip")

    jobs = await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})
    job_id = jobs.json()["results"][0]["id"]
    job = await _ended(export_fleet, await client.post(
        f"/api/jobs/{job_id}/dataset/export",
        params={"format": "CVAT for images 1.1", "filename": "job.zip"},
    ))  # fmt: skip
    assert (job["status"], job["result_url"]) == ("finished", None), job
    assert "annotations.xml" in _archive(bucket, "job.zip").namelist()

    backup = await _ended(export_fleet, await client.post(
        f"/api/tasks/{task_id}/backup/export", params={"filename": "backup.zip"}
    ))  # fmt: skip
    assert (backup["status"], backup["result_url"]) == ("finished", None), backup
    assert "task.json" in _archive(bucket, "backup.zip").namelist()

    before = bucket.keys()
    local, archive = await export_fleet.run_export(path, format="COCO 1.0", location="local")
    assert f"/api/tasks/{task_id}/dataset/download?rq_id=" in local["result_url"]
    assert archive.namelist() == ["annotations/instances_default.json"]
    assert bucket.keys() == before


async def test_projects_use_their_own_storage_and_tasks_theirs(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """A project's export and backup go to its target storage; a task of it without a
    storage of its own is local (CVAT reads the task's, never its project's: its UI
    copies the project's into the tasks it creates); none at all: local, as before."""
    bucket = await cloud_bucket(export_fleet, stack)
    project = await export_fleet.annotations.post("/api/projects", json={
        "name": "stored", "labels": [{"name": "car"}, {"name": "person"}],
        "target_storage": _in(bucket),
    })  # fmt: skip
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    task_id = await export_fleet.create_task(frames=1, project_id=project_id, labels=[])
    client = export_fleet.export.client

    exported = await _ended(export_fleet, await client.post(
        f"/api/projects/{project_id}/dataset/export",
        params={"format": "Datumaro 1.0", "filename": "project.zip"},
    ))  # fmt: skip
    assert (exported["status"], exported["result_url"]) == ("finished", None), exported
    assert "annotations/default.json" in _archive(bucket, "project.zip").namelist()
    backup = await _ended(export_fleet, await client.post(
        f"/api/projects/{project_id}/backup/export", params={"filename": "project-backup.zip"}
    ))  # fmt: skip
    assert (backup["status"], backup["result_url"]) == ("finished", None), backup
    assert "project.json" in _archive(bucket, "project-backup.zip").namelist()

    task, _ = await export_fleet.run_export(
        f"/api/tasks/{task_id}/dataset/export", format="COCO 1.0"
    )
    assert task["result_url"] is not None
    plain = await export_fleet.create_task(frames=1)
    alone, _ = await export_fleet.run_export(
        f"/api/tasks/{plain}/dataset/export", format="COCO 1.0"
    )
    assert alone["result_url"] is not None
    assert bucket.keys() == {"project.zip", "project-backup.zip"}


async def test_an_import_without_location_reads_the_source_storage(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """One POST without `location` (CVAT's UI with its default settings) imports the
    object `filename` of the task's source storage (a job's task's); the steps of an
    upload (cvat-sdk's `import_annotations`) stay an upload."""
    bucket = await cloud_bucket(export_fleet, stack)
    bucket.put("labels/annotations.xml", TWO_BOXES)
    task_id = await export_fleet.create_task(frames=2, source_storage=_in(bucket))
    client = export_fleet.export.client
    path = f"/api/tasks/{task_id}/annotations/"

    ended = await _ended(export_fleet, await client.post(
        path, params={"format": "CVAT 1.1", "filename": "labels/annotations.xml"}
    ))  # fmt: skip
    assert ended["status"] == "finished", ended
    assert ended["message"].startswith("Imported 0 tags, 2 shapes and 0 tracks"), ended
    stored = (await export_fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert len(stored["shapes"]) == 2
    assert bucket.keys() == {"labels/annotations.xml"}

    jobs = await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})
    job_id = jobs.json()["results"][0]["id"]
    appended = await _ended(export_fleet, await client.post(
        f"/api/jobs/{job_id}/annotations/",
        params={"format": "CVAT 1.1", "filename": "labels/annotations.xml",
                "import_mode": "append"},
    ))  # fmt: skip
    assert (appended["status"], appended["operation"]["job_id"]) == ("finished", job_id)
    stored = (await export_fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert len(stored["shapes"]) == 4

    rq_id = await upload_and_import(
        client, f"tasks/{task_id}", TWO_BOXES, "upload.xml", format="CVAT 1.1"
    )
    uploaded = await export_fleet.wait(client, rq_id)
    assert uploaded["status"] == "finished", uploaded
    stored = (await export_fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert len(stored["shapes"]) == 2  # replaced by the uploaded file

    missing = await client.post(path, params={"format": "CVAT 1.1"})
    assert missing.status_code == 400, missing.text
    assert missing.json()["errors"][0]["field"] == "query.filename"
    assert f"source_storage of task {task_id}" in missing.json()["detail"]
    plain = await export_fleet.create_task(frames=1)
    local = await client.post(
        f"/api/tasks/{plain}/annotations/", params={"format": "CVAT 1.1", "filename": "a.xml"}
    )
    assert local.status_code == 400, local.text  # the local path: an upload's steps
    assert local.json()["errors"][0]["field"].endswith("header.Upload-Finish")


async def test_a_project_dataset_import_reads_the_project_source_storage(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """Without `location`, the archive is the object `filename` of the project's source
    storage (one that is not there fails the request, naming the storage)."""
    bucket = await cloud_bucket(export_fleet, stack)
    project = await export_fleet.annotations.post("/api/projects", json={
        "name": "imported", "labels": [{"name": "car"}], "source_storage": _in(bucket),
    })  # fmt: skip
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]

    ended = await _ended(export_fleet, await export_fleet.export.client.post(
        f"/api/projects/{project_id}/dataset/",
        params={"format": "COCO 1.0", "filename": "datasets/none.zip"},
    ))  # fmt: skip

    assert ended["status"] == "failed", ended
    assert ended["operation"]["type"] == "import:dataset"
    assert f"'datasets/none.zip' of cloud storage {bucket.storage_id}" in ended["message"]


async def test_a_default_storage_that_cannot_be_used_is_refused(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """A default cloud storage without its id: 400 naming `location`; one the caller does
    not see: their 404, saying that it is the default one (CVAT: "A cloud storage is
    selected as the default location")."""
    bucket = await cloud_bucket(export_fleet, stack)
    client = export_fleet.export.client
    no_id = await export_fleet.create_task(frames=1, target_storage={"location": "cloud_storage"})
    refused = await client.post(f"/api/tasks/{no_id}/dataset/export", params={"format": "COCO 1.0"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["errors"][0]["field"] == "query.location"
    explicit, _ = await export_fleet.run_export(
        f"/api/tasks/{no_id}/dataset/export", format="COCO 1.0", location="local"
    )
    assert explicit["result_url"] is not None

    token = await _user_token(export_fleet, "defaulted")
    as_user = {"Authorization": f"Bearer {token}"}
    own = await export_fleet.annotations.post("/api/tasks", headers=as_user, json={
        "name": "theirs", "labels": [{"name": "car"}], "target_storage": _in(bucket),
    })  # fmt: skip
    assert own.status_code == 201, own.text
    not_seen = await export_fleet.export.anonymous.post(
        f"/api/tasks/{own.json()['id']}/dataset/export", params={"format": "COCO 1.0"},
        headers=as_user,
    )  # fmt: skip
    assert not_seen.status_code == 404, not_seen.text
    assert "selected as the default location" in not_seen.json()["detail"]


async def test_a_cloud_import_without_format_is_refused_naming_it(
    export_fleet: ExportFleet,
) -> None:
    """The gateway sends a POST to `/api/{tasks|jobs}/{id}/annotations` without `format`
    to the annotations service (one with it goes to export); it answers 400 naming
    `query.format`, as CVAT refuses an import without a format, not 405; 404 for a task
    the caller does not see."""
    task_id = await export_fleet.create_task(frames=1)
    jobs = await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})
    job_id = jobs.json()["results"][0]["id"]
    cloud = {"location": "cloud_storage", "cloud_storage_id": "1", "filename": "a.zip"}
    table = routing_table()

    for path in (f"/api/tasks/{task_id}/annotations/", f"/api/jobs/{job_id}/annotations"):
        assert table.service_for(path, cloud) == "annotations"
        assert table.service_for(path, {**cloud, "format": "CVAT 1.1"}) == "export"
        refused = await export_fleet.annotations.post(path, params=cloud)
        assert refused.status_code == 400, (path, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == "query.format"
        at_export = await export_fleet.export.client.post(path, params=cloud)
        assert at_export.status_code == 400, at_export.text
        assert at_export.json()["errors"][0]["field"] == "query.format"

    token = await _user_token(export_fleet, "formatless")
    unseen = await export_fleet.annotations.post(
        f"/api/tasks/{task_id}/annotations", params=cloud,
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert unseen.status_code == 404, unseen.text
