"""`tessera`: Tessera from the command line, built on `tessera.client.Client`.

    tessera login http://127.0.0.1:8080 --token tsr_...
    tessera projects create cars --label car:rectangle --label person
    tessera tasks create "drive 1" --project 1 --segment-size 100
    tessera upload 1 ./frames/
    tessera export 1 --format "COCO 1.0" -o coco.zip

Data goes to stdout (tables, or JSON with `--output json`); progress bars, messages and
errors go to stderr, and progress bars only when stderr is a terminal. An error prints
the server's problem detail and the fields at fault, and exits 1 (never a traceback).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from tessera.client import config
from tessera.client.client import Client
from tessera.client.config import ConfigError, Credentials
from tessera.client.errors import RequestFailed, TesseraError
from tessera.client.models import (
    Job,
    LabelSpec,
    Project,
    Request,
    ReviewShape,
    Task,
)
from tessera.client.operations import KEEP
from tessera.client.protocol import ByteProgress
from tessera.client.transfers import RequestProgress

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out.width = 160  # a file or a pipe: tables need not fold at 80 columns

app = typer.Typer(
    name="tessera",
    help="Tessera from the command line: projects, tasks, uploads, exports, imports, "
    "backups, jobs, auto-annotation and background requests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
projects_app = typer.Typer(help="Projects: create, list, show, delete.", no_args_is_help=True)
tasks_app = typer.Typer(help="Tasks: create, list, show, delete.", no_args_is_help=True)
jobs_app = typer.Typer(help="Jobs: list, show, assign, set stage and state.", no_args_is_help=True)
requests_app = typer.Typer(help="Background requests: list, watch, cancel.", no_args_is_help=True)
functions_app = typer.Typer(help="AI functions: list.", no_args_is_help=True)
storages_app = typer.Typer(help="Cloud storages: create, list, ls, delete.", no_args_is_help=True)
shapes_app = typer.Typer(
    help="Shapes of a task (job): review (least certain first), add, change, delete.",
    no_args_is_help=True,
)
app.add_typer(projects_app, name="projects")
app.add_typer(tasks_app, name="tasks")
app.add_typer(jobs_app, name="jobs")
app.add_typer(requests_app, name="requests")
app.add_typer(functions_app, name="functions")
app.add_typer(storages_app, name="storages")
app.add_typer(shapes_app, name="shapes")


class Output(StrEnum):
    """How a listing or an object is printed."""

    table = "table"
    json = "json"


OutputOption = Annotated[
    Output, typer.Option("--output", help="table for people, json for scripts")
]


@dataclass
class Settings:
    """The global options: where to connect."""

    url: str | None
    token: str | None
    organization: str | None


@app.callback()
def _global(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar=config.URL_VARIABLE, help="The server (else `login`'s)"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar=config.TOKEN_VARIABLE, help="An access token (else `login`'s)"
        ),
    ] = None,
    organization: Annotated[
        str | None,
        typer.Option("--org", envvar="TESSERA_ORG", help="Work in this organization (slug)"),
    ] = None,
) -> None:
    ctx.obj = Settings(url, token, organization)


@contextmanager
def connect(ctx: typer.Context, *, need_token: bool = True) -> Iterator[Client]:
    """A client on the URL and token of the options, the environment or the config."""
    settings: Settings = ctx.obj
    found = config.resolve(settings.url, settings.token)
    if not found.url or (need_token and not found.token):
        raise ConfigError(
            "Not logged in: run `tessera login URL --token TOKEN`, or set TESSERA_URL and "
            "TESSERA_TOKEN."
        )
    with Client(found.url, found.token, organization=settings.organization) as client:
        yield client


# --- printing ---------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def print_json(value: Any) -> None:
    """JSON on stdout, for scripts."""
    if isinstance(value, list):
        value = [_plain(item) for item in value]
    sys.stdout.write(json.dumps(_plain(value), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.0%}"
    return str(value)


def print_table(
    rows: Iterable[Any], columns: Sequence[tuple[str, Callable[[Any], Any]]], *, title: str = ""
) -> None:
    """A table on stdout: one row per item, `columns` as (heading, getter)."""
    table = Table(title=title or None, show_lines=False)
    for index, (heading, _) in enumerate(columns):
        table.add_column(heading, overflow="fold", no_wrap=index == 0)
    count = 0
    for row in rows:
        table.add_row(*(Text(_cell(get(row))) for _, get in columns))
        count += 1
    if count:
        out.print(table)
    else:
        err.print("Nothing to list.")


def print_fields(item: BaseModel, fields: Sequence[tuple[str, Any]]) -> None:
    """An object's fields, one a line."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in fields:
        table.add_row(name, Text(_cell(value)))
    out.print(table)


def emit(
    output: Output,
    rows: Iterable[Any],
    columns: Sequence[tuple[str, Callable[[Any], Any]]],
) -> None:
    """A listing as JSON or a table."""
    if output == Output.json:
        print_json(list(rows))
    else:
        print_table(rows, columns)


def _user(value: Any) -> str:
    return value.username if value is not None else ""


PROJECT_COLUMNS: list[tuple[str, Callable[[Any], Any]]] = [
    ("ID", lambda p: p.id),
    ("Name", lambda p: p.name),
    ("Status", lambda p: p.status),
    ("Owner", lambda p: _user(p.owner)),
    ("Tasks", lambda p: p.tasks.count),
    ("Created", lambda p: p.created_date.strftime("%Y-%m-%d %H:%M")),
]
TASK_COLUMNS: list[tuple[str, Callable[[Any], Any]]] = [
    ("ID", lambda t: t.id),
    ("Name", lambda t: t.name),
    ("Project", lambda t: t.project_id),
    ("Status", lambda t: t.status),
    ("Frames", lambda t: t.size),
    ("Jobs", lambda t: t.jobs.count),
    ("Mode", lambda t: t.mode),
    ("Owner", lambda t: _user(t.owner)),
]
JOB_COLUMNS: list[tuple[str, Callable[[Any], Any]]] = [
    ("ID", lambda j: j.id),
    ("Task", lambda j: j.task_id),
    ("Frames", lambda j: f"{j.start_frame}-{j.stop_frame}"),
    ("Stage", lambda j: j.stage),
    ("State", lambda j: j.state),
    ("Assignee", lambda j: _user(j.assignee)),
]


def _target(request: Request) -> str:
    operation = request.operation
    for kind, value in (
        ("job", operation.job_id), ("task", operation.task_id), ("project", operation.project_id),
    ):  # fmt: skip
        if value is not None:
            return f"{kind} {value}"
    return operation.target


REQUEST_COLUMNS: list[tuple[str, Callable[[Any], Any]]] = [
    ("ID", lambda r: r.id),
    ("Operation", lambda r: r.operation.type),
    ("Target", _target),
    ("Status", lambda r: r.status),
    ("Progress", lambda r: r.progress),
    ("Message", lambda r: r.message),
]


# --- progress bars ----------------------------------------------------------------------


def _bytes_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )


@contextmanager
def byte_bar(description: str) -> Iterator[ByteProgress]:
    """A progress bar in bytes while the block runs; yields the transfer's callback."""
    with _bytes_progress() as progress:
        bar = progress.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total or None)

        yield advance


@contextmanager
def request_bar(description: str) -> Iterator[RequestProgress]:
    """A progress bar in percent of a background request while the block runs."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as progress:
        bar = progress.add_task(description, total=100, status="queued")

        def advance(request: Request) -> None:
            progress.update(bar, completed=(request.progress or 0.0) * 100, status=request.status)

        yield advance


def say(message: str) -> None:
    """A message for people, on stderr."""
    err.print(Text(message), soft_wrap=True)


# --- labels -----------------------------------------------------------------------------


LABEL_TYPES = ("any", "rectangle", "polygon", "polyline", "points", "ellipse", "cuboid",
               "mask", "skeleton", "tag")  # fmt: skip


def parse_labels(flags: Sequence[str], labels_file: Path | None) -> list[LabelSpec]:
    """Labels from `--label name[:type]` flags and a JSON file of CVAT's label objects
    (a list, or an object with `labels`)."""
    labels: list[LabelSpec] = []
    if labels_file is not None:
        document = json.loads(labels_file.read_text())
        if isinstance(document, dict):
            document = document.get("labels")
        if not isinstance(document, list):
            raise typer.BadParameter(
                "must hold a JSON list of labels ({'name': ..., 'type': ...})",
                param_hint="--labels-file",
            )
        labels.extend(LabelSpec.model_validate(item) for item in document)
    for flag in flags:
        name, _, kind = flag.partition(":")
        if not name.strip():
            raise typer.BadParameter(f"{flag!r} has no name", param_hint="--label")
        kind = kind.strip() or "any"
        if kind not in LABEL_TYPES:
            raise typer.BadParameter(
                f"{kind!r} is not a label type ({', '.join(LABEL_TYPES)})", param_hint="--label"
            )
        labels.append(LabelSpec(name=name.strip(), type=kind))
    return labels


LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="A label: name or name:type (type: rectangle, "
                 "polygon, polyline, points, ellipse, cuboid, mask, skeleton, tag, any)"),
]  # fmt: skip
LabelsFileOption = Annotated[
    Path | None,
    typer.Option("--labels-file", exists=True, dir_okay=False,
                 help="A JSON list of labels as CVAT writes them"),
]  # fmt: skip


# --- login ------------------------------------------------------------------------------


@app.command()
def login(
    url: Annotated[str, typer.Argument(help="The server, such as http://127.0.0.1:8080")],
    token: Annotated[
        str | None,
        typer.Option("--token", help="A personal access token (asked for when not given)"),
    ] = None,
) -> None:
    """Check a URL and token against the server and keep them in your config file."""
    token = token or os.environ.get(config.TOKEN_VARIABLE)
    if not token:
        token = typer.prompt("Access token", hide_input=True)
    with Client(url, token) as client:
        try:
            user = client.me()
        except TesseraError as error:
            if error.status in (401, 403):
                error.detail = f"The server refused the token: {error.detail}"
            raise
    path = config.save(Credentials(url.rstrip("/"), token))
    say(f"Logged in to {url} as {user.username}; saved in {path}")


@app.command()
def logout() -> None:
    """Forget the URL and token of `login`."""
    path = config.config_path()
    say(f"Removed {path}" if config.forget(path) else "Not logged in.")


@app.command()
def whoami(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """The user of the token, and the server."""
    with connect(ctx) as client:
        user, about = client.me(), client.about()
    if output == Output.json:
        print_json({"url": client.url, "user": _plain(user), "server": _plain(about)})
        return
    print_fields(user, [
        ("server", f"{client.url} ({about.name} {about.tessera_version or ''}, "
                   f"CVAT API {about.version})"),
        ("user", user.username), ("id", user.id), ("email", user.email),
        ("superuser", user.is_superuser),
    ])  # fmt: skip


@app.command()
def formats(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """The formats the server imports and exports (names for --format)."""
    with connect(ctx) as client:
        found = client.formats()
    names = sorted({f.name for f in found.exporters} | {f.name for f in found.importers})
    exporters = {f.name for f in found.exporters if f.enabled}
    importers = {f.name for f in found.importers if f.enabled}
    rows = [{"name": n, "export": n in exporters, "import": n in importers} for n in names]
    emit(output, rows, [
        ("Format", lambda r: r["name"]),
        ("Export", lambda r: "yes" if r["export"] else ""),
        ("Import", lambda r: "yes" if r["import"] else ""),
    ])  # fmt: skip


# --- projects ---------------------------------------------------------------------------


@projects_app.command("create")
def projects_create(
    ctx: typer.Context,
    name: str,
    label: LabelOption = None,
    labels_file: LabelsFileOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Create a project with labels."""
    labels = parse_labels(label or [], labels_file)
    with connect(ctx) as client:
        project = client.create_project(name, labels=labels)
    if output == Output.json:
        print_json(project)
    else:
        say(f"Created project {project.id} ({project.name}) with {len(labels)} labels")
        out.print(project.id)


@projects_app.command("list")
def projects_list(
    ctx: typer.Context,
    search: Annotated[str | None, typer.Option(help="Words in the name")] = None,
    output: OutputOption = Output.table,
) -> None:
    """The projects you see."""
    with connect(ctx) as client:
        emit(output, client.list_projects(search=search, sort="id"), PROJECT_COLUMNS)


@projects_app.command("show")
def projects_show(ctx: typer.Context, project_id: int, output: OutputOption = Output.table) -> None:
    """A project and its labels."""
    with connect(ctx) as client:
        project = client.get_project(project_id)
        labels = list(client.list_labels(project_id=project_id))
    if output == Output.json:
        print_json({**_plain(project), "labels": [_plain(label) for label in labels]})
        return
    _show_project(project)
    print_table(labels, LABEL_COLUMNS, title="Labels")


def _show_project(project: Project) -> None:
    print_fields(project, [
        ("id", project.id), ("name", project.name), ("status", project.status),
        ("owner", _user(project.owner)), ("assignee", _user(project.assignee)),
        ("tasks", project.tasks.count), ("created", project.created_date),
        ("updated", project.updated_date),
    ])  # fmt: skip


LABEL_COLUMNS: list[tuple[str, Callable[[Any], Any]]] = [
    ("ID", lambda lb: lb.id),
    ("Name", lambda lb: lb.name),
    ("Type", lambda lb: lb.type),
    ("Color", lambda lb: lb.color),
    ("Attributes", lambda lb: ", ".join(a.name for a in lb.attributes)),
]


@projects_app.command("delete")
def projects_delete(
    ctx: typer.Context,
    project_ids: Annotated[list[int], typer.Argument(help="Projects to delete")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
) -> None:
    """Delete projects, with their tasks."""
    _confirm(yes, f"Delete project(s) {', '.join(map(str, project_ids))} with their tasks?")
    with connect(ctx) as client:
        for project_id in project_ids:
            client.delete_project(project_id)
            say(f"Deleted project {project_id}")


def _confirm(yes: bool, question: str) -> None:
    if not yes and sys.stdin.isatty() and not typer.confirm(question):
        raise typer.Abort()


# --- tasks ------------------------------------------------------------------------------


@tasks_app.command("create")
def tasks_create(
    ctx: typer.Context,
    *,
    name: str,
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Media to upload at once (files, folders, archives, a video)"),
    ] = None,
    project: Annotated[int | None, typer.Option("--project", "-p", help="Its project")] = None,
    label: LabelOption = None,
    labels_file: LabelsFileOption = None,
    segment_size: Annotated[
        int | None, typer.Option("--segment-size", help="Frames per job (0: one job)")
    ] = None,
    overlap: Annotated[int | None, typer.Option(help="Frames shared by neighbour jobs")] = None,
    image_quality: Annotated[
        int | None, typer.Option("--image-quality", min=5, max=100, help="Of compressed chunks")
    ] = None,
    subset: Annotated[str | None, typer.Option(help="train, validation, test...")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Create a task (in a project, or with labels of its own); with FILES, upload them."""
    labels = parse_labels(label or [], labels_file)
    if project is None and not labels:
        raise typer.BadParameter(
            "a task needs a project (--project) or labels (--label, --labels-file)"
        )
    with connect(ctx) as client:
        task = client.create_task(
            name, project_id=project, labels=labels, segment_size=segment_size,
            overlap=overlap, image_quality=image_quality, subset=subset,
        )  # fmt: skip
        say(f"Created task {task.id} ({task.name})")
        if files:
            task = _upload(client, task, files, image_quality=task.image_quality)
    if output == Output.json:
        print_json(task)
    else:
        out.print(task.id)


@tasks_app.command("list")
def tasks_list(
    ctx: typer.Context,
    project: Annotated[int | None, typer.Option("--project", "-p", help="Of a project")] = None,
    search: Annotated[str | None, typer.Option(help="Words in the name")] = None,
    output: OutputOption = Output.table,
) -> None:
    """The tasks you see."""
    with connect(ctx) as client:
        emit(output, client.list_tasks(project_id=project, search=search, sort="id"), TASK_COLUMNS)


@tasks_app.command("show")
def tasks_show(ctx: typer.Context, task_id: int, output: OutputOption = Output.table) -> None:
    """A task, its jobs and its labels."""
    with connect(ctx) as client:
        task = client.get_task(task_id)
        jobs = list(client.list_jobs(task_id=task_id, sort="id"))
        labels = list(client.list_labels(task_id=task_id))
    if output == Output.json:
        print_json({
            **_plain(task), "jobs": [_plain(j) for j in jobs],
            "labels": [_plain(label) for label in labels],
        })  # fmt: skip
        return
    _show_task(task)
    print_table(jobs, JOB_COLUMNS, title="Jobs")
    print_table(labels, LABEL_COLUMNS, title="Labels")


def _show_task(task: Task) -> None:
    print_fields(task, [
        ("id", task.id), ("name", task.name), ("project", task.project_id),
        ("status", task.status), ("mode", task.mode), ("dimension", task.dimension),
        ("frames", task.size), ("segment size", task.segment_size),
        ("overlap", task.overlap), ("image quality", task.image_quality),
        ("subset", task.subset), ("owner", _user(task.owner)),
        ("assignee", _user(task.assignee)), ("created", task.created_date),
        ("updated", task.updated_date),
    ])  # fmt: skip


@tasks_app.command("delete")
def tasks_delete(
    ctx: typer.Context,
    task_ids: Annotated[list[int], typer.Argument(help="Tasks to delete")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
) -> None:
    """Delete tasks, with their media and annotations."""
    _confirm(yes, f"Delete task(s) {', '.join(map(str, task_ids))}?")
    with connect(ctx) as client:
        for task_id in task_ids:
            client.delete_task(task_id)
            say(f"Deleted task {task_id}")


# --- media ------------------------------------------------------------------------------


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files and the files of folders (recursively, by name; hidden ones left out)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p for p in path.rglob("*")
                    if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )  # fmt: skip
        elif path.is_file():
            found.append(path)
        else:
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
    if not found:
        raise typer.BadParameter("no files to upload", param_hint="PATH")
    return found


class Sorting(StrEnum):
    """CVAT's sorting methods of a task's files."""

    lexicographical = "lexicographical"
    natural = "natural"
    predefined = "predefined"
    random = "random"


def _upload(
    client: Client,
    task: Task,
    paths: Sequence[Path],
    *,
    image_quality: int,
    wait: bool = True,
    **options: Any,
) -> Task:
    files = expand(paths)
    total = sum(f.stat().st_size for f in files)
    say(f"Uploading {len(files)} file(s), {total:,} bytes, to task {task.id}")
    with byte_bar("Uploading") as on_progress:
        rq_id = client.start_task_data(
            task.id, files, image_quality=image_quality, on_progress=on_progress, **options
        )
    return _created(client, task, rq_id, wait)


def _created(client: Client, task: Task, rq_id: str, wait: bool) -> Task:
    if not wait:
        say(f"Creating the task's media in the background: tessera requests watch {rq_id}")
        return task
    with request_bar("Creating task data") as on_request:
        client.wait(rq_id, on_progress=on_request)
    task = client.get_task(task.id)
    say(f"Task {task.id} has {task.size} frame(s) in {task.jobs.count} job(s)")
    return task


@app.command()
def upload(
    ctx: typer.Context,
    *,
    task_id: Annotated[int, typer.Argument(help="The task")],
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Images, folders of images, archives, a video, point clouds"),
    ] = None,
    cloud_storage: Annotated[
        int | None,
        typer.Option("--cloud-storage", help="Take the media from this cloud storage instead"),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option(help="With --cloud-storage: the bucket folder (default: the storage's)"),
    ] = None,
    image_quality: Annotated[
        int | None, typer.Option("--image-quality", min=5, max=100, help="Default: the task's")
    ] = None,
    sorting: Annotated[Sorting, typer.Option(help="Order of the frames")] = (
        Sorting.lexicographical
    ),
    chunk_size: Annotated[int | None, typer.Option("--chunk-size", help="Frames a chunk")] = None,
    frame_step: Annotated[
        int | None, typer.Option("--frame-step", min=1, help="Take every Nth frame")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the media is ready")] = True,
    output: OutputOption = Output.table,
) -> None:
    """Attach media to a task: local files, or objects of a cloud storage (S3 prefix)."""
    options: dict[str, Any] = {"sorting_method": sorting.value}
    if chunk_size is not None:
        options["chunk_size"] = chunk_size
    if frame_step is not None:
        options["frame_filter"] = f"step={frame_step}"
    with connect(ctx) as client:
        task = client.get_task(task_id)
        quality = image_quality or task.image_quality
        if cloud_storage is not None:
            if paths:
                raise typer.BadParameter("give local PATHs or --cloud-storage, not both")
            keys = client.list_cloud_files(cloud_storage, prefix)
            if not keys:
                raise typer.BadParameter(
                    f"no media under {prefix or 'the storage prefix'!r} in cloud storage "
                    f"{cloud_storage}",
                    param_hint="--prefix",
                )
            say(f"Taking {len(keys)} object(s) from cloud storage {cloud_storage}")
            rq_id = client.start_task_data_from_cloud(
                task_id, cloud_storage, keys, image_quality=quality, **options
            )
            task = _created(client, task, rq_id, wait)
        elif not paths:
            raise typer.BadParameter("give files to upload, or --cloud-storage", param_hint="PATH")
        else:
            task = _upload(client, task, paths, image_quality=quality, wait=wait, **options)
    if output == Output.json:
        print_json(task)


# --- exports, imports and backups -------------------------------------------------------


def _kind(project: bool, job: bool) -> Literal["projects", "tasks", "jobs"]:
    if project and job:
        raise typer.BadParameter("--project and --job exclude each other")
    return "projects" if project else "jobs" if job else "tasks"


@app.command()
def export(
    ctx: typer.Context,
    *,
    target_id: Annotated[int, typer.Argument(metavar="TASK", help="The task (or project, job)")],
    format_name: Annotated[
        str, typer.Option("--format", "-f", help="An exporter (see `tessera formats`)")
    ],
    output_file: Annotated[Path, typer.Option("--output-file", "-o", help="The zip to write")],
    save_images: Annotated[
        bool, typer.Option("--save-images", help="Put the images in the archive too")
    ] = False,
    project: Annotated[bool, typer.Option("--project", help="TASK is a project")] = False,
    job: Annotated[bool, typer.Option("--job", help="TASK is a job")] = False,
) -> None:
    """Export a task's annotations (and images) in a dataset format, and download it."""
    target = _kind(project, job)
    with connect(ctx) as client:
        rq_id = client.start_export(target_id, format_name, target=target, save_images=save_images)
        with request_bar(f"Exporting {format_name}") as on_request:
            request = client.wait(rq_id, on_progress=on_request)
        _download(client, request, output_file)


def _download(client: Client, request: Request, path: Path) -> None:
    if not request.result_url:
        raise TesseraError(0, f"Request {request.id} has no file to download.")
    with byte_bar("Downloading") as on_progress:
        client.download(request.result_url, path, on_progress=on_progress)
    say(f"Wrote {path} ({path.stat().st_size:,} bytes)")


class ImportModeChoice(StrEnum):
    """What an import does with the annotations there."""

    REPLACE = "replace"
    APPEND = "append"


@app.command("import")
def import_(
    ctx: typer.Context,
    *,
    target_id: Annotated[int, typer.Argument(metavar="TASK", help="The task (or job)")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The file")],
    format_name: Annotated[
        str, typer.Option("--format", "-f", help="An importer (see `tessera formats`)")
    ],
    mode: Annotated[ImportModeChoice, typer.Option(help="Replace the annotations, or add")] = (
        ImportModeChoice.REPLACE
    ),
    job: Annotated[bool, typer.Option("--job", help="TASK is a job")] = False,
) -> None:
    """Import annotations from a file into a task (or job)."""
    with connect(ctx) as client:
        with byte_bar("Uploading") as on_progress:
            rq_id = client.start_import(
                target_id, file, format_name, target="jobs" if job else "tasks",
                mode=mode.value, on_progress=on_progress,
            )  # fmt: skip
        with request_bar(f"Importing {format_name}") as on_request:
            request = client.wait(rq_id, on_progress=on_request)
    say(request.message or "Imported.")


@app.command()
def backup(
    ctx: typer.Context,
    target_id: Annotated[int, typer.Argument(metavar="TASK", help="The task (or project)")],
    output_file: Annotated[Path, typer.Option("--output-file", "-o", help="The zip to write")],
    project: Annotated[bool, typer.Option("--project", help="TASK is a project")] = False,
) -> None:
    """Back a task (project) up, in CVAT's backup format, and download it."""
    with connect(ctx) as client:
        rq_id = client.start_backup(target_id, target="projects" if project else "tasks")
        with request_bar("Backing up") as on_request:
            request = client.wait(rq_id, on_progress=on_request)
        _download(client, request, output_file)


@app.command()
def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A backup zip")],
    project: Annotated[bool, typer.Option("--project", help="It is a project's backup")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Restore a backup (Tessera's or CVAT's) as a new task (project)."""
    target: Literal["projects", "tasks"] = "projects" if project else "tasks"
    with connect(ctx) as client:
        with byte_bar("Uploading") as on_progress:
            rq_id = client.start_restore(file, target=target, on_progress=on_progress)
        with request_bar("Restoring") as on_request:
            request = client.wait(rq_id, on_progress=on_request)
        made = request.result_id
        restored: Any = (
            None if made is None
            else client.get_project(made) if project else client.get_task(made)
        )  # fmt: skip
    if output == Output.json:
        print_json(restored)
        return
    say(f"Restored {target[:-1]} {made}" + (f" ({restored.name})" if restored else ""))
    out.print(made)


@app.command()
def render(
    ctx: typer.Context,
    *,
    target_id: Annotated[int, typer.Argument(metavar="TASK", help="The task (or job)")],
    frame: Annotated[int, typer.Argument(help="A task frame number")],
    output_file: Annotated[Path, typer.Option("--output-file", "-o", help="The PNG to write")],
    job: Annotated[bool, typer.Option("--job", help="TASK is a job")] = False,
    max_size: Annotated[
        int | None, typer.Option("--max-size", help="Longest side in pixels")
    ] = None,
    names: Annotated[bool, typer.Option("--names/--no-names", help="Write label names")] = True,
    outline_width: Annotated[int | None, typer.Option("--outline-width")] = None,
    opacity: Annotated[float | None, typer.Option(help="Of masks' fill, 0..1")] = None,
) -> None:
    """Draw a frame with its annotations into a PNG (a .jpg name gives a JPEG)."""
    image_format: Literal["png", "jpeg"] = (
        "jpeg" if output_file.suffix.lower() in (".jpg", ".jpeg") else "png"
    )
    with connect(ctx) as client:
        data = client.render_frame(
            target_id, frame, target="jobs" if job else "tasks", format=image_format,
            max_size=max_size, labels=names, outline_width=outline_width, opacity=opacity,
        )  # fmt: skip
    output_file.write_bytes(data)
    say(f"Wrote {output_file} ({len(data):,} bytes)")


# --- jobs -------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    ctx: typer.Context,
    *,
    task: Annotated[int | None, typer.Option("--task", "-t", help="Of a task")] = None,
    project: Annotated[int | None, typer.Option("--project", "-p", help="Of a project")] = None,
    stage: Annotated[str | None, typer.Option(help="annotation, validation, acceptance")] = None,
    state: Annotated[str | None, typer.Option(help="new, in progress, completed, rejected")] = None,
    output: OutputOption = Output.table,
) -> None:
    """The jobs you see."""
    with connect(ctx) as client:
        jobs = client.list_jobs(
            task_id=task, project_id=project, stage=stage, state=state, sort="id"
        )
        emit(output, jobs, JOB_COLUMNS)


@jobs_app.command("show")
def jobs_show(ctx: typer.Context, job_id: int, output: OutputOption = Output.table) -> None:
    """A job."""
    with connect(ctx) as client:
        job = client.get_job(job_id)
    if output == Output.json:
        print_json(job)
    else:
        _show_job(job)


def _show_job(job: Job) -> None:
    print_fields(job, [
        ("id", job.id), ("task", job.task_id), ("project", job.project_id),
        ("frames", f"{job.start_frame}-{job.stop_frame}"), ("stage", job.stage),
        ("state", job.state), ("assignee", _user(job.assignee)), ("type", job.type),
    ])  # fmt: skip


@jobs_app.command("assign")
def jobs_assign(
    ctx: typer.Context,
    job_ids: Annotated[list[int], typer.Argument(metavar="JOB...", help="Jobs")],
    user: Annotated[
        str,
        typer.Option("--user", "-u", help="A username or user id, `me`, or `none` to unassign"),
    ],
    output: OutputOption = Output.table,
) -> None:
    """Assign jobs to a user (or unassign them)."""
    with connect(ctx) as client:
        assignee = _user_id(client, user)
        jobs = [client.update_job(job_id, assignee=assignee) for job_id in job_ids]
    _jobs_changed(jobs, output)


def _user_id(client: Client, user: str) -> int | None:
    """The id `--user` names: a user id, `me`, `none` (no one) or a username."""
    if user.lower() == "none":
        return None
    if user.lower() in ("me", "self"):
        return client.me().id
    if user.isdigit():
        return int(user)
    if not user.strip():
        raise typer.BadParameter("a username or user id, `me` or `none`", param_hint="--user")
    found = next(iter(client.list_users(username=user, page_size=1)), None)
    if found is None:
        raise typer.BadParameter(
            f"no user named {user!r} that you can see (in an organization, only its members)",
            param_hint="--user",
        )
    return found.id


class Stage(StrEnum):
    """A job's stage."""

    annotation = "annotation"
    validation = "validation"
    acceptance = "acceptance"


class State(StrEnum):
    """A job's state."""

    new = "new"
    in_progress = "in progress"
    completed = "completed"
    rejected = "rejected"


@jobs_app.command("set")
def jobs_set(
    ctx: typer.Context,
    job_ids: Annotated[list[int], typer.Argument(metavar="JOB...", help="Jobs")],
    stage: Annotated[Stage | None, typer.Option(help="The stage")] = None,
    state: Annotated[State | None, typer.Option(help="The state")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Set jobs' stage and state."""
    if stage is None and state is None:
        raise typer.BadParameter("give --stage, --state or both")
    with connect(ctx) as client:
        jobs = [
            client.update_job(
                job_id,
                stage=stage.value if stage is not None else KEEP,
                state=state.value if state is not None else KEEP,
            )
            for job_id in job_ids
        ]
    _jobs_changed(jobs, output)


def _jobs_changed(jobs: list[Job], output: Output) -> None:
    if output == Output.json:
        print_json(jobs)
    else:
        print_table(jobs, JOB_COLUMNS)


# --- background requests ----------------------------------------------------------------


@requests_app.command("list")
def requests_list(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Your background requests: task creation, exports, imports, backups, auto-annotation."""
    with connect(ctx) as client:
        found = list(client.list_requests())
    emit(output, found, REQUEST_COLUMNS)


@requests_app.command("watch")
def requests_watch(ctx: typer.Context, rq_id: str, output: OutputOption = Output.table) -> None:
    """Follow a request until it ends (exits 1 if it failed)."""
    with connect(ctx) as client, request_bar(rq_id) as on_request:
        request = client.wait(rq_id, on_progress=on_request)
    if output == Output.json:
        print_json(request)
        return
    say(f"{rq_id}: {request.status}" + (f": {request.message}" if request.message else ""))
    if request.result_url:
        say(f"result: {request.result_url}")
    if request.result_id is not None:
        say(f"made: {request.result_id}")


@requests_app.command("cancel")
def requests_cancel(ctx: typer.Context, rq_ids: list[str]) -> None:
    """Cancel queued or running requests."""
    with connect(ctx) as client:
        for rq_id in rq_ids:
            client.cancel_request(rq_id)
            say(f"Cancelled {rq_id}")


# --- auto-annotation --------------------------------------------------------------------


@functions_app.command("list")
def functions_list(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """The AI functions the server runs."""
    with connect(ctx) as client:
        found = client.list_functions()
    emit(output, found, [
        ("ID", lambda f: f.id), ("Kind", lambda f: f.kind), ("Name", lambda f: f.name),
    ])  # fmt: skip


def parse_frames(text: str) -> list[int]:
    """Task frame numbers from `0-9,15` (ranges inclusive), in order, each once."""
    frames: set[int] = set()
    for item in text.replace(" ", "").split(","):
        first, dash, last = item.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise typer.BadParameter(f"{item!r} is not N or N-M", param_hint="--frames")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise typer.BadParameter(f"{item!r} ends before it starts", param_hint="--frames")
        frames.update(range(low, high + 1))
    return sorted(frames)


@app.command("auto-annotate")
def auto_annotate(
    ctx: typer.Context,
    *,
    task_id: Annotated[
        int | None, typer.Argument(metavar="[TASK]", help="The task (or --project)")
    ] = None,
    function: Annotated[
        str, typer.Option("--function", "-F", help="A detector (see `tessera functions list`)")
    ],
    project: Annotated[
        int | None, typer.Option("--project", help="Every task of this project, not TASK")
    ] = None,
    job: Annotated[
        list[int] | None, typer.Option("--job", help="Only this job (repeatable)")
    ] = None,
    frames: Annotated[
        str | None, typer.Option("--frames", help="Only these frames of TASK: 0-9,15")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(min=0, max=1, help="The least confidence kept")
    ] = None,
    cleanup: Annotated[
        bool, typer.Option("--cleanup", help="Replace the annotations there")
    ] = False,
    label_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            "-m",
            help="MODEL_LABEL=TASK_LABEL (by default, labels of the same name)",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until it ends")] = True,
) -> None:
    """Annotate a task (some of its jobs or frames) or a project (some of its tasks'
    jobs) with a detector."""
    if (task_id is None) == (project is None):
        raise typer.BadParameter("give TASK or --project (one of them)")
    mapping: dict[str, Any] | None = None
    for item in label_map or []:
        model_label, sep, task_label = item.partition("=")
        if not sep or not model_label.strip() or not task_label.strip():
            raise typer.BadParameter(f"{item!r} is not MODEL_LABEL=TASK_LABEL", param_hint="--map")
        mapping = {**(mapping or {}), model_label.strip(): {"name": task_label.strip()}}
    # One job of a task is CVAT's request; more (or a project's) go beyond it.
    jobs: dict[str, Any] = {}
    if job and len(job) == 1 and task_id is not None:
        jobs["job_id"] = job[0]
    elif job:
        jobs["job_ids"] = job
    with connect(ctx) as client:
        started = client.start_auto_annotation(
            task_id, function, project_id=project, **jobs,
            frames=None if frames is None else parse_frames(frames), threshold=threshold,
            cleanup=cleanup, mapping=mapping,
        )  # fmt: skip
        if not wait:
            say(f"Started {started.id}: tessera requests watch {started.id}")
            out.print(started.id)
            return
        with request_bar(f"Annotating with {function}") as on_request:
            request = client.wait(started.id, on_progress=on_request)
    where = f"Task {task_id}" if project is None else f"Project {project}"
    say(request.message or f"{where} annotated.")


# --- cloud storages ---------------------------------------------------------------------


@storages_app.command("list")
def storages_list(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """The cloud storages you see."""
    with connect(ctx) as client:
        emit(output, client.list_cloud_storages(), [
            ("ID", lambda s: s.id), ("Name", lambda s: s.display_name),
            ("Provider", lambda s: s.provider_type), ("Bucket", lambda s: s.resource),
            ("Attributes", lambda s: s.specific_attributes),
        ])  # fmt: skip


@storages_app.command("create")
def storages_create(
    ctx: typer.Context,
    bucket: Annotated[str, typer.Argument(help="The S3 bucket")],
    *,
    name: Annotated[str | None, typer.Option(help="Its display name (the bucket's)")] = None,
    key: Annotated[str | None, typer.Option(envvar="AWS_ACCESS_KEY_ID", help="Access key")] = None,
    secret_key: Annotated[
        str | None, typer.Option("--secret-key", envvar="AWS_SECRET_ACCESS_KEY", help="Secret")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="An S3-compatible endpoint"),
    ] = None,
    region: Annotated[str | None, typer.Option(help="The bucket's region")] = None,
    prefix: Annotated[str | None, typer.Option(help="Limit it to this folder")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Connect an S3 bucket as a cloud storage (keys from the options or AWS_* variables)."""
    with connect(ctx) as client:
        storage = client.create_cloud_storage(
            bucket, display_name=name, key=key, secret_key=secret_key,
            endpoint_url=endpoint_url, region=region, prefix=prefix,
        )  # fmt: skip
    if output == Output.json:
        print_json(storage)
    else:
        say(f"Created cloud storage {storage.id} ({storage.display_name})")
        out.print(storage.id)


@storages_app.command("delete")
def storages_delete(ctx: typer.Context, storage_ids: list[int]) -> None:
    """Disconnect cloud storages (their buckets are left as they are)."""
    with connect(ctx) as client:
        for storage_id in storage_ids:
            client.delete_cloud_storage(storage_id)
            say(f"Deleted cloud storage {storage_id}")


@storages_app.command("ls")
def storages_ls(
    ctx: typer.Context,
    storage_id: int,
    prefix: Annotated[str | None, typer.Argument(help="A folder of the bucket")] = None,
    output: OutputOption = Output.table,
) -> None:
    """The media objects under a folder of a cloud storage (sub-folders included)."""
    with connect(ctx) as client:
        keys = client.list_cloud_files(storage_id, prefix)
    if output == Output.json:
        print_json(keys)
    else:
        for key in keys:
            out.print(Text(key))


# --- the entry point --------------------------------------------------------------------


def print_error(error: TesseraError) -> None:
    """The server's problem: status, title, detail, and each field at fault."""
    if isinstance(error, RequestFailed):
        head = f"Request {error.rq_id} failed: {error.detail}"
    elif error.status:
        head = f"{error.status} {error.title}: {error.detail}"
    else:
        head = error.detail
    err.print(Text("Error: ", style="bold red") + Text(head), soft_wrap=True)
    if any(field.message not in head for field in error.errors):
        for field in error.errors:
            err.print(Text(f"  {field.field}: {field.message}"), soft_wrap=True)


def main() -> None:
    """`tessera`: run the command; every failure is a message and exit status 1."""
    try:
        app(prog_name="tessera")
    except TesseraError as error:
        print_error(error)
        sys.exit(1)
    except ConfigError as error:
        err.print(Text("Error: ", style="bold red") + Text(str(error)), soft_wrap=True)
        sys.exit(1)
    except httpx.HTTPError as error:
        where = f" ({error.request.url})" if _has_request(error) else ""
        err.print(
            Text("Error: ", style="bold red")
            + Text(f"cannot talk to the server{where}: {error or type(error).__name__}"),
            soft_wrap=True,
        )
        sys.exit(1)
    except (OSError, ValueError, TimeoutError) as error:
        err.print(
            Text("Error: ", style="bold red") + Text(str(error) or type(error).__name__),
            soft_wrap=True,
        )
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)


def _has_request(error: httpx.HTTPError) -> bool:
    try:
        error.request  # noqa: B018 - raises RuntimeError when there is none
    except RuntimeError:
        return False
    return True


if __name__ == "__main__":
    main()


# --- shapes -----------------------------------------------------------------------------

ShapeTarget = Annotated[int, typer.Argument(metavar="TASK", help="The task (or job)")]
JobFlag = Annotated[bool, typer.Option("--job", help="TASK is a job")]
SourceOption = Annotated[
    list[str] | None,
    typer.Option("--source", help="Only shapes of this source (auto, manual...; repeatable)"),
]
LabelNameOption = Annotated[str | None, typer.Option("--label", help="Only shapes of this label")]
FrameOption = Annotated[int | None, typer.Option("--frame", help="Only shapes on this frame")]
BelowOption = Annotated[
    float | None, typer.Option("--below", min=0, max=1, help="Only shapes scored below this")
]


def _points(text: str) -> list[float]:
    try:
        values = [float(value) for value in text.replace(" ", "").split(",") if value]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: numbers separated by commas") from None
    if len(values) < 2 or len(values) % 2:
        raise typer.BadParameter(f"{text!r}: x,y pairs")
    return values


def _box(text: str) -> list[float]:
    values = _points(text)
    if len(values) != 4 or values[0] >= values[2] or values[1] >= values[3]:
        raise typer.BadParameter(f"{text!r}: x1,y1,x2,y2 with x1 < x2 and y1 < y2")
    return values


def _label_ids(client: Client, task_id: int) -> dict[str, int]:
    return {label.name: label.id for label in client.list_labels(task_id=task_id)}


def _task_of(client: Client, target_id: int, job: bool) -> int:
    return client.get_job(target_id).task_id if job else target_id


def _label_id(labels: Mapping[str, int], name: str) -> int:
    if name not in labels:
        known = ", ".join(sorted(labels)) or "none"
        raise typer.BadParameter(f"no label {name!r} (the task's: {known})", param_hint="--label")
    return labels[name]


def _bounds(points: Sequence[float]) -> str:
    if not points:
        return ""
    xs, ys = points[0::2], points[1::2]
    return f"{min(xs):.0f},{min(ys):.0f} {max(xs):.0f},{max(ys):.0f}"


def _review(
    client: Client,
    target_id: int,
    *,
    job: bool,
    source: Sequence[str] | None,
    label_id: int | None,
    frame: int | None,
    below: float | None,
    most_certain_first: bool = False,
) -> Iterator[ReviewShape]:
    """The review list of a task (job), filtered; `below` is exclusive, as its help says."""
    shapes = client.list_shapes(
        target_id, target="jobs" if job else "tasks", source=source,
        sort="-score" if most_certain_first else "score", label_id=label_id,
        min_frame=frame, max_frame=frame, max_score=below,
    )  # fmt: skip
    return (shape for shape in shapes if below is None or shape.score < below)


@shapes_app.command("list")
def shapes_list(
    ctx: typer.Context,
    target_id: ShapeTarget,
    *,
    job: JobFlag = False,
    source: SourceOption = None,
    label: LabelNameOption = None,
    frame: FrameOption = None,
    below: BelowOption = None,
    most_certain_first: Annotated[
        bool, typer.Option("--most-certain-first", help="Highest scores first")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many")] = None,
    output: OutputOption = Output.table,
) -> None:
    """A reviewer's worklist: the shapes, least certain first (every source unless
    --source)."""
    with connect(ctx) as client:
        labels = _label_ids(client, _task_of(client, target_id, job))
        names = {label_id: name for name, label_id in labels.items()}
        shapes = _review(
            client, target_id, job=job, source=source,
            label_id=None if label is None else _label_id(labels, label), frame=frame,
            below=below, most_certain_first=most_certain_first,
        )  # fmt: skip
        emit(output, itertools.islice(shapes, limit), [
            ("ID", lambda s: s.id), ("Frame", lambda s: s.frame),
            ("Label", lambda s: names.get(s.label_id, s.label_id)), ("Type", lambda s: s.type),
            ("Source", lambda s: s.source), ("Score", lambda s: f"{s.score:.3f}"),
            ("Box", lambda s: _bounds(s.points)), ("Job", lambda s: s.job_id),
        ])  # fmt: skip


@shapes_app.command("delete")
def shapes_delete(
    ctx: typer.Context,
    target_id: ShapeTarget,
    shape_ids: Annotated[list[int] | None, typer.Argument(help="These shapes")] = None,
    *,
    job: JobFlag = False,
    source: SourceOption = None,
    label: LabelNameOption = None,
    frame: FrameOption = None,
    below: BelowOption = None,
) -> None:
    """Delete shapes: those named, or every one the filters select (at least one filter)."""
    if not shape_ids and not (source or label or frame is not None or below is not None):
        raise typer.BadParameter(
            "name the shapes, or select them with --source, --label, --frame or --below"
        )
    target: Literal["tasks", "jobs"] = "jobs" if job else "tasks"
    with connect(ctx) as client:
        labels = _label_ids(client, _task_of(client, target_id, job)) if label else {}
        wanted = set(shape_ids or ())
        selected = _review(
            client, target_id, job=job, source=source,
            label_id=None if label is None else _label_id(labels, label),
            frame=frame, below=below,
        )  # fmt: skip
        chosen = {shape.id: shape for shape in selected if not wanted or shape.id in wanted}
        missing = sorted(wanted - set(chosen))
        if missing:
            raise typer.BadParameter(
                f"no shape {', '.join(map(str, missing))} in {target[:-1]} {target_id}"
                " (with these filters)"
            )
        if chosen:
            client.update_annotations(
                target_id, "delete", target=target, shapes=list(chosen.values())
            )
    say(f"Deleted {len(chosen)} shape{'s' if len(chosen) != 1 else ''}")


@shapes_app.command("add")
def shapes_add(
    ctx: typer.Context,
    target_id: ShapeTarget,
    *,
    frame: Annotated[int, typer.Option("--frame", help="A task frame number")],
    label: Annotated[str, typer.Option("--label", help="The label's name")],
    box: Annotated[str | None, typer.Option(help="A rectangle: x1,y1,x2,y2 in pixels")] = None,
    points: Annotated[
        str | None, typer.Option(help="A polygon's (polyline's, points') x,y,x,y...")
    ] = None,
    shape_type: Annotated[
        str, typer.Option("--type", help="With --points: polygon, polyline or points")
    ] = "polygon",
    job: JobFlag = False,
    output: OutputOption = Output.table,
) -> None:
    """Add a shape by hand (source manual): a box, or a polygon, polyline or points."""
    if (box is None) == (points is None):
        raise typer.BadParameter("give --box or --points (one of them)")
    if points is not None and shape_type not in ("polygon", "polyline", "points"):
        raise typer.BadParameter("polygon, polyline or points", param_hint="--type")
    shape = {
        "type": "rectangle" if box is not None else shape_type,
        "points": _box(box) if box is not None else _points(points or ""),
        "frame": frame,
        "source": "manual",
    }
    with connect(ctx) as client:
        labels = _label_ids(client, _task_of(client, target_id, job))
        written = client.update_annotations(
            target_id, "create", target="jobs" if job else "tasks",
            shapes=[{**shape, "label_id": _label_id(labels, label)}],
        )  # fmt: skip
    # A task's PATCH answers all of its annotations: the new shape is the newest match.
    created = max(
        (found for found in written.shapes
         if (found.frame, found.type, found.points) == (frame, shape["type"], shape["points"])),
        key=lambda found: found.id or 0,
    )  # fmt: skip
    if output == Output.json:
        print_json(created)
    else:
        say(f"Added shape {created.id} ({label}, frame {frame})")
        out.print(created.id)


@shapes_app.command("set")
def shapes_set(
    ctx: typer.Context,
    target_id: ShapeTarget,
    shape_id: Annotated[int, typer.Argument(help="The shape")],
    *,
    label: Annotated[str | None, typer.Option("--label", help="Its new label")] = None,
    box: Annotated[str | None, typer.Option(help="A rectangle's new x1,y1,x2,y2")] = None,
    points: Annotated[str | None, typer.Option(help="New x,y,x,y... points")] = None,
    job: JobFlag = False,
) -> None:
    """Correct a shape: its label, its box or its points. A model's shape that a person
    corrected keeps its score and becomes semi-auto."""
    if label is None and box is None and points is None:
        raise typer.BadParameter("give --label, --box or --points")
    if box is not None and points is not None:
        raise typer.BadParameter("give --box or --points, not both")
    target: Literal["tasks", "jobs"] = "jobs" if job else "tasks"
    with connect(ctx) as client:
        shape = next(
            (found for found in client.list_shapes(target_id, target=target)
             if found.id == shape_id),
            None,
        )  # fmt: skip
        if shape is None:
            raise typer.BadParameter(f"no shape {shape_id} in {target[:-1]} {target_id}")
        if box is not None and shape.type != "rectangle":
            raise typer.BadParameter(f"shape {shape_id} is a {shape.type}: use --points")
        changes: dict[str, Any] = {}
        if label is not None:
            labels = _label_ids(client, _task_of(client, target_id, job))
            changes["label_id"] = _label_id(labels, label)
        if box is not None or points is not None:
            changes["points"] = _box(box) if box is not None else _points(points or "")
        if shape.source == "auto":
            changes["source"] = "semi-auto"
        client.update_annotations(
            target_id, "update", target=target, shapes=[shape.model_copy(update=changes)]
        )
    say(f"Updated shape {shape_id}")
