"""CVAT's upload protocol and TUS with resume, against the fake server of conftest.py,
through both clients (the flows are the same; each client only runs them)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tessera.client import AsyncClient, Client, RequestFailed, TesseraError
from tessera.client.operations import start_task_data
from tessera.client.protocol import Call, Flow, Reply, Sleep
from tessera.client.transfers import (
    Transfer,
    download,
    plan_upload,
    tus_upload,
    upload_file,
    wait,
)

from .conftest import BASE, FakeServer, Fault, problem

T = TypeVar("T")
Runner = Callable[[FakeServer, Flow[Any]], Any]


def run_sync(server: FakeServer, flow: Flow[T]) -> T:
    with Client(BASE, "tsr_test", transport=httpx.MockTransport(server)) as client:
        return client.run(flow)


def run_async(server: FakeServer, flow: Flow[T]) -> T:
    async def go() -> T:
        async with AsyncClient(BASE, "tsr_test", transport=httpx.MockTransport(server)) as client:
            return await client.run(flow)

    return asyncio.run(go())


RUNNERS = [pytest.param(run_sync, id="sync"), pytest.param(run_async, id="async")]


def data_file(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    path.write_bytes(bytes((i * 7 + size) % 251 for i in range(size)))
    return path


def create_url() -> str:
    return "/api/tasks/1/data/"


def patch_offsets(server: FakeServer) -> list[int]:
    return [int(h["upload-offset"]) for m, _, h in server.log if m == "PATCH"]


@pytest.mark.parametrize("runner", RUNNERS)
def test_tus_resumes_from_the_servers_offset_after_a_broken_patch(
    runner: Runner, server: FakeServer, tmp_path: Path
) -> None:
    path = data_file(tmp_path, "video.mp4", 25_000)
    # The second PATCH breaks after the server kept 3,000 of its 10,000 bytes.
    server.faults[2] = Fault(keep=3_000)
    progress: list[tuple[int, int]] = []
    transfer = Transfer(25_000, lambda done, total: progress.append((done, total)))

    name = runner(
        server,
        tus_upload(create_url(), path, transfer, chunk_size=10_000, retry_delay=0),
    )

    assert name == "video.mp4"
    assert server.files["video.mp4"] == path.read_bytes()
    # The broken PATCH is followed by a HEAD, and the upload goes on from its offset.
    assert server.steps()[1:] == ["PATCH", "PATCH", "HEAD", "PATCH", "PATCH"]
    assert patch_offsets(server) == [0, 10_000, 13_000, 23_000]
    assert progress[-1] == (25_000, 25_000)
    # Progress went back to what the server has, not what was sent.
    dones = [done for done, _ in progress]
    assert max(dones[: dones.index(13_000)]) > 13_000


@pytest.mark.parametrize("runner", RUNNERS)
def test_tus_does_not_resend_a_chunk_whose_answer_was_lost(
    runner: Runner, server: FakeServer, tmp_path: Path
) -> None:
    path = data_file(tmp_path, "a.zip", 20_000)
    server.faults[1] = Fault(keep=None)  # all kept, then the connection broke
    runner(server, tus_upload(create_url(), path, Transfer(20_000, None), chunk_size=10_000,
                              retry_delay=0))  # fmt: skip
    assert patch_offsets(server) == [0, 10_000]
    assert server.files["a.zip"] == path.read_bytes()


@pytest.mark.parametrize("runner", RUNNERS)
def test_tus_takes_the_offset_of_a_409_and_retries_5xx(
    runner: Runner, server: FakeServer, tmp_path: Path
) -> None:
    path = data_file(tmp_path, "b.zip", 30_000)
    server.faults[2] = Fault(keep=4_000, status=409, offset=True)  # offset in the answer
    server.faults[4] = Fault(keep=0, status=503)  # no offset: HEAD
    runner(server, tus_upload(create_url(), path, Transfer(30_000, None), chunk_size=10_000,
                              retry_delay=0))  # fmt: skip
    assert server.files["b.zip"] == path.read_bytes()
    assert patch_offsets(server) == [0, 10_000, 14_000, 24_000, 24_000]
    assert server.steps().count("HEAD") == 1


@pytest.mark.parametrize("runner", RUNNERS)
def test_tus_retries_a_head_that_fails(runner: Runner, server: FakeServer, tmp_path: Path) -> None:
    path = data_file(tmp_path, "c.bin", 15_000)
    server.faults[1] = Fault(keep=1_000)
    server.head_faults[1] = Fault(status=None)  # the HEAD cannot connect either
    runner(server, tus_upload(create_url(), path, Transfer(15_000, None), chunk_size=10_000,
                              retry_delay=0))  # fmt: skip
    assert server.files["c.bin"] == path.read_bytes()
    assert patch_offsets(server) == [0, 1_000, 11_000]


@pytest.mark.parametrize("runner", RUNNERS)
def test_tus_gives_up_after_failures_in_a_row(
    runner: Runner, server: FakeServer, tmp_path: Path
) -> None:
    path = data_file(tmp_path, "d.bin", 5_000)
    for attempt in range(1, 10):
        server.faults[attempt] = Fault(keep=0, status=503)
    with pytest.raises(TesseraError) as raised:
        runner(server, tus_upload(create_url(), path, Transfer(5_000, None), max_retries=2,
                                  retry_delay=0))  # fmt: skip
    assert raised.value.status == 503
    assert "failed 3 times" in raised.value.detail
    assert server.patches == 3


@pytest.mark.parametrize("runner", RUNNERS)
def test_tus_raises_a_client_error_at_once(
    runner: Runner, server: FakeServer, tmp_path: Path
) -> None:
    path = data_file(tmp_path, "e.bin", 5_000)
    server.faults[1] = Fault(keep=0, status=403)
    with pytest.raises(TesseraError) as raised:
        runner(server, tus_upload(create_url(), path, Transfer(5_000, None), retry_delay=0))
    assert raised.value.status == 403
    assert server.patches == 1


def test_tus_sends_an_empty_file_in_one_patch(server: FakeServer, tmp_path: Path) -> None:
    path = data_file(tmp_path, "empty.txt", 0)
    run_sync(server, tus_upload(create_url(), path, Transfer(0, None)))
    assert patch_offsets(server) == [0]
    assert server.files["empty.txt"] == b""


def test_tus_pauses_longer_after_each_failure(tmp_path: Path) -> None:
    """Driven by hand: the flow asks for growing pauses, and nothing else touches I/O."""
    path = data_file(tmp_path, "f.bin", 100)
    flow = tus_upload(create_url(), path, Transfer(100, None), retry_delay=1.0)
    step = next(flow)
    assert isinstance(step, Call)
    assert step.method == "POST"
    assert step.headers["Upload-Length"] == "100"
    created = Reply(201, {"location": f"{BASE}/api/tasks/1/data/u1", "upload-filename": "f.bin"})
    pauses = []
    step = flow.send(created)
    for _ in range(3):
        assert isinstance(step, Call)
        assert step.method == "PATCH"
        step = flow.send(Reply(0, error=httpx.ReadError("broken")))
        assert isinstance(step, Sleep)
        pauses.append(step.seconds)
        step = flow.send(None)
        assert isinstance(step, Call)
        assert step.method == "HEAD"
        step = flow.send(Reply(200, {"upload-offset": "0"}))
    assert pauses == [1.0, 2.0, 4.0]
    assert isinstance(step, Call)
    with pytest.raises(StopIteration) as done:
        flow.send(Reply(204, {"upload-offset": "100"}))
    assert done.value.value == "f.bin"


@pytest.mark.parametrize("runner", RUNNERS)
def test_task_data_goes_in_forms_and_by_tus_as_cvat_sdk_sends_it(
    runner: Runner, server: FakeServer, tmp_path: Path
) -> None:
    small = [data_file(tmp_path, f"{n}.jpg", 300 + n) for n in range(3)]
    big = data_file(tmp_path, "video.mp4", 2_500)
    progress: list[tuple[int, int]] = []
    rq_id = runner(
        server,
        start_task_data(
            1, [*small, big], image_quality=80, max_request_size=700, chunk_size=1_000,
            on_progress=lambda done, total: progress.append((done, total)),
            sorting_method="predefined",
        ),
    )  # fmt: skip

    assert rq_id == "fake-rq-1"
    assert server.steps() == [
        "POST upload-start",
        "POST upload-multiple",
        "POST upload-multiple",
        "POST upload-length",
        "PATCH",
        "PATCH",
        "PATCH",
        "POST upload-finish",
    ]
    # Two forms (cvat-sdk's grouping: up to max_request_size bytes a form), files numbered.
    assert [[(f, n) for f, n, _ in form if n] for form in server.forms] == [
        [("client_files[0]", "0.jpg"), ("client_files[1]", "1.jpg")],
        [("client_files[0]", "2.jpg")],
    ]
    assert ("image_quality", "", b"80") in server.forms[0]
    for path in [*small, big]:
        assert server.files[path.name] == path.read_bytes()
    finish = server.finished[0]["json"]
    assert finish["image_quality"] == 80
    assert finish["upload_file_order"] == ["0.jpg", "1.jpg", "2.jpg", "video.mp4"]
    total = sum(p.stat().st_size for p in [*small, big])
    assert progress[-1] == (total, total)
    assert all(b >= a for (a, _), (b, _) in itertools.pairwise(progress))
    assert len(progress) > 6  # forms report as httpx reads them, TUS per slice


def test_the_upload_plan_refuses_two_files_of_one_name(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = data_file(tmp_path / "a", "1.jpg", 10)
    second = data_file(tmp_path / "b", "1.jpg", 10)
    with pytest.raises(ValueError, match="same name"):
        plan_upload([first, second])
    plan = plan_upload([first, data_file(tmp_path, "big.mp4", 50)], max_request_size=20)
    assert plan.groups == [([first], 10)]
    assert [p.name for p in plan.separate] == ["big.mp4"]
    assert plan.total == 60


@pytest.mark.parametrize("runner", RUNNERS)
def test_an_annotation_upload_names_the_file_and_format_around_tus(
    runner: Runner, server: FakeServer, tmp_path: Path
) -> None:
    path = data_file(tmp_path, "coco.json", 1_234)
    rq_id = runner(
        server,
        upload_file("/api/tasks/7/annotations/", path, params={"format": "COCO 1.0"}),
    )
    assert rq_id == "fake-rq-1"
    start, create = server.log[0], server.log[1]
    assert start[2]["upload-start"] == ""
    assert server.queries[0] == {"format": "COCO 1.0"}
    assert create[1] == "/api/tasks/7/annotations/"
    assert server.queries[1] == {}  # the TUS creation has no query, as cvat-sdk sends it
    assert server.finished[0]["query"] == {"format": "COCO 1.0", "filename": "coco.json"}


@pytest.mark.parametrize("runner", RUNNERS)
def test_wait_reports_each_poll_and_raises_the_servers_message(
    runner: Runner, server: FakeServer
) -> None:
    server.requests["rq-ok"] = [
        {"status": "queued"},
        {"status": "started", "progress": 0.4},
        {"status": "finished", "progress": 1.0, "result_url": f"{BASE}/x"},
    ]
    seen: list[tuple[str, float | None]] = []
    done = runner(
        server,
        wait("rq-ok", interval=0, on_progress=lambda r: seen.append((r.status, r.progress))),
    )
    assert done.result_url == f"{BASE}/x"
    assert seen == [("queued", None), ("started", 0.4), ("finished", 1.0)]

    server.requests["rq-bad"] = [
        {"status": "started", "progress": 0.1},
        {"status": "failed", "message": "Frame 3 has no image."},
    ]
    with pytest.raises(RequestFailed) as raised:
        runner(server, wait("rq-bad", interval=0))
    assert raised.value.detail == "Frame 3 has no image."
    assert raised.value.rq_id == "rq-bad"


@pytest.mark.parametrize("runner", RUNNERS)
def test_downloads_stream_into_the_file_whole_or_not_at_all(
    runner: Runner, server: FakeServer, tmp_path: Path
) -> None:
    payload = bytes(range(256)) * 1_000
    server.routes["/result.zip"] = lambda request: httpx.Response(200, content=payload)
    server.routes["/gone.zip"] = lambda request: problem(404, "The archive expired.")
    progress: list[tuple[int, int]] = []
    target = tmp_path / "out" / "result.zip"

    runner(server, download(f"{BASE}/result.zip", target,
                            on_progress=lambda d, t: progress.append((d, t))))  # fmt: skip

    assert target.read_bytes() == payload
    assert progress[-1] == (len(payload), len(payload))
    missing = tmp_path / "gone.zip"
    with pytest.raises(TesseraError, match="The archive expired"):
        runner(server, download(f"{BASE}/gone.zip", missing))
    assert not missing.exists()
    assert list((tmp_path / "out").iterdir()) == [target]  # no part file left behind


def test_requests_carry_the_token_and_the_organization(server: FakeServer) -> None:
    server.routes["/api/users/self"] = lambda request: httpx.Response(
        200, json={"id": 3, "username": "ann"}
    )
    with Client(BASE, "tsr_abc", organization="acme", transport=httpx.MockTransport(server)) as c:
        assert c.me().username == "ann"
    headers = server.log[0][2]
    assert headers["authorization"] == "Bearer tsr_abc"
    assert headers["x-organization"] == "acme"
    assert json.loads(json.dumps(headers))["user-agent"].startswith("tessera-client/")
