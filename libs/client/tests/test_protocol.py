"""The sans-IO layer: flows driven by hand, pagination, problem details, the config file,
the CLI's helpers, and that the client imports nothing of the server."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import stat
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from tessera.client import AsyncClient, Client, LabelSpec, Project, TesseraError, cli, config
from tessera.client import operations as ops
from tessera.client.cli import parse_frames, parse_labels
from tessera.client.errors import problem_error
from tessera.client.protocol import Call, Reply, query_params

from .conftest import BASE, FakeServer, problem, request_body

PROJECT = {
    "id": 1,
    "url": f"{BASE}/api/projects/1",
    "name": "cars",
    "owner": {"id": 1, "username": "admin", "url": f"{BASE}/api/users/1"},
    "assignee": None,
    "status": "annotation",
    "created_date": "2026-01-01T00:00:00Z",
    "updated_date": "2026-01-01T00:00:00Z",
    "tasks": {"count": 0, "url": f"{BASE}/api/tasks?project_id=1"},
    "labels": {"url": f"{BASE}/api/labels?project_id=1"},
    "guide_id": None,
    "a_field_of_a_newer_server": [1, 2],
}


def test_a_flow_is_driven_by_replies_without_any_io() -> None:
    flow = ops.get_project(1)
    step = next(flow)
    assert step == Call("GET", "/api/projects/1")
    with pytest.raises(StopIteration) as done:
        flow.send(Reply(200, {"content-type": "application/json"}, json.dumps(PROJECT).encode()))
    project = done.value.value
    assert isinstance(project, Project)
    assert project.name == "cars"
    assert project.owner is not None
    assert project.owner.username == "admin"
    # Unknown fields pass through.
    assert project.model_extra == {"guide_id": None, "a_field_of_a_newer_server": [1, 2]}


def test_a_create_sends_cvat_labels() -> None:
    flow = ops.create_project(
        "cars",
        labels=[LabelSpec(name="car", type="rectangle"), {"name": "tree", "svg": "<x/>"}],
    )
    step = next(flow)
    assert isinstance(step, Call)
    assert step.json == {
        "name": "cars",
        "labels": [
            {"name": "car", "type": "rectangle", "attributes": []},
            {"name": "tree", "type": "any", "attributes": [], "svg": "<x/>"},
        ],
    }


def test_an_update_sends_only_what_changes() -> None:
    step = next(ops.update_job(4, stage="validation"))
    assert isinstance(step, Call)
    assert (step.method, step.url, step.json) == ("PATCH", "/api/jobs/4", {"stage": "validation"})
    step = next(ops.update_job(4, assignee=None))
    assert isinstance(step, Call)
    assert step.json == {"assignee": None}


def test_query_parameters() -> None:
    assert query_params(
        a=None, b=True, c=False, filter={"==": [{"var": "status"}, "annotation"]}, page_size=5
    ) == {
        "b": "true",
        "c": "false",
        "filter": '{"==": [{"var": "status"}, "annotation"]}',
        "page_size": 5,
    }


# --- pagination -------------------------------------------------------------------------


def paged_server(total: int, size: int) -> FakeServer:
    server = FakeServer()

    def projects(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        number = int(params.get("page", "1"))
        page_size = int(params["page_size"])
        items = [{**PROJECT, "id": i, "name": f"p{i}"} for i in range(1, total + 1)]
        chosen = items[(number - 1) * page_size : number * page_size]
        more = number * page_size < total
        rest = "&".join(f"{k}={v}" for k, v in params.items() if k != "page")
        return httpx.Response(200, json={
            "count": total,
            "next": f"{BASE}/api/projects?{rest}&page={number + 1}" if more else None,
            "previous": None,
            "results": chosen,
        })  # fmt: skip

    server.routes["/api/projects"] = projects
    return server


def test_listings_follow_next_across_pages() -> None:
    server = paged_server(total=7, size=3)
    with Client(BASE, "t", transport=httpx.MockTransport(server)) as client:
        found = client.list_projects(page_size=3, search="p", status="annotation")
        assert [p.id for p in found] == [1, 2, 3, 4, 5, 6, 7]
    assert [q.get("page", "1") for q in server.queries] == ["1", "2", "3"]
    assert all(
        q["page_size"] == "3" and q["search"] == "p" and q["status"] == "annotation"
        for q in server.queries
    )


def test_listings_are_lazy_and_async_too() -> None:
    server = paged_server(total=5, size=2)

    async def first_three() -> list[int]:
        async with AsyncClient(BASE, "t", transport=httpx.MockTransport(server)) as client:
            ids = []
            async for project in client.list_projects(page_size=2):
                ids.append(project.id)
                if len(ids) == 3:
                    break
            return ids

    assert asyncio.run(first_three()) == [1, 2, 3]
    assert len(server.queries) == 2  # the third page was never asked for


def test_an_empty_listing() -> None:
    server = paged_server(total=0, size=10)
    with Client(BASE, "t", transport=httpx.MockTransport(server)) as client:
        assert list(client.list_projects()) == []


# --- problems ---------------------------------------------------------------------------


def test_problem_details_become_a_tessera_error() -> None:
    server = FakeServer()
    server.routes["/api/projects"] = lambda request: problem(
        422,
        "Invalid request: body.name: String should have at least 1 character",
        title="Validation failed",
        instance="/api/projects",
        errors=[{"field": "body.name", "message": "String should have at least 1 character"}],
    )
    with (
        Client(BASE, "t", transport=httpx.MockTransport(server)) as client,
        pytest.raises(TesseraError) as raised,
    ):
        client.create_project("")
    error = raised.value
    assert error.status == 422
    assert error.title == "Validation failed"
    assert error.detail.startswith("Invalid request")
    assert [(e.field, e.message) for e in error.errors] == [
        ("body.name", "String should have at least 1 character")
    ]
    assert error.instance == "/api/projects"
    assert error.method == "POST"
    assert error.url == f"{BASE}/api/projects"
    assert str(error).startswith("422 Validation failed: Invalid request")


def test_answers_that_are_not_problems_still_make_errors() -> None:
    html = problem_error(502, b"<html>Bad Gateway</html>", "text/html")
    assert (html.status, html.detail, html.title) == (
        502,
        "<html>Bad Gateway</html>",
        "Bad Gateway",
    )
    fastapi = problem_error(422, b'{"detail": [{"loc": ["body"], "msg": "x"}]}', "application/json")
    assert fastapi.status == 422
    assert '"msg": "x"' in fastapi.detail
    empty = problem_error(500, b"", "")
    assert empty.detail == "Internal Server Error"
    extension = problem_error(
        409, b'{"status": 409, "detail": "busy", "rq_id": "export-1"}', "application/problem+json"
    )
    assert extension.problem["rq_id"] == "export-1"
    assert "body.x: y" in str(
        problem_error(400, b'{"detail": "bad", "errors": [{"field": "body.x", "message": "y"}]}')
    )


# --- config -----------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in (config.URL_VARIABLE, config.TOKEN_VARIABLE, config.CONFIG_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_config_file_is_private_and_env_overrides_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.config_path() == home / "xdg" / "tessera" / "config.toml"
    assert config.resolve() == config.Credentials(None, None)
    path = config.save(config.Credentials("http://a:8080", 'tsr_"quoted"\\'))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.load() == config.Credentials("http://a:8080", 'tsr_"quoted"\\')
    monkeypatch.setenv(config.TOKEN_VARIABLE, "tsr_env")
    assert config.resolve() == config.Credentials("http://a:8080", "tsr_env")
    assert config.resolve(url="http://b") == config.Credentials("http://b", "tsr_env")
    monkeypatch.setenv(config.URL_VARIABLE, "http://env")
    assert config.resolve_credentials() == ("http://env", "tsr_env")
    assert config.forget()
    monkeypatch.delenv(config.TOKEN_VARIABLE)
    with pytest.raises(config.ConfigError, match="tessera login"):
        config.resolve_credentials()


def test_a_config_file_saved_over_an_open_one_becomes_private(home: Path) -> None:
    path = config.config_path()
    path.parent.mkdir(parents=True)
    path.write_text('url = "x"\n')
    os.chmod(path, 0o644)
    config.save(config.Credentials("http://a", "t"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_broken_config_file_is_reported(home: Path) -> None:
    path = config.config_path()
    path.parent.mkdir(parents=True)
    path.write_text("url = \n")
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load()


# --- the CLI's helpers ------------------------------------------------------------------


def test_labels_from_flags_and_a_file(tmp_path: Path) -> None:
    labels_file = tmp_path / "labels.json"
    labels_file.write_text(json.dumps([
        {"name": "car", "type": "rectangle", "color": "#ff0000",
         "attributes": [{"name": "parked", "input_type": "checkbox", "values": ["false"]}]},
    ]))  # fmt: skip
    labels = parse_labels(["person", "road:polygon"], labels_file)
    assert [(lb.name, lb.type) for lb in labels] == [
        ("car", "rectangle"), ("person", "any"), ("road", "polygon"),
    ]  # fmt: skip
    assert labels[0].attributes[0]["name"] == "parked"
    with pytest.raises(typer.BadParameter, match="not a label type"):
        parse_labels(["x:circle"], None)


def test_the_client_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, tessera.client, tessera.client.cli\n"
        "server = sorted(m for m in sys.modules if m.startswith('tessera.')"
        " and not m.startswith('tessera.client'))\n"
        "print(server)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"


def test_every_operation_is_on_both_clients() -> None:
    flows: list[Any] = [
        name for name in dir(ops)
        if not name.startswith("_") and inspect.isfunction(getattr(ops, name))
        and getattr(getattr(ops, name), "__module__", "") == ops.__name__
        and name not in {"page", "next_page", "storage_prefix"}
    ]  # fmt: skip
    for name in flows:
        method = {"wait_request": "wait", "download_file": "download"}.get(name, name)
        assert hasattr(Client, method), name
        assert hasattr(AsyncClient, method), name


def test_cancel_goes_where_the_request_lives() -> None:
    lambda_call = next(ops.cancel_request("inference-auto-annotate-3-abc"))
    assert isinstance(lambda_call, Call)
    assert (lambda_call.method, lambda_call.url) == (
        "DELETE", "/api/lambda/requests/inference-auto-annotate-3-abc",
    )  # fmt: skip
    export_call = next(ops.cancel_request("export-export-dataset-3-abc"))
    assert isinstance(export_call, Call)
    assert (export_call.method, export_call.url) == (
        "POST", "/api/requests/export-export-dataset-3-abc/cancel",
    )  # fmt: skip


def test_cloud_files_are_listed_through_folders_and_pages() -> None:
    server = FakeServer()
    folders: dict[str, list[list[dict[str, str]]]] = {
        "drive/": [
            [{"name": "a.jpg", "type": "REG", "mime_type": "image"},
             {"name": "notes.txt", "type": "REG", "mime_type": "unknown"}],
            [{"name": "sub", "type": "DIR", "mime_type": "DIR"},
             {"name": "clip.mp4", "type": "REG", "mime_type": "video"}],
        ],
        "drive/sub/": [[{"name": "b.png", "type": "REG", "mime_type": "image"}]],
    }  # fmt: skip

    def content(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        pages = folders[params["prefix"]]
        index = int(params.get("next_token", "0"))
        more = index + 1 < len(pages)
        return httpx.Response(
            200, json={"content": pages[index], "next": str(index + 1) if more else None}
        )

    server.routes["/api/cloudstorages/5/content-v2"] = content
    with Client(BASE, "t", transport=httpx.MockTransport(server)) as client:
        assert client.list_cloud_files(5, "drive") == ["drive/a.jpg", "drive/clip.mp4",
                                                       "drive/sub/b.png"]  # fmt: skip
        assert client.list_cloud_files(5, "drive/", recursive=False, media_only=False) == [
            "drive/a.jpg", "drive/notes.txt", "drive/clip.mp4",
        ]  # fmt: skip


# --- auto-annotation beyond a task ----------------------------------------------------


def _first_call(flow: Any) -> Call:
    step = next(flow)
    assert isinstance(step, Call)
    return step


def test_auto_annotation_bodies_name_their_scope() -> None:
    base = {"function": "det", "cleanup": False, "conv_mask_to_poly": False}
    cases: list[tuple[Any, dict[str, Any]]] = [
        (ops.start_auto_annotation(7, "det"), {"task": 7}),
        (ops.start_auto_annotation(7, "det", job_id=2), {"task": 7, "job": 2}),
        (ops.start_auto_annotation(7, "det", job_ids=[2, 3]), {"task": 7, "jobs": [2, 3]}),
        (ops.start_auto_annotation(7, "det", frames=range(3)), {"task": 7, "frames": [0, 1, 2]}),
        (ops.start_auto_annotation(None, "det", project_id=3), {"project": 3}),
        (ops.start_auto_annotation(None, "det", project_id=3, job_ids=[5], threshold=0.5),
         {"project": 3, "jobs": [5], "threshold": 0.5}),
    ]  # fmt: skip
    for flow, fields in cases:
        sent = _first_call(flow)
        assert (sent.method, sent.url) == ("POST", "/api/lambda/requests")
        assert sent.json == {**base, **fields}
    for wrong in (ops.start_auto_annotation(None, "det"),
                  ops.start_auto_annotation(7, "det", project_id=3)):  # fmt: skip
        with pytest.raises(ValueError, match="task_id or a project_id"):
            next(wrong)


def test_a_project_call_reads_without_a_task() -> None:
    answer: dict[str, Any] = {
        "id": "inference-autoannotate-project-3-abc",
        "function": {"id": "det", "threshold": None, "task": None, "project": 3, "jobs": [5]},
        "status": "queued", "progress": 0, "enqueued": "2026-01-01T00:00:00Z",
        "started": None, "ended": None, "exc_info": None,
    }  # fmt: skip
    flow = ops.get_function_call(answer["id"])
    next(flow)
    with pytest.raises(StopIteration) as done:
        flow.send(Reply(200, {"content-type": "application/json"}, json.dumps(answer).encode()))
    found = done.value.value
    assert (found.function.task, found.function.project, found.function.jobs) == (None, 3, [5])
    assert found.function.frames is None


def test_frames_are_read_from_ranges() -> None:
    assert parse_frames("0-3, 7,9-9,2") == [0, 1, 2, 3, 7, 9]
    for wrong in ("", "a", "3-1", "1-", "-2", "1,,2"):
        with pytest.raises(typer.BadParameter):
            parse_frames(wrong)


def test_the_cli_annotates_a_project_jobs_or_frames(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, Any]] = []

    def create(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(200, json={
            "id": "inference-autoannotate-x", "status": "queued", "progress": 0,
            "function": {"id": body["function"], "threshold": None, "task": body.get("task")},
            "enqueued": None, "started": None, "ended": None, "exc_info": None,
        })  # fmt: skip

    server = FakeServer()
    server.routes["/api/lambda/requests"] = create
    monkeypatch.setattr(cli, "Client", partial(Client, transport=httpx.MockTransport(server)))
    monkeypatch.setenv(config.URL_VARIABLE, BASE)
    monkeypatch.setenv(config.TOKEN_VARIABLE, "t")
    runner = CliRunner()
    base = {"function": "det", "cleanup": False, "conv_mask_to_poly": False}
    cases: list[tuple[list[str], dict[str, Any]]] = [
        (["--project", "3"], {"project": 3}),
        (["--project", "3", "--job", "5", "--job", "6"], {"project": 3, "jobs": [5, 6]}),
        (["7", "--job", "5"], {"task": 7, "job": 5}),
        (["7", "--job", "5", "--job", "4"], {"task": 7, "jobs": [5, 4]}),
        (["7", "--frames", "0-2,9"], {"task": 7, "frames": [0, 1, 2, 9]}),
    ]
    for args, fields in cases:
        done = runner.invoke(cli.app, ["auto-annotate", *args, "-F", "det", "--no-wait"])
        assert done.exit_code == 0, done.output
        assert sent[-1] == {**base, **fields}
        assert "inference-autoannotate-x" in done.output
    for args in (["7", "--project", "3"], [], ["7", "--frames", "x"]):
        refused = runner.invoke(cli.app, ["auto-annotate", *args, "-F", "det"])
        assert refused.exit_code == 2, refused.output
    assert len(sent) == len(cases)


def test_requests_of_every_kind_come_from_the_one_server_list(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server merges every service's requests into `/api/requests`: the client and
    the CLI list that one list (no merge with the lambda API's of their own)."""
    kinds = [
        ("inference-autoannotate-task-3-a", {"type": "autoannotate:task", "target": "task",
                                             "task_id": 3, "function_id": "det"}),
        ("export-export-dataset-3-a", {"type": "export:dataset", "target": "task", "task_id": 3,
                                       "format": "COCO 1.0"}),
        ("ingest-create-task-3-a", {"type": "create:task", "target": "task", "task_id": 3}),
    ]  # fmt: skip

    def listed(request: httpx.Request) -> httpx.Response:
        results = [request_body(rq_id, operation=operation) for rq_id, operation in kinds]
        return httpx.Response(
            200, json={"count": 3, "next": None, "previous": None, "results": results}
        )

    server = FakeServer()
    server.routes["/api/requests"] = listed
    with Client(BASE, "t", transport=httpx.MockTransport(server)) as client:
        found = list(client.list_requests(task_id=3, status="queued"))
    assert [r.id for r in found] == [rq_id for rq_id, _ in kinds]
    assert server.queries[-1] == {"task_id": "3", "status": "queued", "page_size": "100"}

    monkeypatch.setattr(cli, "Client", partial(Client, transport=httpx.MockTransport(server)))
    monkeypatch.setenv(config.URL_VARIABLE, BASE)
    monkeypatch.setenv(config.TOKEN_VARIABLE, "t")
    done = CliRunner().invoke(cli.app, ["requests", "list", "--output", "json"])
    assert done.exit_code == 0, done.output
    assert [r["id"] for r in json.loads(done.output)] == [rq_id for rq_id, _ in kinds]
    assert [path for _, path, _ in server.log] == ["/api/requests", "/api/requests"]
