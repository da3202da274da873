"""`tessera.client` and the `tessera` CLI against the whole fleet, started as `make run`
starts it (one fleet for the module), through the gateway's port.

The client logs in, makes a project with labels and a task, uploads local images (forms
and TUS), exports COCO (checked with pycocotools), imports it back, backs the task up and
restores it, and moves jobs through assignees and stages; the CLI runs under a
pseudo-terminal for an upload, an export and auto-annotation and must draw rich's
progress bars; its errors are the server's problem details, never a traceback. The
models are checked against the OpenAPI document the gateway serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from tessera.client import AsyncClient, Client, LabelSpec, Request, TesseraError
from tessera.devstack.fleet import Launcher, started_fleet

from .openapi_models import all_problems

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TESSERA = Path(sys.prefix) / "bin" / "tessera"
FRAMES = 6
BOXES = {0: [4.0, 6.0, 30.0, 26.0], 1: [10.0, 12.0, 50.0, 40.0], 3: [0.0, 0.0, 20.0, 15.0]}


# --- the fleet, the client and the CLI --------------------------------------------------


@pytest.fixture(scope="module")
def fleet() -> Iterator[Launcher]:
    """`tessera-run` for this module, as `make run` starts it."""
    with started_fleet("tessera-client-e2e-") as launcher:
        yield launcher


@pytest.fixture(scope="module")
def client(fleet: Launcher) -> Iterator[Client]:
    """The admin's client."""
    with Client(fleet.url, fleet.token) as made:
        yield made


@dataclass
class Cli:
    """The `tessera` command with its own config folder (and no TESSERA_* variables)."""

    env: dict[str, str]
    config_home: Path

    def run(
        self, *args: str, timeout: float = 180, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The command with pipes (not a terminal): no progress bars."""
        return subprocess.run(
            [str(TESSERA), *args], env={**self.env, **(env or {})}, capture_output=True,
            text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def json(self, *args: str) -> Any:
        """A command with `--output json`; its parsed stdout (it must succeed)."""
        done = self.run(*args, "--output", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def terminal(self, *args: str, timeout: float = 180) -> tuple[int, str]:
        """The command on a pseudo-terminal (TERM=xterm, 100 columns): its exit status and
        everything it drew."""
        leader, follower = pty.openpty()
        env = {**self.env, "TERM": "xterm", "COLUMNS": "100", "LINES": "40"}
        process = subprocess.Popen(
            [str(TESSERA), *args], stdin=follower, stdout=follower, stderr=follower, env=env,
            close_fds=True,
        )  # fmt: skip
        os.close(follower)
        drawn = bytearray()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], 0.2)
                if ready:
                    try:
                        block = os.read(leader, 65536)
                    except OSError:  # the terminal closed: the process ended
                        break
                    if not block:
                        break
                    drawn += block
                elif process.poll() is not None:
                    break
            else:
                process.kill()
                pytest.fail(f"tessera {' '.join(args)} ran past {timeout} s:\n{drawn.decode()}")
        finally:
            os.close(leader)
        return process.wait(timeout=30), drawn.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def cli(fleet: Launcher, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The CLI, logged in to nothing yet."""
    home = tmp_path_factory.mktemp("cli-config")
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith("TESSERA_") and key not in ("COLUMNS", "LINES")
    }  # fmt: skip
    env["XDG_CONFIG_HOME"] = str(home)
    return Cli(env, home)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of PNG and JPEG frames (64 x 48), one in a sub-folder."""
    folder = tmp_path_factory.mktemp("images")
    (folder / "more").mkdir()
    rng = np.random.default_rng(14)
    for index in range(FRAMES):
        pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        suffix = "jpg" if index % 2 else "png"
        where = folder / "more" if index == FRAMES - 1 else folder
        Image.fromarray(pixels).save(where / f"frame_{index:02d}.{suffix}")
    return folder


@dataclass
class State:
    """What the tests of this module make, in order."""

    project_id: int = 0
    task_id: int = 0
    cli_task_id: int = 0
    coco: Path | None = None
    backup: Path | None = None
    export_rq: str = ""


@pytest.fixture(scope="module")
def state() -> State:
    return State()


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


def progress_bar_drawn(text: str, description: str) -> None:
    """rich drew a bar (its `━` characters) with a percentage after `description`."""
    assert description in text, text
    assert "━" in text, text
    assert re.search(r"\b\d{1,3}%", text), text
    assert "100%" in text, text


def frame_files(images: Path) -> list[Path]:
    return sorted(p for p in images.rglob("*") if p.is_file())


# --- the tests, in order ----------------------------------------------------------------


def test_the_models_match_the_openapi_the_gateway_serves(fleet: Launcher) -> None:
    document = httpx.get(f"{fleet.url}/api/schema", timeout=60).json()
    assert all_problems(document) == []


def test_login_keeps_url_and_token_for_the_owner_only(fleet: Launcher, cli: Cli) -> None:
    refused = cli.run("login", fleet.url, "--token", "tsr_not-a-token")
    assert refused.returncode == 1
    assert "401" in refused.stderr
    assert "refused the token" in refused.stderr
    no_traceback(refused.stderr)
    assert not (cli.config_home / "tessera" / "config.toml").exists()

    done = cli.run("login", fleet.url, "--token", fleet.token)
    assert done.returncode == 0, done.stderr
    path = cli.config_home / "tessera" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fleet.token in path.read_text()
    me = cli.json("whoami")
    assert me["user"]["username"] == "admin"
    assert me["server"]["version"] == "2.80.0"
    # The environment wins over the file, and an option over both.
    overridden = cli.run("whoami", env={"TESSERA_TOKEN": "tsr_other"})
    assert overridden.returncode == 1
    assert "401" in overridden.stderr
    again = cli.run("--token", fleet.token, "whoami", env={"TESSERA_TOKEN": "tsr_other"})
    assert again.returncode == 0, again.stderr


def test_a_project_and_a_task_from_local_images(client: Client, images: Path, state: State) -> None:
    project = client.create_project(
        "client e2e", labels=[LabelSpec(name="car", type="rectangle"), {"name": "person"}]
    )
    state.project_id = project.id
    assert client.get_project(project.id).name == "client e2e"
    labels = {label.name: label.type for label in client.list_labels(project_id=project.id)}
    assert labels == {"car": "rectangle", "person": "any"}

    task = client.create_task("client e2e images", project_id=project.id, segment_size=2)
    state.task_id = task.id
    files = frame_files(images)
    sent: list[tuple[int, int]] = []
    polls: list[Request] = []
    # A small form limit and chunk: some files go in forms, the others by TUS.
    rq_id = client.start_task_data(
        task.id, files, image_quality=90, max_request_size=15_000, chunk_size=4_096,
        on_progress=lambda done, total: sent.append((done, total)),
    )  # fmt: skip
    total = sum(f.stat().st_size for f in files)
    assert sent[-1] == (total, total)
    finished = client.wait(rq_id, on_progress=polls.append, interval=0.2)
    assert finished.status == "finished"
    assert polls[-1].progress == 1.0

    task = client.get_task(task.id)
    assert task.size == FRAMES
    assert task.jobs.count == FRAMES // 2
    meta = client.get_data_meta(task.id)
    assert [f.name for f in meta.frames] == [f.name for f in files]
    assert {(f.width, f.height) for f in meta.frames} == {(64, 48)}
    assert [t.id for t in client.list_tasks(project_id=project.id)] == [task.id]


def test_the_cli_uploads_a_folder_with_progress_bars(
    cli: Cli, client: Client, images: Path, state: State
) -> None:
    made = cli.json(
        "tasks", "create", "cli e2e images", "--project", str(state.project_id),
        "--segment-size", "3", "--image-quality", "80",
    )  # fmt: skip
    state.cli_task_id = made["id"]
    status, drawn = cli.terminal("upload", str(made["id"]), str(images))
    assert status == 0, drawn
    no_traceback(drawn)
    progress_bar_drawn(drawn, "Uploading")
    progress_bar_drawn(drawn, "Creating task data")
    assert re.search(r"\d+(\.\d)?/\d+(\.\d)? kB", drawn), drawn  # a bar in bytes
    assert f"Task {made['id']} has {FRAMES} frame(s) in 2 job(s)" in drawn
    task = client.get_task(made["id"])
    assert (task.size, task.image_quality) == (FRAMES, 80)
    listed = cli.json("tasks", "list", "--project", str(state.project_id))
    assert {t["id"] for t in listed} == {state.task_id, state.cli_task_id}


def test_an_archive_is_uploaded_as_one_file(
    client: Client, images: Path, state: State, tmp_path: Path
) -> None:
    archive = tmp_path / "frames.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        for path in frame_files(images):
            packed.write(path, path.relative_to(images).as_posix())
    task = client.create_task("from an archive", project_id=state.project_id)
    done = client.upload_task_data_and_wait(task.id, [archive], image_quality=75, interval=0.2)
    assert done.size == FRAMES


def _put_boxes(client: Client, task_id: int) -> None:
    car = next(label for label in client.list_labels(task_id=task_id) if label.name == "car")
    version = client.http.get(f"/api/tasks/{task_id}/annotations").json()["version"]
    shapes = [
        {"type": "rectangle", "frame": frame, "label_id": car.id, "points": points,
         "occluded": False, "z_order": 0, "attributes": [], "group": 0, "source": "manual",
         "rotation": 0.0}
        for frame, points in BOXES.items()
    ]  # fmt: skip
    answer = client.http.put(
        f"/api/tasks/{task_id}/annotations",
        json={"version": version, "tags": [], "shapes": shapes, "tracks": []},
    )
    assert answer.status_code == 200, answer.text


def _boxes(client: Client, task_id: int) -> dict[int, list[float]]:
    shapes = client.http.get(f"/api/tasks/{task_id}/annotations").json()["shapes"]
    return {s["frame"]: [round(p, 3) for p in s["points"]] for s in shapes}


def test_the_cli_exports_coco_that_pycocotools_reads(
    cli: Cli, client: Client, state: State, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _put_boxes(client, state.task_id)
    target = tmp_path_factory.mktemp("export") / "coco.zip"
    status, drawn = cli.terminal(
        "export", str(state.task_id), "--format", "COCO 1.0", "-o", str(target)
    )
    assert status == 0, drawn
    no_traceback(drawn)
    progress_bar_drawn(drawn, "Exporting COCO 1.0")
    progress_bar_drawn(drawn, "Downloading")
    state.coco = target

    folder = target.parent / "unpacked"
    with zipfile.ZipFile(target) as archive:
        archive.extractall(folder)
    coco = COCO(str(folder / "annotations" / "instances_default.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["car", "person"]
    images = {i["id"]: i["file_name"] for i in coco.loadImgs(coco.getImgIds())}
    assert len(images) == FRAMES
    names = sorted(images.values())
    found = {}
    for annotation in coco.loadAnns(coco.getAnnIds()):
        frame = names.index(images[annotation["image_id"]])
        found[frame] = annotation["bbox"]
    assert found == {frame: [x1, y1, x2 - x1, y2 - y1] for frame, (x1, y1, x2, y2) in BOXES.items()}


def test_the_coco_file_imports_back(client: Client, state: State) -> None:
    assert state.coco is not None
    before = _boxes(client, state.task_id)
    assert client.http.delete(f"/api/tasks/{state.task_id}/annotations").status_code == 204
    assert _boxes(client, state.task_id) == {}
    sent: list[tuple[int, int]] = []
    done = client.import_annotations(
        state.task_id, state.coco, "COCO 1.0",
        on_progress=lambda d, t: sent.append((d, t)), interval=0.2,
    )  # fmt: skip
    assert done.status == "finished"
    assert "3 shapes" in done.message
    assert sent[-1] == (state.coco.stat().st_size, state.coco.stat().st_size)
    assert _boxes(client, state.task_id) == before


def test_a_backup_restores_as_a_new_task(
    cli: Cli, client: Client, state: State, tmp_path_factory: pytest.TempPathFactory
) -> None:
    target = tmp_path_factory.mktemp("backup") / "task.zip"
    polls: list[Request] = []
    client.backup(state.task_id, target, on_request=polls.append, interval=0.2)
    assert zipfile.ZipFile(target).testzip() is None
    assert polls[-1].status == "finished"
    state.backup = target

    restored_id = client.restore(target, interval=0.2)
    assert restored_id != state.task_id
    restored = client.get_task(restored_id)
    assert restored.size == FRAMES
    assert _boxes(client, restored_id) == _boxes(client, state.task_id)

    # The CLI's restore prints the new task.
    again = cli.json("restore", str(target))
    assert again["size"] == FRAMES
    assert again["id"] not in (state.task_id, restored_id)


def test_jobs_are_assigned_and_staged_from_the_cli(cli: Cli, client: Client, state: State) -> None:
    jobs = cli.json("jobs", "list", "--task", str(state.task_id))
    assert [j["start_frame"] for j in jobs] == [0, 2, 4]
    first = jobs[0]["id"]
    assigned = cli.json("jobs", "assign", str(first), "--user", "me")
    assert assigned[0]["assignee"]["username"] == "admin"
    staged = cli.json("jobs", "set", str(first), "--stage", "validation", "--state", "in progress")
    assert (staged[0]["stage"], staged[0]["state"]) == ("validation", "in progress")
    job = client.get_job(first)
    assert job.assignee is not None
    assert (job.assignee.username, job.stage, job.state) == ("admin", "validation", "in progress")
    unassigned = cli.json("jobs", "assign", str(first), "--user", "none")
    assert unassigned[0]["assignee"] is None
    # The client's own update, and a filter on the list.
    client.update_job(jobs[1]["id"], stage="acceptance")
    assert [j.id for j in client.list_jobs(task_id=state.task_id, stage="acceptance")] == [
        jobs[1]["id"]
    ]


def test_the_async_client_pages_and_polls(fleet: Launcher, state: State) -> None:
    async def run() -> tuple[list[int], list[int], str]:
        async with AsyncClient(fleet.url, fleet.token) as client:
            tasks = [t.id async for t in client.list_tasks(page_size=1, sort="id")]
            jobs = [j.id async for j in client.list_jobs(task_id=state.task_id, page_size=2)]
            rq_id = await client.start_export(state.task_id, "YOLO 1.1")
            done = await client.wait(rq_id, interval=0.2)
            return tasks, jobs, done.status

    tasks, jobs, status = asyncio.run(run())
    assert {state.task_id, state.cli_task_id} <= set(tasks)
    assert tasks == sorted(tasks)
    assert len(jobs) == FRAMES // 2
    assert status == "finished"


def test_requests_are_listed_and_watched(cli: Cli, client: Client, state: State) -> None:
    rq_id = client.start_export(state.task_id, "Datumaro 1.0", save_images=True)
    watched = cli.json("requests", "watch", rq_id)
    assert watched["status"] == "finished"
    assert watched["result_url"].startswith(client.url)
    listed = cli.json("requests", "list")
    assert rq_id in {r["id"] for r in listed}
    # one list of every service's requests: the tasks' creation (ingest's) too
    assert {"export:dataset", "create:task"} <= {r["operation"]["type"] for r in listed}
    table = cli.run("requests", "list")
    assert table.returncode == 0
    assert "export:dataset" in table.stdout


def test_render_writes_the_frame_with_its_boxes(
    cli: Cli, state: State, tmp_path_factory: pytest.TempPathFactory
) -> None:
    target = tmp_path_factory.mktemp("render") / "frame.png"
    done = cli.run("render", str(state.task_id), "1", "-o", str(target))
    assert done.returncode == 0, done.stderr
    with Image.open(target) as picture:
        assert picture.format == "PNG"
        assert picture.size == (64, 48)


def test_auto_annotation_from_the_cli(cli: Cli, client: Client, state: State) -> None:
    if not [f for f in client.list_functions() if f.kind == "detector"]:
        pytest.skip("the fleet has no detector")
    status, drawn = cli.terminal(
        "auto-annotate", str(state.cli_task_id), "--function", "ppocr_v4_det",
        "--map", "text=car", "--threshold", "0.5",
    )  # fmt: skip
    assert status == 0, drawn
    no_traceback(drawn)
    progress_bar_drawn(drawn, "Annotating with ppocr_v4_det")
    listed = cli.json("requests", "list")
    assert any(r["operation"]["type"] == "autoannotate:task" for r in listed)


def test_a_cloud_storage_prefix_feeds_a_task(
    cli: Cli, client: Client, fleet: Launcher, images: Path, state: State
) -> None:
    banner = re.search(r"s3 +(http://127\.0\.0\.1:\d+)", fleet.output.read_text())
    assert banner is not None
    keys = json.loads((fleet.state_dir / "secrets.json").read_text())
    bucket = boto3.client(
        "s3", endpoint_url=banner[1], region_name="us-east-1",
        aws_access_key_id=keys["s3_access_key"], aws_secret_access_key=keys["s3_secret_key"],
    )  # fmt: skip
    bucket.create_bucket(Bucket="client-e2e")
    files = frame_files(images)
    for path in files:
        bucket.put_object(Bucket="client-e2e", Key=f"drive/{path.relative_to(images)}",
                          Body=path.read_bytes())  # fmt: skip
    bucket.put_object(Bucket="client-e2e", Key="drive/README.txt", Body=b"not media")
    bucket.put_object(Bucket="client-e2e", Key="other/x.png", Body=files[0].read_bytes())
    storage = cli.json(
        "storages", "create", "client-e2e", "--key", keys["s3_access_key"],
        "--secret-key", keys["s3_secret_key"], "--endpoint-url", banner[1],
        "--region", "us-east-1",
    )  # fmt: skip
    listed = cli.json("storages", "ls", str(storage["id"]), "drive/")
    assert sorted(listed) == sorted(f"drive/{p.relative_to(images)}" for p in files)

    made = cli.json("tasks", "create", "from the bucket", "--project", str(state.project_id))
    uploaded = cli.json(
        "upload", str(made["id"]), "--cloud-storage", str(storage["id"]), "--prefix", "drive"
    )
    assert uploaded["size"] == FRAMES
    assert client.get_data_meta(made["id"]).cloud_storage_id == storage["id"]


def test_errors_are_the_servers_problems_without_a_traceback(
    cli: Cli, client: Client, fleet: Launcher, state: State, tmp_path: Path
) -> None:
    missing = cli.run("export", "999999", "--format", "COCO 1.0", "-o", str(tmp_path / "x.zip"))
    assert missing.returncode == 1
    assert "404" in missing.stderr
    assert "does not exist" in missing.stderr
    no_traceback(missing.stderr)
    assert not (tmp_path / "x.zip").exists()

    invalid = cli.run("projects", "create", "")
    assert invalid.returncode == 1
    assert "422" in invalid.stderr
    assert "body.name" in invalid.stderr
    no_traceback(invalid.stderr)

    bad_format = cli.run("export", str(state.task_id), "-f", "No Such Format", "-o", "x.zip")
    assert bad_format.returncode == 1
    assert "Unknown export format" in bad_format.stderr

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    status, drawn = cli.terminal("import", str(state.task_id), str(broken), "-f", "COCO 1.0")
    assert status == 1, drawn
    assert "failed" in drawn
    no_traceback(drawn)

    unreachable = cli.run("--url", "http://127.0.0.1:9", "whoami")
    assert unreachable.returncode == 1
    assert "cannot talk to the server" in unreachable.stderr
    no_traceback(unreachable.stderr)

    usage = cli.run("upload", str(state.task_id), str(tmp_path / "nothing-here"))
    assert usage.returncode == 2
    assert "does not exist" in usage.stderr
    no_traceback(usage.stderr)

    with pytest.raises(TesseraError) as raised:
        client.get_task(999999)
    assert raised.value.status == 404
