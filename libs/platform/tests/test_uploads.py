"""CVAT's upload protocol (`tessera.platform.uploads`) as a service mounts it, against the
real PostgreSQL and S3 of the test session: TUS creation, resuming from HEAD, refusals,
byte-exact joins, Upload-Start forgetting what was abandoned, and one user's uploads
kept from another."""

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from tessera.devstack.testing import Enrol, Person, ServiceHandle, run_app
from tessera.platform.auth import CurrentUser
from tessera.platform.db import Database, DbSession
from tessera.platform.errors import Problem
from tessera.platform.service import Platform, ServiceSpec, create_service_app, service_state
from tessera.platform.settings import PlatformSettings
from tessera.platform.uploads import (
    Uploads,
    create_uploads_table,
    tus_created,
    tus_creation,
    tus_router,
    upload_step,
)

SCHEMA = "uploads_test"
MAX_LENGTH = 10_000
MAX_CHUNK = 1_000
TUS = {"Tus-Resumable": "1.0.0"}


def _store(request: Request) -> Uploads:
    return service_state(request, Uploads)


async def _thing_files(thing_id: int) -> str:
    """The access check of the test service: nobody may upload to thing 0."""
    if thing_id == 0:
        raise Problem(403, "Nobody may change thing 0.")
    return f"things/{thing_id}"


router = APIRouter()


@router.post("/api/things/{thing_id}/files", status_code=202)
async def post_files(
    thing_id: int,
    request: Request,
    *,
    principal: CurrentUser,
    session: DbSession,
    owner: Annotated[str, Depends(_thing_files)],
    store: Annotated[Uploads, Depends(_store)],
) -> Response:
    """The service's own POST: every step, and at the end, what the files are."""
    step = upload_step(request)
    if step == "start":
        await store.start(session, owner)
        return Response(status_code=202)
    if step == "create":
        asked = tus_creation(request, max_length=MAX_LENGTH)
        upload = await store.create(session, owner, principal.user_id, asked)
        return tus_created(request, upload, f"/api/things/{thing_id}/files")
    if step == "multiple":
        form = await request.form()
        await store.add_files(session, owner, principal.user_id, form.multi_items())
        return Response(status_code=200)
    one = await store.file(session, owner, request.query_params.get("filename"), principal.user_id)
    files = [upload.filename for upload in await store.files(session, owner)]
    pending = [upload.filename for upload in await store.pending(session, owner)]
    body = {"key": one.object_key, "metadata": one.metadata, "files": files, "pending": pending}
    return JSONResponse(body, status_code=202)


router.include_router(tus_router("/api/things/{thing_id}/files", _thing_files, _store))


@asynccontextmanager
async def _running(platform: Platform) -> AsyncIterator[Uploads]:
    yield Uploads(platform.storage, SCHEMA, max_chunk=MAX_CHUNK)


@pytest.fixture
async def svc(database_url: str, service_settings: dict[str, Any]) -> AsyncIterator[ServiceHandle]:
    """A service with the upload protocol at `/api/things/{id}/files`, its table made as a
    migration makes it."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
            await connection.run_sync(
                lambda sync: create_uploads_table(
                    Operations(MigrationContext.configure(sync)), SCHEMA
                )
            )
    finally:
        await database.dispose()
    spec = ServiceSpec(
        name="things",
        schema=SCHEMA,
        version="0",
        description="a service that takes files as CVAT's clients send them",
        migrations=Path(__file__).parent,
        routers=(router,),
        lifespan=_running,
    )
    async with run_app(create_service_app(spec, PlatformSettings(**service_settings))) as handle:
        yield handle


def _metadata(filename: str) -> str:
    return f"filename {base64.b64encode(filename.encode()).decode()},kind "


async def _create(client: httpx.AsyncClient, length: int, name: str, thing: int = 7) -> str:
    """A TUS upload of `length` bytes; its URL."""
    created = await client.post(
        f"/api/things/{thing}/files/",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": _metadata(name)},
    )
    assert created.status_code == 201, created.text
    assert created.headers["Upload-Offset"] == "0"
    return created.headers["Location"]


async def _patch(client: httpx.AsyncClient, url: str, offset: int, data: bytes) -> httpx.Response:
    return await client.patch(
        url,
        content=data,
        headers={**TUS, "Upload-Offset": str(offset),
                 "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip


async def _offset(client: httpx.AsyncClient, url: str) -> int:
    head = await client.head(url, headers=TUS)
    assert head.status_code == 200, head.status_code
    assert head.headers["Tus-Resumable"] == "1.0.0"
    return int(head.headers["Upload-Offset"])


async def _keys(svc: ServiceHandle, prefix: str) -> list[str]:
    return [key async for key, _ in svc.platform.storage.list_keys(prefix)]


async def test_a_tus_upload_resumes_from_head_and_joins_its_parts_byte_exactly(
    svc: ServiceHandle,
) -> None:
    client = svc.client
    payload = os.urandom(2_345)
    assert (
        await client.post("/api/things/7/files/", headers={"Upload-Start": ""})
    ).status_code == 202
    created = await client.post(
        "/api/things/7/files/",
        headers={**TUS, "Upload-Length": str(len(payload)),
                 "Upload-Metadata": _metadata("C:\\Users\\me\\annotations.zip"),
                 "X-Forwarded-Host": "cvat.example.org", "X-Forwarded-Proto": "https"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.headers["Upload-Filename"] == "annotations.zip"  # the base name
    url = created.headers["Location"]
    # on the address the client used (the gateway's), never the service's own
    assert url.startswith("https://cvat.example.org/api/things/7/files/")
    url = url.replace("https://cvat.example.org", "")
    upload_id = uuid.UUID(url.rsplit("/", 1)[1])

    options = await client.options("/api/things/7/files/")
    assert options.status_code == 204
    assert (options.headers["Tus-Version"], options.headers["Tus-Extension"]) == (
        "1.0.0",
        "creation",
    )

    first = await _patch(client, url, 0, payload[:1_000])
    assert first.status_code == 204, first.text
    assert first.headers["Upload-Offset"] == "1000"
    # A client that lost the answer asks where to go on, as cvat-sdk does after an error.
    assert await _offset(client, url) == 1_000
    head = await client.head(url, headers=TUS)
    assert head.headers["Upload-Length"] == str(len(payload))
    unfinished = await client.post(
        "/api/things/7/files/",
        params={"filename": "annotations.zip"},
        headers={"Upload-Finish": ""},
    )
    assert unfinished.status_code == 422
    assert "did not finish (1000 of 2345 bytes)" in unfinished.text
    offset = await _offset(client, url)
    while offset < len(payload):
        sent = await _patch(client, url, offset, payload[offset : offset + 1_000])
        assert sent.status_code == 204, sent.text
        offset = int(sent.headers["Upload-Offset"])
    assert offset == len(payload)
    # complete: HEAD says so, and an empty PATCH at the end changes nothing
    assert await _offset(client, url) == len(payload)
    assert (await _patch(client, url, len(payload), b"")).status_code == 204

    finished = await client.post(
        "/api/things/7/files/",
        params={"filename": "annotations.zip"},
        headers={"Upload-Finish": ""},
    )
    assert finished.status_code == 202, finished.text
    body = finished.json()
    assert body == {
        "key": "things/7/uploads/annotations.zip",
        "metadata": {"filename": "C:\\Users\\me\\annotations.zip", "kind": ""},
        "files": ["annotations.zip"],
        "pending": [],
    }
    assert await svc.platform.storage.get(body["key"]) == payload
    assert await _keys(svc, f"things/7/parts/{upload_id}/") == []  # the parts are gone


async def test_bad_offsets_lengths_and_headers_are_refused_as_tus_says(svc: ServiceHandle) -> None:
    client = svc.client
    url = await _create(client, 1_500, "a.bin")
    ahead = await _patch(client, url, 5, b"x")
    assert ahead.status_code == 409
    assert ahead.headers["Upload-Offset"] == "0"  # where to go on from
    assert (await _patch(client, url, 0, b"x" * 600)).status_code == 204
    behind = await _patch(client, url, 0, b"x")
    assert behind.status_code == 409
    assert behind.headers["Upload-Offset"] == "600"
    over_length = await _patch(client, url, 600, b"x" * 901)
    assert over_length.status_code == 413
    assert await _offset(client, url) == 600  # nothing of a refused chunk is kept
    no_offset = await client.patch(
        url, content=b"x", headers={**TUS, "Content-Type": "application/offset+octet-stream"}
    )
    assert no_offset.status_code == 422
    plain = await client.patch(url, content=b"x", headers={**TUS, "Upload-Offset": "600"})
    assert plain.status_code == 415
    old = await client.patch(
        url,
        content=b"x",
        headers={"Tus-Resumable": "0.2.2", "Upload-Offset": "600",
                 "Content-Type": "application/offset+octet-stream"},
    )  # fmt: skip
    assert old.status_code == 412
    assert old.headers["Tus-Version"] == "1.0.0"
    assert (await _patch(client, url, 600, b"x" * 900)).status_code == 204

    big = await _create(client, MAX_LENGTH, "big.bin")
    too_big_chunk = await _patch(client, big, 0, b"x" * (MAX_CHUNK + 1))
    assert too_big_chunk.status_code == 413
    over_limit = await client.post(
        "/api/things/7/files/",
        headers={**TUS, "Upload-Length": str(MAX_LENGTH + 1), "Upload-Metadata": _metadata("c")},
    )
    assert over_limit.status_code == 413
    unnamed = await client.post(
        "/api/things/7/files/", headers={**TUS, "Upload-Length": "3", "Upload-Metadata": "kind "}
    )
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["field"] == "header.Upload-Metadata"
    again = await client.post(
        "/api/things/7/files/",
        headers={**TUS, "Upload-Length": "3", "Upload-Metadata": _metadata("dir/a.bin")},
    )
    assert again.status_code == 409  # a.bin is taken
    missing = f"/api/things/7/files/{uuid.uuid4()}"
    assert (await client.head(missing, headers=TUS)).status_code == 404
    assert (await client.head(url.replace("/7/", "/8/"), headers=TUS)).status_code == 404
    assert (await client.head(url.replace("/7/", "/0/"), headers=TUS)).status_code == 403


async def test_upload_start_forgets_abandoned_uploads_and_their_objects(
    svc: ServiceHandle,
) -> None:
    client = svc.client
    form = {"client_files[0]": ("b.txt", b"bee"), "client_files[1]": ("a.txt", b"ay")}
    assert (
        await client.post("/api/things/7/files/", headers={"Upload-Multiple": ""}, files=form)
    ).status_code == 200
    abandoned = await _create(client, 10, "c.txt")
    assert (await _patch(client, abandoned, 0, b"12345")).status_code == 204
    other = await _create(client, 3, "d.txt", thing=8)
    assert sorted(await _keys(svc, "things/7/")) == [
        f"things/7/parts/{abandoned.rsplit('/', 1)[1]}/{0:016d}",
        "things/7/uploads/a.txt",
        "things/7/uploads/b.txt",
    ]

    assert (
        await client.post("/api/things/7/files/", headers={"Upload-Start": ""})
    ).status_code == 202
    assert (await client.head(abandoned, headers=TUS)).status_code == 404
    assert await _keys(svc, "things/7/") == []
    assert await _offset(client, other) == 0  # another owner's upload is untouched
    assert (await _patch(client, other, 0, b"dee")).status_code == 204

    # the names are free again; complete files keep the order they completed in
    url = await _create(client, 4, "c.txt")
    form = {"client_files[0]": ("b.txt", b"bee")}
    assert (
        await client.post("/api/things/7/files/", headers={"Upload-Multiple": ""}, files=form)
    ).status_code == 200
    assert (await _patch(client, url, 0, b"seas")).status_code == 204
    finished = await client.post(
        "/api/things/7/files/", params={"filename": "b.txt"}, headers={"Upload-Finish": ""}
    )
    assert finished.json()["files"] == ["b.txt", "c.txt"]


async def test_one_user_cannot_use_another_users_upload(svc: ServiceHandle, enrol: Enrol) -> None:
    alice: Person = await enrol(svc, "alice")
    bob: Person = await enrol(svc, "bob")
    url = await _create(alice.client, 6, "mine.txt")
    assert (await bob.client.head(url, headers=TUS)).status_code == 403
    assert (await _patch(bob.client, url, 0, b"theirs")).status_code == 403
    assert await _offset(alice.client, url) == 0
    assert (await _patch(alice.client, url, 0, b"mine!!")).status_code == 204
    taken = await bob.client.post(
        "/api/things/7/files/", params={"filename": "mine.txt"}, headers={"Upload-Finish": ""}
    )
    assert taken.status_code == 422  # not bob's file
    mine = await alice.client.post(
        "/api/things/7/files/", params={"filename": "mine.txt"}, headers={"Upload-Finish": ""}
    )
    assert mine.status_code == 202
    assert await svc.platform.storage.get(mine.json()["key"]) == b"mine!!"
    refused = await alice.client.post(
        "/api/things/0/files/",
        headers={**TUS, "Upload-Length": "1", "Upload-Metadata": _metadata("x")},
    )
    assert refused.status_code == 403  # the service's own access check


async def test_an_empty_file_completes_with_an_empty_patch(svc: ServiceHandle) -> None:
    url = await _create(svc.client, 0, "empty.txt")
    finished = await svc.client.post(
        "/api/things/7/files/", params={"filename": "empty.txt"}, headers={"Upload-Finish": ""}
    )
    assert finished.status_code == 422  # created, not yet sent
    done = await _patch(svc.client, url, 0, b"")
    assert done.status_code == 204
    assert done.headers["Upload-Offset"] == "0"
    finished = await svc.client.post(
        "/api/things/7/files/", params={"filename": "empty.txt"}, headers={"Upload-Finish": ""}
    )
    assert finished.status_code == 202, finished.text
    assert await svc.platform.storage.get(finished.json()["key"]) == b""
