"""Annotation imports end to end, as cvat-sdk sends them: Upload-Start, a TUS upload,
Upload-Finish, the request's progress and report, and the annotations stored."""

from __future__ import annotations

import base64
import io
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
import sqlalchemy as sa

from tessera.devstack.testing import Stack
from tessera.export.state import ExportState
from tessera.platform.requests import Operation

from .conftest import ExportFleet
from .test_export_flow import _annotations, _user_token

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


async def upload_and_import(
    client: httpx.AsyncClient, target: str, data: bytes, filename: str, **params: Any
) -> str:
    """The three steps of cvat-sdk's `import_annotations`; the request's id."""
    path = f"/api/{target}/annotations/"
    query = {"filename": filename, **params}
    started = await client.post(path, params=query, headers={"Upload-Start": ""})
    assert started.status_code == 202, started.text
    metadata = f"filename {base64.b64encode(filename.encode()).decode()}"
    created = await client.post(
        path,
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
                 "Upload-Metadata": metadata},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    location = httpx.URL(created.headers["Location"])
    offset = 0
    for chunk in (data[: len(data) // 2], data[len(data) // 2 :]):
        appended = await client.patch(
            location.path,
            content=chunk,
            headers={"Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
                     "Content-Type": "application/offset+octet-stream"},
        )  # fmt: skip
        assert appended.status_code == 204, appended.text
        offset += len(chunk)
    query["filename"] = created.headers["Upload-Filename"]
    finished = await client.post(path, params=query, headers={"Upload-Finish": ""})
    assert finished.status_code == 202, finished.text
    rq_id: str = finished.json()["rq_id"]
    return rq_id


def _objects(document: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """What a GET of annotations holds, without ids, for comparing two tasks."""

    def shape(s: dict[str, Any]) -> tuple[Any, ...]:
        return (s["type"], s["frame"], tuple(s["points"]), s["outside"], s["occluded"])

    return {
        "shapes": sorted(shape(s) for s in document["shapes"]),
        "tags": sorted((t["frame"],) for t in document["tags"]),
        "tracks": sorted(
            (t["frame"], tuple(shape(s) for s in t["shapes"])) for t in document["tracks"]
        ),
    }


async def test_cvat_xml_round_trips_into_an_empty_task(export_fleet: ExportFleet) -> None:
    source = await export_fleet.create_task(frames=3)
    await export_fleet.put_annotations(source, _annotations(await export_fleet.labels(source)))
    _, archive = await export_fleet.run_export(
        f"/api/tasks/{source}/dataset/export/", format="CVAT for images 1.1"
    )
    xml = archive.read("annotations.xml")
    target = await export_fleet.create_task(frames=3)

    client = export_fleet.export.client
    rq_id = await upload_and_import(
        client, f"tasks/{target}", xml, "annotations.xml", format="CVAT 1.1"
    )
    ended = await export_fleet.wait(client, rq_id)

    assert ended["status"] == "finished", ended
    assert ended["operation"]["type"] == "import:annotations"
    assert ended["operation"]["task_id"] == target
    # CVAT for images writes a track's frames as shapes of their images, as CVAT does
    assert ended["message"].startswith("Imported 1 tags, 5 shapes and 0 tracks"), ended

    _, again = await export_fleet.run_export(
        f"/api/tasks/{target}/dataset/export/", format="CVAT for images 1.1"
    )
    # the tasks' images come from folders of their own: the names differ by that
    renamed = xml.replace(f"task{source}/".encode(), f"task{target}/".encode())
    assert _without_meta(again.read("annotations.xml")) == _without_meta(renamed)


@pytest.mark.parametrize(
    ("exporter", "importer"),
    [
        ("CVAT for video 1.1", "CVAT 1.1"),
        ("COCO 1.0", "COCO 1.0"),
        ("Datumaro 1.0", "Datumaro 1.0"),
    ],
)
async def test_exports_round_trip_through_an_import(
    export_fleet: ExportFleet, exporter: str, importer: str
) -> None:
    source = await export_fleet.create_task(frames=3)
    await export_fleet.put_annotations(source, _annotations(await export_fleet.labels(source)))
    _, archive = await export_fleet.run_export(
        f"/api/tasks/{source}/dataset/export/", format=exporter
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as upload:
        for name in archive.namelist():
            upload.writestr(name, archive.read(name))
    target = await export_fleet.create_task(frames=3)
    client = export_fleet.export.client

    rq_id = await upload_and_import(
        client, f"tasks/{target}", buffer.getvalue(), "upload.zip", format=importer
    )
    ended = await export_fleet.wait(client, rq_id)

    assert ended["status"] == "finished", ended
    assert "Left out" not in ended["message"], ended
    _, again = await export_fleet.run_export(
        f"/api/tasks/{target}/dataset/export/", format=exporter
    )
    assert sorted(again.namelist()) == sorted(archive.namelist())
    for name in archive.namelist():
        before = archive.read(name).replace(f"task{source}/".encode(), f"task{target}/".encode())
        after = again.read(name)
        if name == "annotations.xml":
            before, after = _without_meta(before), _without_meta(after)
        assert after == before, name


def _without_meta(xml: bytes) -> bytes:
    """The annotations of a CVAT XML file, without its task meta (ids, names, dates)."""
    return xml[xml.index(b"</meta>") :]


async def test_append_keeps_what_is_there_and_skips_are_reported(
    export_fleet: ExportFleet,
) -> None:
    task_id = await export_fleet.create_task(frames=2)
    labels = await export_fleet.labels(task_id)
    await export_fleet.put_annotations(task_id, {"shapes": [
        {"type": "rectangle", "frame": 0, "label_id": labels["car"], "points": [1, 1, 5, 5]}
    ]})  # fmt: skip
    xml = b"""<annotations><version>1.1</version>
      <image id="0" name="f1.png" width="40" height="30">
        <box label="car" occluded="0" xtl="2" ytl="3" xbr="12" ybr="13" z_order="0"/>
        <box label="bus" occluded="0" xtl="2" ytl="3" xbr="12" ybr="13" z_order="0"/>
      </image>
      <image id="1" name="elsewhere.png" width="40" height="30">
        <box label="car" occluded="0" xtl="2" ytl="3" xbr="12" ybr="13" z_order="0"/>
      </image></annotations>"""
    client = export_fleet.export.client

    rq_id = await upload_and_import(
        client, f"tasks/{task_id}", xml, "a.xml", format="cvat 1.1", import_mode="append"
    )
    ended = await export_fleet.wait(client, rq_id)

    assert ended["status"] == "finished", ended
    assert "1 x a label the task does not have (bus)" in ended["message"]
    assert "1 x a frame the task does not have" in ended["message"]
    stored = (await export_fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert sorted((s["frame"], s["points"][0]) for s in stored["shapes"]) == [(0, 1.0), (1, 2.0)]

    strict = await upload_and_import(
        client, f"tasks/{task_id}", xml, "a.xml", format="CVAT 1.1", strict="true"
    )
    failed = await export_fleet.wait(client, strict)
    assert failed["status"] == "failed"
    assert "strict import" in failed["message"]
    unchanged = (await export_fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert len(unchanged["shapes"]) == 2


async def test_a_hostile_file_fails_and_changes_nothing(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=2)
    labels = await export_fleet.labels(task_id)
    await export_fleet.put_annotations(task_id, {"shapes": [
        {"type": "rectangle", "frame": 0, "label_id": labels["car"], "points": [1, 1, 5, 5]}
    ]})  # fmt: skip
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotations>&lol2;</annotations>"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("../../escape.xml", b"<annotations/>")
    client = export_fleet.export.client

    for data, name, reason in (
        (bomb, "bomb.xml", "is not XML Tessera reads"),
        (buffer.getvalue(), "escape.zip", "points outside the archive"),
    ):
        rq_id = await upload_and_import(client, f"tasks/{task_id}", data, name, format="CVAT 1.1")
        ended = await export_fleet.wait(client, rq_id)
        assert ended["status"] == "failed", ended
        assert reason in ended["message"]

    stored = (await export_fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert len(stored["shapes"]) == 1


async def test_bad_requests_are_refused_naming_the_field(export_fleet: ExportFleet) -> None:
    task_id = await export_fleet.create_task(frames=1)
    client = export_fleet.export.client
    path = f"/api/tasks/{task_id}/annotations/"

    unknown = await client.post(
        path, params={"format": "Nope 1.0", "filename": "a.xml"}, headers={"Upload-Finish": ""}
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "query.format"
    missing = await client.post(
        path, params={"format": "CVAT 1.1", "filename": "never.xml"},
        headers={"Upload-Finish": ""},
    )  # fmt: skip
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "query.filename"
    nowhere = await client.post(
        "/api/tasks/999999/annotations/", params={"format": "CVAT 1.1"},
        headers={"Upload-Start": ""},
    )  # fmt: skip
    assert nowhere.status_code == 404
    formats = (await client.get("/api/server/annotation/formats")).json()
    assert {"name": "CVAT 1.1", "ext": "XML, ZIP", "version": "1.1", "enabled": True,
            "dimension": "2D"} in formats["importers"]  # fmt: skip


async def test_upload_start_waits_for_the_callers_open_import(export_fleet: ExportFleet) -> None:
    """While an import the caller started into the target is queued or running, a new
    Upload-Start is refused (409, as CVAT does): it would delete or overwrite that
    import's file. Another target, or the request's end, lets it through."""
    task_id = await export_fleet.create_task(frames=1)
    other_id = await export_fleet.create_task(frames=1)
    client = export_fleet.export.client
    me = (await export_fleet.annotations.get("/api/users/self")).json()["id"]
    state = service_state_of(export_fleet)
    async with export_fleet.export.platform.database.transaction() as session:
        queued = await state.requests.create(  # a request no worker has taken yet
            session, Operation(type="import:annotations", target="task", task_id=task_id,
                               format="CVAT 1.1"),
            owner_id=me, organization_id=None,
        )  # fmt: skip
    path = f"/api/tasks/{task_id}/annotations/"
    query = {"format": "CVAT 1.1", "filename": "a.xml"}

    refused = await client.post(path, params=query, headers={"Upload-Start": ""})
    assert refused.status_code == 409, refused.text
    assert queued in refused.json()["detail"]
    finish = await client.post(path, params=query, headers={"Upload-Finish": ""})
    assert finish.status_code == 409, finish.text
    elsewhere = await client.post(
        f"/api/tasks/{other_id}/annotations/", params=query, headers={"Upload-Start": ""}
    )
    assert elsewhere.status_code == 202, elsewhere.text

    cancelled = await client.post(f"/api/requests/{queued}/cancel")
    assert cancelled.status_code < 300, cancelled.text
    rq_id = await upload_and_import(
        client, f"tasks/{task_id}", b"<annotations/>", "a.xml", format="CVAT 1.1"
    )
    assert (await export_fleet.wait(client, rq_id))["status"] == "finished"


async def test_an_import_deletes_its_file_before_it_ends(export_fleet: ExportFleet) -> None:
    """Once the SDK sees the request end it may upload the next file under the same name;
    the ended import must not delete that one."""
    task_id = await export_fleet.create_task(frames=1)
    client = export_fleet.export.client
    storage = export_fleet.export.platform.storage
    deleted_before_end: list[bool] = []
    original = storage.delete

    async def delete(key: str) -> None:
        listed = await client.get("/api/requests")
        open_imports = [r for r in listed.json()["results"]
                        if r["operation"]["type"] == "import:annotations"
                        and r["status"] in ("queued", "started")]  # fmt: skip
        deleted_before_end.append(bool(open_imports))
        await original(key)

    storage.delete = delete  # type: ignore[method-assign]
    try:
        rq_id = await upload_and_import(
            client, f"tasks/{task_id}", b"<annotations/>", "a.xml", format="CVAT 1.1"
        )
        assert (await export_fleet.wait(client, rq_id))["status"] == "finished"
    finally:
        storage.delete = original  # type: ignore[method-assign]
    assert deleted_before_end == [True]


def service_state_of(fleet: ExportFleet) -> ExportState:
    state = fleet.export.app.state.service
    assert isinstance(state, ExportState)
    return state


# -- from a cloud storage -----------------------------------------------------------------


@dataclass
class CloudBucket:
    """A bucket of the session's S3 server, registered with ingest as a cloud storage."""

    storage_id: int
    name: str
    s3: Any

    def put(self, key: str, data: bytes) -> None:
        """Write an object into the bucket."""
        self.s3.put_object(Bucket=self.name, Key=key, Body=data)

    def keys(self) -> set[str]:
        """The keys of the bucket's objects."""
        listed = self.s3.list_objects_v2(Bucket=self.name)
        return {item["Key"] for item in listed.get("Contents", ())}


async def cloud_bucket(fleet: ExportFleet, stack: Stack) -> CloudBucket:
    """A new bucket, registered as a cloud storage of the admin's."""
    name = f"customer-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client(
        "s3", endpoint_url=stack.s3.url, region_name="us-east-1",
        aws_access_key_id=stack.s3.access_key, aws_secret_access_key=stack.s3.secret_key,
    )  # fmt: skip
    s3.create_bucket(Bucket=name)
    storage = await fleet.ingest.post("/api/cloudstorages", json={
        "provider_type": "AWS_S3_BUCKET", "resource": name, "display_name": "imports",
        "credentials_type": "KEY_SECRET_KEY_PAIR", "key": stack.s3.access_key,
        "secret_key": stack.s3.secret_key,
        "specific_attributes": f"endpoint_url={stack.s3.url}&region=us-east-1",
    })  # fmt: skip
    assert storage.status_code == 201, storage.text
    return CloudBucket(storage.json()["id"], name, s3)


TWO_BOXES = b"""<annotations><version>1.1</version>
  <image id="0" name="f0.png" width="40" height="30">
    <box label="car" occluded="0" xtl="2" ytl="3" xbr="12" ybr="13" z_order="0"/>
  </image>
  <image id="1" name="f1.png" width="40" height="30">
    <box label="person" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>
  </image></annotations>"""


async def _import_from_cloud(
    fleet: ExportFleet, target: str, storage_id: int, key: str, **params: Any
) -> dict[str, Any]:
    """One POST with `location=cloud_storage`, as cvat-sdk's `create_annotations` sends
    it (no upload); the request once it has ended."""
    client = fleet.export.client
    started = await client.post(f"/api/{target}/annotations/", params={
        "format": "CVAT 1.1", "location": "cloud_storage", "cloud_storage_id": storage_id,
        "filename": key, **params,
    })  # fmt: skip
    assert started.status_code == 202, started.text
    assert started.headers["content-type"] == "application/json"
    return await fleet.wait(client, started.json()["rq_id"])


async def test_an_import_from_a_cloud_storage_object_leaves_the_object(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    task_id = await export_fleet.create_task(frames=2)
    bucket = await cloud_bucket(export_fleet, stack)
    bucket.put("labels/annotations.xml", TWO_BOXES)

    ended = await _import_from_cloud(
        export_fleet, f"tasks/{task_id}", bucket.storage_id, "labels/annotations.xml"
    )

    assert ended["status"] == "finished", ended
    assert ended["message"].startswith("Imported 0 tags, 2 shapes and 0 tracks"), ended
    assert ended["operation"]["type"] == "import:annotations"
    stored = (await export_fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert sorted((s["frame"], s["points"]) for s in stored["shapes"]) == [
        (0, [2.0, 3.0, 12.0, 13.0]), (1, [1.0, 1.0, 5.0, 5.0])
    ]  # fmt: skip
    assert bucket.keys() == {"labels/annotations.xml"}  # the caller's object stays

    jobs = await export_fleet.annotations.get("/api/jobs", params={"task_id": task_id})
    job_id = jobs.json()["results"][0]["id"]
    appended = await _import_from_cloud(
        export_fleet, f"jobs/{job_id}", bucket.storage_id, "labels/annotations.xml",
        import_mode="append",
    )  # fmt: skip
    assert appended["status"] == "finished", appended
    assert appended["operation"]["job_id"] == job_id
    again = (await export_fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert len(again["shapes"]) == 4

    missing = await _import_from_cloud(
        export_fleet, f"tasks/{task_id}", bucket.storage_id, "labels/nope.xml"
    )
    assert missing["status"] == "failed", missing
    assert "'labels/nope.xml' of cloud storage" in missing["message"], missing
    assert "does not exist" in missing["message"], missing
    unchanged = (await export_fleet.annotations.get(f"/api/tasks/{task_id}/annotations")).json()
    assert len(unchanged["shapes"]) == 4
    assert bucket.keys() == {"labels/annotations.xml"}


async def _requests(fleet: ExportFleet) -> int:
    """How many requests the export service has recorded."""
    table = service_state_of(fleet).requests.table
    async with fleet.export.platform.database.transaction() as session:
        count = await session.scalar(sa.select(sa.func.count()).select_from(table))
    return count or 0


async def test_a_cloud_storage_import_is_refused_before_any_request_is_made(
    export_fleet: ExportFleet, stack: Stack
) -> None:
    """Missing parameters (400 naming them), a storage the caller does not see (404, as
    ingest answers it) and an open import of the caller's (409) are refused before any
    request is recorded."""
    bucket = await cloud_bucket(export_fleet, stack)
    token = await _user_token(export_fleet, "cloudless")
    as_user = {"Authorization": f"Bearer {token}"}
    own = await export_fleet.annotations.post(
        "/api/tasks", json={"name": "mine", "labels": [{"name": "car"}]}, headers=as_user
    )
    assert own.status_code == 201, own.text
    task_id = await export_fleet.create_task(frames=1)
    client = export_fleet.export.client
    path = f"/api/tasks/{task_id}/annotations/"
    cloud: dict[str, Any] = {
        "format": "CVAT 1.1", "location": "cloud_storage",
        "cloud_storage_id": bucket.storage_id, "filename": "a.xml",
    }  # fmt: skip
    before = await _requests(export_fleet)

    for left_out in ("cloud_storage_id", "filename", "format"):
        query = {name: value for name, value in cloud.items() if name != left_out}
        refused = await client.post(path, params=query)
        assert refused.status_code == 400, (left_out, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == f"query.{left_out}"
    unknown = await client.post(path, params={**cloud, "cloud_storage_id": bucket.storage_id + 99})
    assert unknown.status_code == 404, unknown.text
    not_theirs = await export_fleet.export.anonymous.post(
        f"/api/tasks/{own.json()['id']}/annotations/", params=cloud, headers=as_user
    )
    assert not_theirs.status_code == 404, not_theirs.text
    assert await _requests(export_fleet) == before

    me = (await export_fleet.annotations.get("/api/users/self")).json()["id"]
    async with export_fleet.export.platform.database.transaction() as session:
        queued = await service_state_of(export_fleet).requests.create(
            session, Operation(type="import:annotations", target="task", task_id=task_id,
                               format="CVAT 1.1"),
            owner_id=me, organization_id=None,
        )  # fmt: skip
    second = await client.post(path, params=cloud)
    assert second.status_code == 409, second.text
    assert queued in second.json()["detail"]
    assert await _requests(export_fleet) == before + 1
