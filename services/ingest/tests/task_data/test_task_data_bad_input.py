"""Bad input to task creation, end to end, and remote files from a local HTTP server.

Every bad file fails the request with a message that names it, and leaves the task as
it was: no media objects, no media records, no jobs. Remote files come from a FastAPI
app under uvicorn on 127.0.0.1, which `remote_allowed_networks` lets ingest reach.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from tessera.devstack.testing import serve_in_thread
from tessera.ingest.media.testing import make_test_video
from tessera.ingest.testing import Fleet, png_bytes

MAX_ARCHIVE_RATIO = 50
REMOTE_MAX_BYTES = 20_000
REMOTE_FILES = {"a.png": png_bytes(1, (40, 30)), "b.png": png_bytes(2, (40, 30))}


@pytest.fixture
def ingest_overrides() -> dict[str, Any]:
    """Loopback URLs allowed, and small archive-ratio and remote-size limits."""
    return {
        "max_archive_ratio": MAX_ARCHIVE_RATIO,
        "remote_allowed_networks": ("127.0.0.0/8",),
        "remote_max_bytes": REMOTE_MAX_BYTES,
    }


async def assert_refused(fleet: Fleet, task_id: int, request: dict[str, Any], *names: str) -> None:
    """The request failed naming each of `names`, and the task has no media and no jobs."""
    assert request["status"] == "failed", request
    for name in names:
        assert name in request["message"], (name, request["message"])
    storage = fleet.ingest.platform.storage
    assert [key async for key, _ in storage.list_keys(f"tasks/{task_id}/media/")] == []
    meta = await fleet.ingest.client.get(f"/api/tasks/{task_id}/data/meta")
    assert meta.status_code == 404
    jobs = (await fleet.annotations.get("/api/jobs", params={"task_id": task_id})).json()
    assert jobs["count"] == 0


async def refused_upload(fleet: Fleet, files: dict[str, bytes], *names: str) -> None:
    """A new task made from `files` fails naming `names` and is left without media."""
    task_id = await fleet.create_task()
    request = await fleet.wait(await fleet.upload(task_id, files))
    await assert_refused(fleet, task_id, request, *names)


def zip_of(entries: dict[str, bytes]) -> bytes:
    """A deflated zip archive holding `entries` under exactly these names."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            entry = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


async def test_a_truncated_video_fails_naming_it(fleet: Fleet, tmp_path: Path) -> None:
    whole = make_test_video(tmp_path / "clip.mp4", 50).read_bytes()
    await refused_upload(fleet, {"clip.mp4": whole[: len(whole) * 2 // 3]}, "clip.mp4")


async def test_an_unsupported_file_type_fails_naming_it(fleet: Fleet) -> None:
    await refused_upload(fleet, {"a.png": png_bytes(1), "notes.txt": b"hello\n"}, "notes.txt")


async def test_a_zero_byte_image_fails_naming_it(fleet: Fleet) -> None:
    files = {"a.png": png_bytes(1), "empty.png": b"", "c.png": png_bytes(3)}
    await refused_upload(fleet, files, "empty.png")


async def test_a_zip_bomb_is_refused(fleet: Fleet) -> None:
    bomb = zip_of({"a.png": png_bytes(1), "zeros.png": bytes(4 * 2**20)})
    assert len(bomb) * MAX_ARCHIVE_RATIO < 4 * 2**20
    await refused_upload(fleet, {"bomb.zip": bomb}, "bomb.zip", "zeros.png")


@pytest.mark.parametrize("entry", ["../evil.png", "/tmp/evil.png", "set/../../evil.png"])
async def test_archive_entries_outside_the_folder_are_refused(fleet: Fleet, entry: str) -> None:
    archive = zip_of({"a.png": png_bytes(1), entry: png_bytes(2)})
    assert entry in zipfile.ZipFile(io.BytesIO(archive)).namelist()
    await refused_upload(fleet, {"images.zip": archive}, "images.zip", entry)


async def test_a_tar_with_a_symbolic_link_is_refused(fleet: Fleet) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        image = png_bytes(1)
        member = tarfile.TarInfo("a.png")
        member.size = len(image)
        archive.addfile(member, io.BytesIO(image))
        link = tarfile.TarInfo("link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    await refused_upload(fleet, {"set.tar.gz": buffer.getvalue()}, "set.tar.gz", "link.png")


async def test_predefined_order_must_list_the_uploaded_files(fleet: Fleet) -> None:
    task_id = await fleet.create_task()
    client, url = fleet.ingest.client, f"/api/tasks/{task_id}/data/"
    files = {name: png_bytes(i) for i, name in enumerate(("a.png", "b.png", "c.png"))}
    assert (await client.post(url, headers={"Upload-Start": ""})).status_code == 202
    form = {f"client_files[{i}]": (n, data) for i, (n, data) in enumerate(files.items())}
    sent = await client.post(url, headers={"Upload-Multiple": ""}, files=form)
    assert sent.status_code == 200, sent.text

    async def finish(order: list[str]) -> Any:
        body = {"image_quality": 70, "sorting_method": "predefined", "upload_file_order": order}
        return await client.post(url, headers={"Upload-Finish": ""}, json=body)

    for order, named in (
        (["c.png", "a.png", "x.png"], ("x.png", "b.png")),
        (["c.png", "a.png"], ("b.png",)),
        (["c.png", "a.png", "b.png", "a.png"], ("a.png (repeated)",)),
    ):
        refused = await finish(order)
        assert refused.status_code == 422, refused.text
        error = refused.json()["errors"][0]
        assert error["field"] == "body.upload_file_order"
        assert all(name in error["message"] for name in named), (named, error)
        await assert_refused(fleet, task_id, {"status": "failed", "message": ""})
    accepted = await finish(["c.png", "a.png", "b.png"])
    assert accepted.status_code == 202, accepted.text
    request = await fleet.wait(accepted.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    meta = (await client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [f["name"] for f in meta["frames"]] == ["c.png", "a.png", "b.png"]
    first = await fleet.get_data(
        f"/api/tasks/{task_id}/data", type="frame", number=0, quality="original"
    )
    assert first.content == files["c.png"]


def file_server_app() -> FastAPI:
    """Remote files: `/files/{name}`, redirects, and files over `REMOTE_MAX_BYTES`."""
    app = FastAPI()

    @app.get("/files/{name}")
    async def file(name: str) -> Response:
        return Response(REMOTE_FILES[name], media_type="image/png")

    @app.get("/moved/{name}")
    async def moved(name: str) -> RedirectResponse:
        return RedirectResponse(f"/files/{name}", status_code=302)

    @app.get("/metadata/{name}")
    async def metadata(name: str) -> RedirectResponse:
        return RedirectResponse(f"http://169.254.169.254/latest/{name}", status_code=302)

    @app.get("/declared/big.png")
    async def declared() -> Response:
        return Response(bytes(REMOTE_MAX_BYTES + 1), media_type="image/png")

    @app.get("/streamed/big.png")
    async def streamed() -> StreamingResponse:
        async def blocks() -> AsyncIterator[bytes]:
            for _ in range(REMOTE_MAX_BYTES // 1000 + 1):
                yield bytes(1000)

        return StreamingResponse(blocks(), media_type="image/png")

    return app


@pytest.fixture
def file_server() -> Iterator[str]:
    """The base URL of `file_server_app` on 127.0.0.1."""
    with serve_in_thread(file_server_app()) as url:
        yield url


async def test_remote_files_from_an_allowed_network_read_back_exact(
    fleet: Fleet, file_server: str
) -> None:
    task_id = await fleet.create_task()
    urls = [f"{file_server}/files/a.png", f"{file_server}/moved/b.png"]
    request = await fleet.send_data(task_id, remote_files=urls)
    assert request["status"] == "finished", request["message"]
    meta = (await fleet.ingest.client.get(f"/api/tasks/{task_id}/data/meta")).json()
    assert [(f["name"], f["width"]) for f in meta["frames"]] == [("a.png", 40), ("b.png", 40)]
    for number, name in enumerate(("a.png", "b.png")):
        frame = await fleet.get_data(
            f"/api/tasks/{task_id}/data", type="frame", number=number, quality="original"
        )
        assert frame.content == REMOTE_FILES[name]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("metadata/x.png", "169.254.169.254"),
        ("declared/big.png", f"limit of {REMOTE_MAX_BYTES}"),
        ("streamed/big.png", f"limit of {REMOTE_MAX_BYTES}"),
    ],
)
async def test_remote_files_that_break_the_rules_are_refused(
    fleet: Fleet, file_server: str, path: str, reason: str
) -> None:
    task_id = await fleet.create_task()
    url = f"{file_server}/{path}"
    request = await fleet.send_data(task_id, remote_files=[f"{file_server}/files/a.png", url])
    await assert_refused(fleet, task_id, request, url, reason)


@pytest.mark.parametrize(("data", "sent"), [(b"", 0), (png_bytes(2), 50)])
async def test_unfinished_tus_uploads_refuse_upload_finish(
    fleet: Fleet, data: bytes, sent: int
) -> None:
    task_id = await fleet.create_task()
    client, url = fleet.ingest.client, f"/api/tasks/{task_id}/data/"
    assert (await client.post(url, headers={"Upload-Start": ""})).status_code == 202
    form = {"client_files[0]": ("a.png", png_bytes(1))}
    assert (await client.post(url, headers={"Upload-Multiple": ""}, files=form)).status_code == 200
    tus = {"Tus-Resumable": "1.0.0"}
    created = await client.post(url, headers={
        **tus, "Upload-Length": str(len(data)), "Upload-Metadata": "filename Yi5wbmc=",  # b.png
    })  # fmt: skip
    assert created.status_code == 201, created.text
    if sent:
        patched = await client.patch(
            httpx.URL(created.headers["Location"]).path, content=data[:sent],
            headers={**tus, "Upload-Offset": "0",
                     "Content-Type": "application/offset+octet-stream"},
        )  # fmt: skip
        assert patched.status_code == 204, patched.text
    finish = await client.post(url, headers={"Upload-Finish": ""}, json={"image_quality": 70})
    assert finish.status_code == 422, finish.text
    assert f"b.png ({sent} of {len(data)} bytes)" in finish.json()["errors"][0]["message"]
    await assert_refused(fleet, task_id, {"status": "failed", "message": ""})
