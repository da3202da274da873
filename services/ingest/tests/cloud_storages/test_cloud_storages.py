"""Cloud storages: the resource, tasks made from a bucket, and what a bucket refuses.

The customer's bucket is a real S3 endpoint on 127.0.0.1 (the session's rclone server),
which cloud storages may reach only because these tests allow 127.0.0.0/8; permissions
are checked by moto, which evaluates IAM policies like AWS does.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tessera.ingest.cloud_storages.bucket import BucketConfig, CloudBucket, CloudError
from tessera.ingest.creation.sources import cloud_path
from tessera.ingest.media.errors import MediaError
from tessera.ingest.tables import cloud_storages, secrets
from tessera.ingest.testing import Fleet, client_with_token, png_bytes

Bucket = Any  # conftest.Bucket
PolicyServer = Any  # conftest.PolicyServer


async def _storage(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    response = await fleet.ingest.client.post("/api/cloudstorages", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_storage_keeps_its_keys_encrypted_and_never_returns_them(
    fleet: Fleet, customer_bucket: Bucket, enrol: Any
) -> None:
    customer_bucket.put("set/a.png", png_bytes(1))
    customer_bucket.put("set/b.mp4", b"not really")
    customer_bucket.put("set/deeper/c.png", png_bytes(2))
    customer_bucket.put("top.png", png_bytes(3))
    client = fleet.ingest.client
    created = await _storage(fleet, customer_bucket.storage_body(description="frames"))
    assert "key" not in created
    assert "secret_key" not in created
    assert created["owner"]["username"] == "admin"
    assert (created["resource"], created["credentials_type"], created["organization"]) == (
        customer_bucket.name, "KEY_SECRET_KEY_PAIR", None,
    )  # fmt: skip
    storage_id = created["id"]

    async with fleet.ingest.platform.database.transaction() as session:
        row = (
            await session.execute(
                sa.select(cloud_storages).where(cloud_storages.c.id == storage_id)
            )
        ).one()
        ciphertext = await session.scalar(
            sa.select(secrets.c.ciphertext).where(secrets.c.id == row.secret_id)
        )
    assert ciphertext is not None
    assert customer_bucket.secret_key.encode() not in ciphertext

    listed = (await client.get("/api/cloudstorages")).json()
    assert [s["id"] for s in listed["results"]] == [storage_id]
    assert "secret_key" not in listed["results"][0]
    assert (await client.get(f"/api/cloudstorages/{storage_id}/status")).json() == "AVAILABLE"
    top = (await client.get(f"/api/cloudstorages/{storage_id}/content-v2")).json()
    assert top == {
        "content": [
            {"name": "set", "type": "DIR", "mime_type": "DIR"},
            {"name": "top.png", "type": "REG", "mime_type": "image"},
        ],
        "next": None,
    }
    inner = await client.get(
        f"/api/cloudstorages/{storage_id}/content-v2", params={"prefix": "set/", "page_size": 2}
    )
    page = inner.json()
    # S3 pages count keys and folders together, in key order.
    assert [(e["name"], e["mime_type"]) for e in page["content"]] == [
        ("a.png", "image"),
        ("b.mp4", "video"),
    ]
    assert page["next"]
    rest = await client.get(
        f"/api/cloudstorages/{storage_id}/content-v2",
        params={"prefix": "set/", "next_token": page["next"]},
    )
    assert rest.json() == {
        "content": [{"name": "deeper", "type": "DIR", "mime_type": "DIR"}],
        "next": None,
    }

    renamed = await client.patch(
        f"/api/cloudstorages/{storage_id}", json={"display_name": "renamed"}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["display_name"] == "renamed"
    wrong_key = await client.patch(
        f"/api/cloudstorages/{storage_id}", json={"key": "AKIAWRONG", "secret_key": "nope"}
    )
    assert wrong_key.status_code == 422
    assert wrong_key.json()["errors"][0]["field"] == "body.resource"
    assert (await client.get(f"/api/cloudstorages/{storage_id}/status")).json() == "AVAILABLE"

    stranger = await enrol(fleet.ingest, "stranger")
    assert (await stranger.client.get(f"/api/cloudstorages/{storage_id}")).status_code == 404
    assert (await stranger.client.get("/api/cloudstorages")).json()["count"] == 0
    assert (await stranger.client.delete(f"/api/cloudstorages/{storage_id}")).status_code == 404
    assert (await fleet.ingest.anonymous.get("/api/cloudstorages")).status_code == 401

    assert (await client.delete(f"/api/cloudstorages/{storage_id}")).status_code == 204
    assert (await client.get(f"/api/cloudstorages/{storage_id}")).status_code == 404
    async with fleet.ingest.platform.database.transaction() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(secrets)) == 0


async def test_bad_storages_are_refused_naming_the_field(
    fleet: Fleet, customer_bucket: Bucket
) -> None:
    client = fleet.ingest.client
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"provider_type": "GOOGLE_CLOUD_STORAGE"}, "body.provider_type", "AWS_S3_BUCKET"),
        ({"credentials_type": "KEY_FILE_PATH"}, "body.credentials_type", "KEY_SECRET_KEY_PAIR"),
        ({"resource": "Not_A_Bucket"}, "body.resource", "bucket name"),
        ({"secret_key": None}, "body", "needs both key and secret_key"),
        ({"specific_attributes": "colour=blue"}, "body.specific_attributes", "unknown attribute"),
        (
            {"specific_attributes": "endpoint_url=http://169.254.169.254"},
            "body.specific_attributes",
            "internal address 169.254.169.254",
        ),
        ({"secret_key": "wrong"}, "body.resource", "credentials were not accepted"),
        ({"resource": "no-such-bucket-here"}, "body.resource", "does not exist"),
        ({"manifests": ["missing/manifest.jsonl"]}, "body.resource", "missing/manifest.jsonl"),
    ]
    for change, field, words in cases:
        response = await client.post(
            "/api/cloudstorages", json=customer_bucket.storage_body(**change)
        )
        assert response.status_code == 422, (change, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        error = response.json()["errors"][0]
        assert error["field"] == field, (change, error)
        assert words in error["message"], (change, error)
    assert (await client.get("/api/cloudstorages")).json()["count"] == 0


@pytest.mark.parametrize("use_cache", [False, True])
async def test_a_task_reads_its_images_from_the_bucket_without_copy_data(
    fleet: Fleet, customer_bucket: Bucket, use_cache: bool
) -> None:
    images = {f"frames/{i:02d}.png": png_bytes(i, (40, 30)) for i in range(5)}
    for key, data in images.items():
        customer_bucket.put(key, data)
    customer_bucket.put("frames/skip.png", png_bytes(9))
    customer_bucket.put("elsewhere/other.png", png_bytes(8))
    storage = await _storage(fleet, customer_bucket.storage_body())
    task_id = await fleet.create_task(segment_size=3)
    request = await fleet.send_data(
        task_id, cloud_storage_id=storage["id"], server_files=["frames/"],
        server_files_exclude=["frames/skip.png"], chunk_size=2, use_cache=use_cache,
    )  # fmt: skip
    assert request["status"] == "finished", request["message"]

    meta = (await fleet.get_data(f"/api/tasks/{task_id}/data/meta")).json()
    assert [f["name"] for f in meta["frames"]] == list(images)
    assert (meta["storage"], meta["cloud_storage_id"]) == ("cloud_storage", storage["id"])
    for number, data in enumerate(images.values()):
        frame = await fleet.get_data(
            f"/api/tasks/{task_id}/data", type="frame", number=number, quality="original"
        )
        assert frame.content == data
    chunk = await fleet.get_data(
        f"/api/tasks/{task_id}/data", type="chunk", number=1, quality="original"
    )
    with zipfile.ZipFile(io.BytesIO(chunk.content)) as archive:
        assert [archive.read(n) for n in archive.namelist()] == list(images.values())[2:4]
    stored = [key async for key, _ in fleet.ingest.platform.storage.list_keys(f"tasks/{task_id}/")]
    assert not any("/originals/" in key for key in stored)
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    assert sorted((j["start_frame"], j["stop_frame"]) for j in jobs["results"]) == [(0, 2), (3, 4)]

    in_use = await fleet.ingest.client.delete(f"/api/cloudstorages/{storage['id']}")
    assert in_use.status_code == 409
    assert str(task_id) in in_use.json()["detail"]


async def test_copy_data_keeps_a_copy_independent_of_the_bucket(
    fleet: Fleet, customer_bucket: Bucket
) -> None:
    images = {f"{i}.png": png_bytes(i) for i in range(3)}
    for key, data in images.items():
        customer_bucket.put(key, data)
    storage = await _storage(fleet, customer_bucket.storage_body())
    task_id = await fleet.create_task()
    request = await fleet.send_data(
        task_id, cloud_storage_id=storage["id"], server_files=list(images), copy_data=True
    )
    assert request["status"] == "finished", request["message"]
    for key in images:
        customer_bucket.client.delete_object(Bucket=customer_bucket.name, Key=key)
    meta = (await fleet.get_data(f"/api/tasks/{task_id}/data/meta")).json()
    assert meta["storage"] == "local"
    frame = await fleet.get_data(
        f"/api/tasks/{task_id}/data", type="frame", number=2, quality="original"
    )
    assert frame.content == images["2.png"]
    assert (
        await fleet.ingest.client.delete(f"/api/cloudstorages/{storage['id']}")
    ).status_code == 204


async def test_cloud_task_failures_name_the_object_and_leave_nothing(
    fleet: Fleet, customer_bucket: Bucket, enrol: Any
) -> None:
    customer_bucket.put("ok.png", png_bytes(1))
    customer_bucket.put("broken.png", png_bytes(2)[:30])
    storage = await _storage(fleet, customer_bucket.storage_body())
    task_id = await fleet.create_task()
    missing = await fleet.send_data(
        task_id, cloud_storage_id=storage["id"], server_files=["ok.png", "gone.png"]
    )
    assert missing["status"] == "failed"
    assert f"s3://{customer_bucket.name}/gone.png" in missing["message"]
    assert "does not exist" in missing["message"]
    broken = await fleet.send_data(
        task_id, cloud_storage_id=storage["id"], server_files=["ok.png", "broken.png"]
    )
    assert broken["status"] == "failed"
    assert "broken.png" in broken["message"]
    empty = await fleet.send_data(
        task_id, cloud_storage_id=storage["id"], server_files=["nothing/"]
    )
    assert empty["status"] == "failed"
    assert "no files in the bucket" in empty["message"]
    assert [k async for k, _ in fleet.ingest.platform.storage.list_keys(f"tasks/{task_id}/")] == []
    assert (await fleet.ingest.client.get(f"/api/tasks/{task_id}/data/meta")).status_code == 404

    no_files = await fleet.ingest.client.post(
        f"/api/tasks/{task_id}/data/", json={"image_quality": 70, "cloud_storage_id": storage["id"]}
    )
    assert no_files.status_code == 422
    assert no_files.json()["errors"][0]["field"] == "body"
    stranger = await enrol(fleet.ingest, "stranger")
    theirs = await fleet.create_task()
    await fleet.annotations.patch(f"/api/tasks/{theirs}", json={"owner_id": stranger.id})
    hidden = await stranger.client.post(
        f"/api/tasks/{theirs}/data/",
        json={"image_quality": 70, "cloud_storage_id": storage["id"], "server_files": ["ok.png"]},
    )
    assert hidden.status_code == 422, hidden.text
    assert hidden.json()["errors"][0]["field"] == "body.cloud_storage_id"


async def test_missing_permissions_are_named(fleet: Fleet, policy_server: PolicyServer) -> None:
    client = fleet.ingest.client
    no_list = await client.post("/api/cloudstorages", json=policy_server.storage_body("get-only"))
    assert no_list.status_code == 422
    message = no_list.json()["errors"][0]["message"]
    assert "ListObjectsV2 was denied" in message
    assert "s3:ListBucket" in message

    list_only = await _storage(fleet, policy_server.storage_body("list-only"))
    task_id = await fleet.create_task()
    by_folder = await fleet.send_data(
        task_id, cloud_storage_id=list_only["id"], server_files=["set/"]
    )
    assert by_folder["status"] == "failed"
    assert "GetObject was denied" in by_folder["message"]
    assert "s3:GetObject" in by_folder["message"]
    assert "s3://guarded/set/" in by_folder["message"]
    by_key = await fleet.send_data(
        task_id, cloud_storage_id=list_only["id"], server_files=["set/1.png"]
    )
    assert by_key["status"] == "failed"
    assert "s3://guarded/set/1.png: HeadObject was denied" in by_key["message"]
    assert "s3:GetObject" in by_key["message"]

    allowed = await _storage(fleet, policy_server.storage_body("list-and-get"))
    done = await fleet.send_data(task_id, cloud_storage_id=allowed["id"], server_files=["set/"])
    assert done["status"] == "finished", done["message"]
    frame = await fleet.get_data(
        f"/api/tasks/{task_id}/data", type="frame", number=1, quality="original"
    )
    assert frame.content == png_bytes(1)


async def test_an_object_that_changes_after_listing_is_not_read(
    customer_bucket: Bucket, tmp_path: Path
) -> None:
    customer_bucket.put("a.png", png_bytes(1))
    config = BucketConfig(
        bucket=customer_bucket.name, endpoint_url=customer_bucket.endpoint_url,
        key=customer_bucket.key, secret_key=customer_bucket.secret_key,
    )  # fmt: skip
    async with CloudBucket(config) as bucket:
        (listed,) = [info async for info in bucket.list_all("")]
        customer_bucket.put("a.png", png_bytes(1) + b"trailing bytes")
        with pytest.raises(CloudError, match="changed size") as raised:
            await bucket.download(listed, tmp_path / "a.png")
        assert raised.value.file == f"s3://{customer_bucket.name}/a.png"
        customer_bucket.put("a.png", png_bytes(2, (32, 24)))
        same_size = await bucket.head("a.png")
        customer_bucket.put("a.png", png_bytes(3, (32, 24)))
        if same_size.size == (await bucket.head("a.png")).size:
            with pytest.raises(CloudError, match="ETag changed"):
                await bucket.download(same_size, tmp_path / "a.png")


@pytest.mark.parametrize("key", ["../escape.png", "/absolute.png", "a/../../b.png"])
def test_object_keys_that_leave_the_working_folder_are_refused(key: str, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot be a file name"):
        cloud_path(tmp_path, key)
    assert cloud_path(tmp_path, f"ok/{uuid.uuid4().hex}.png").is_relative_to(tmp_path)


async def test_organization_storages_follow_the_members_roles(
    fleet: Fleet, customer_bucket: Bucket, enrol: Any, annotations_url: str
) -> None:
    alice, mary, walt = [await enrol(fleet.ingest, n) for n in ("alice", "mary", "walt")]
    lab = {"X-Organization": "lab"}

    async with client_with_token(annotations_url, alice.token) as as_alice:
        assert (await as_alice.post("/api/organizations", json={"slug": "lab"})).status_code == 201
        for person, role in ((mary, "supervisor"), (walt, "worker")):
            invited = await as_alice.post(
                "/api/invitations",
                json={"role": role, "email": f"{person.username}@example.com"},
                headers=lab,
            )
            assert invited.status_code == 201, invited.text
            async with client_with_token(annotations_url, person.token) as as_person:
                key = invited.json()["key"]
                accepted = await as_person.post(f"/api/invitations/{key}/accept")
                assert accepted.status_code == 200, accepted.text

    body = customer_bucket.storage_body()
    made = await alice.client.post("/api/cloudstorages", json=body, headers=lab)
    assert made.status_code == 201, made.text
    storage_id = made.json()["id"]
    assert made.json()["organization"] is not None
    assert (await alice.client.get("/api/cloudstorages")).json()["count"] == 0  # personal

    listed = await mary.client.get("/api/cloudstorages", headers=lab)
    assert [s["id"] for s in listed.json()["results"]] == [storage_id]
    renamed = await mary.client.patch(
        f"/api/cloudstorages/{storage_id}", json={"display_name": "x"}, headers=lab
    )
    assert renamed.status_code == 403
    assert (await mary.client.post("/api/cloudstorages", json=body, headers=lab)).status_code == 403

    assert (await walt.client.get("/api/cloudstorages", headers=lab)).json()["count"] == 0
    hidden = await walt.client.get(f"/api/cloudstorages/{storage_id}", headers=lab)
    assert hidden.status_code == 404
    outsider = await mary.client.get(f"/api/cloudstorages/{storage_id}")  # no organization
    assert outsider.status_code == 404
    removed = await alice.client.delete(f"/api/cloudstorages/{storage_id}", headers=lab)
    assert removed.status_code == 204


async def test_the_export_service_reads_an_object_through_the_storage(
    fleet: Fleet, customer_bucket: Bucket, enrol: Any
) -> None:
    data = bytes(range(256)) * 40_000  # several blocks
    customer_bucket.put("labels/annotations.json", data)
    storage = await _storage(fleet, customer_bucket.storage_body())
    path = f"/api/internal/cloudstorages/{storage['id']}/objects"

    read = await fleet.ingest.client.get(path, params={"key": "labels/annotations.json"})
    assert read.status_code == 200, read.text
    assert read.content == data

    missing = await fleet.ingest.client.get(path, params={"key": "labels/none.json"})
    assert missing.status_code == 404
    assert "labels/none.json" in missing.json()["detail"]
    assert missing.headers["content-type"] == "application/problem+json"
    reader = await enrol(fleet.ingest, "reader")
    refused = await reader.client.get(path, params={"key": "labels/annotations.json"})
    assert refused.status_code == 403
