"""The API's operations, each a sans-IO flow (see `protocol`), run by both clients.

`Client` and `AsyncClient` expose every function here under the same name (a flow
function becomes a method that runs it); `Listing` functions become iterators over every
page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode

from tessera.client.errors import ProtocolError
from tessera.client.models import (
    About,
    Annotations,
    BasicUser,
    CloudContent,
    CloudStorage,
    DataMeta,
    Formats,
    Function,
    FunctionCall,
    Job,
    Label,
    LabelSpec,
    Page,
    Project,
    Request,
    RequestCreated,
    Resource,
    ReviewShape,
    Shape,
    Task,
    User,
)
from tessera.client.protocol import (
    ByteProgress,
    Call,
    Flow,
    call,
    expect,
    fetch,
    parse,
    query_params,
)
from tessera.client.transfers import (
    MAX_REQUEST_SIZE,
    POLL_INTERVAL_S,
    TUS_CHUNK_SIZE,
    RequestProgress,
    download,
    result_of,
    upload_file,
    upload_task_data,
    wait,
)

R = TypeVar("R", bound=Resource)

Target = Literal["projects", "tasks", "jobs"]
"""What an export, import or render is about."""
ImportMode = Literal["replace", "append"]
LabelInput = LabelSpec | Mapping[str, Any]


class _Keep:
    """The default of an update's field: leave it as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass(frozen=True)
class Listing(Generic[R]):
    """A list endpoint's first page and the model of its items; the clients iterate it
    page by page, following `next`."""

    call: Call
    model: type[R]


def page(listing: Listing[R]) -> Flow[Page[R]]:
    """One page of a listing."""
    reply = yield from call(listing.call)
    return parse(Page[listing.model], expect(reply, 200))  # type: ignore[name-defined]


def next_page(listing: Listing[R], current: Page[R]) -> Listing[R] | None:
    """The listing's next page after `current` (its `next` link), or None at the end."""
    if not current.next:
        return None
    return Listing(Call("GET", current.next), listing.model)


def _listing(url: str, model: type[R], *, page_size: int, filters: Mapping[str, Any]) -> Listing[R]:
    return Listing(Call("GET", url, params=query_params(page_size=page_size, **filters)), model)


def _labels(labels: Sequence[LabelInput]) -> list[dict[str, Any]]:
    return [
        (label if isinstance(label, LabelSpec) else LabelSpec.model_validate(label)).model_dump(
            exclude_none=True
        )
        for label in labels
    ]


def _deleted(url: str) -> Flow[None]:
    reply = yield from call(Call("DELETE", url))
    expect(reply, 204, 200)


# --- server and users -------------------------------------------------------------------


def about() -> Flow[About]:
    """The server's name and versions (needs no token)."""
    return (yield from fetch(About, "/api/server/about"))


def me() -> Flow[User]:
    """The user the token belongs to."""
    return (yield from fetch(User, "/api/users/self"))


def formats() -> Flow[Formats]:
    """The importers and exporters the server has (names for `format=`)."""
    return (yield from fetch(Formats, "/api/server/annotation/formats"))


def list_users(
    *,
    search: str | None = None,
    sort: str | None = None,
    filter: Mapping[str, Any] | str | None = None,
    page_size: int = 100,
    **fields: Any,
) -> Listing[BasicUser]:
    """Users the caller sees, newest first unless sorted (`fields`: exact filters
    `username=`, `first_name=`, `last_name=`, `is_active=`): an administrator sees every
    user (in an organization context its members), anyone else that organization's
    members or only themself. An administrator's results also hold the rest of each
    profile (`email`, `is_superuser`... in `model_extra`)."""
    return _listing(
        "/api/users", BasicUser, page_size=page_size,
        filters={"search": search, "sort": sort, "filter": filter, **fields},
    )  # fmt: skip


def get_user(user_id: int) -> Flow[BasicUser]:
    """One user: a `User` (the whole profile) for an administrator or the user themself,
    a `BasicUser` for anyone else."""
    found = yield from fetch(BasicUser, f"/api/users/{user_id}")
    if "email" in (found.model_extra or {}):
        return User.model_validate(found.model_dump())
    return found


# --- projects ---------------------------------------------------------------------------


def list_projects(
    *,
    search: str | None = None,
    sort: str | None = None,
    filter: Mapping[str, Any] | str | None = None,
    page_size: int = 100,
    **fields: Any,
) -> Listing[Project]:
    """Projects the caller sees (`fields`: exact filters such as `name=`, `status=`)."""
    return _listing(
        "/api/projects", Project, page_size=page_size,
        filters={"search": search, "sort": sort, "filter": filter, **fields},
    )  # fmt: skip


def get_project(project_id: int) -> Flow[Project]:
    """One project."""
    return (yield from fetch(Project, f"/api/projects/{project_id}"))


def create_project(name: str, *, labels: Sequence[LabelInput] = (), **fields: Any) -> Flow[Project]:
    """A new project with its labels (`LabelSpec`s or CVAT's label dicts); `fields`:
    more of CVAT's fields (`bug_tracker`, `assignee_id`)."""
    body = {"name": name, "labels": _labels(labels), **fields}
    reply = yield from call(Call("POST", "/api/projects", json=body))
    return parse(Project, expect(reply, 201))


def update_project(project_id: int, **fields: Any) -> Flow[Project]:
    """Change a project's fields (`name`, `labels` to add or change, `assignee_id`)."""
    if "labels" in fields:
        fields["labels"] = _labels(fields["labels"])
    reply = yield from call(Call("PATCH", f"/api/projects/{project_id}", json=fields))
    return parse(Project, expect(reply, 200))


def delete_project(project_id: int) -> Flow[None]:
    """Delete a project with its tasks."""
    yield from _deleted(f"/api/projects/{project_id}")


# --- tasks ------------------------------------------------------------------------------


def list_tasks(
    *,
    project_id: int | None = None,
    search: str | None = None,
    sort: str | None = None,
    filter: Mapping[str, Any] | str | None = None,
    page_size: int = 100,
    **fields: Any,
) -> Listing[Task]:
    """Tasks the caller sees (of one project with `project_id`)."""
    return _listing(
        "/api/tasks", Task, page_size=page_size,
        filters={"project_id": project_id, "search": search, "sort": sort, "filter": filter,
                 **fields},
    )  # fmt: skip


def get_task(task_id: int) -> Flow[Task]:
    """One task."""
    return (yield from fetch(Task, f"/api/tasks/{task_id}"))


def create_task(
    name: str,
    *,
    project_id: int | None = None,
    labels: Sequence[LabelInput] = (),
    segment_size: int | None = None,
    overlap: int | None = None,
    image_quality: int | None = None,
    subset: str | None = None,
    **fields: Any,
) -> Flow[Task]:
    """A new task, without media yet (`upload_task_data` adds it). A task of a project
    takes the project's labels; one without a project needs its own."""
    body: dict[str, Any] = {"name": name, **fields}
    if project_id is not None:
        body["project_id"] = project_id
    if labels:
        body["labels"] = _labels(labels)
    for key, value in (
        ("segment_size", segment_size), ("overlap", overlap),
        ("image_quality", image_quality), ("subset", subset),
    ):  # fmt: skip
        if value is not None:
            body[key] = value
    reply = yield from call(Call("POST", "/api/tasks", json=body))
    return parse(Task, expect(reply, 201))


def update_task(task_id: int, **fields: Any) -> Flow[Task]:
    """Change a task's fields (`name`, `labels`, `assignee_id`, `subset`)."""
    if "labels" in fields:
        fields["labels"] = _labels(fields["labels"])
    reply = yield from call(Call("PATCH", f"/api/tasks/{task_id}", json=fields))
    return parse(Task, expect(reply, 200))


def delete_task(task_id: int) -> Flow[None]:
    """Delete a task with its media and annotations."""
    yield from _deleted(f"/api/tasks/{task_id}")


def start_task_data(
    task_id: int,
    files: Sequence[Path],
    *,
    image_quality: int = 70,
    on_progress: ByteProgress | None = None,
    max_request_size: int = MAX_REQUEST_SIZE,
    chunk_size: int = TUS_CHUNK_SIZE,
    **options: Any,
) -> Flow[str]:
    """Upload local files as a task's media (small ones in forms, big ones by TUS, with
    `on_progress(done, total)` in bytes) and start the task's creation; its `rq_id`.
    `options`: CVAT's data fields (`sorting_method`, `chunk_size`, `frame_filter`...)."""
    return (
        yield from upload_task_data(
            task_id, list(files), image_quality=image_quality, options=options,
            on_progress=on_progress, max_request_size=max_request_size, chunk_size=chunk_size,
        )
    )  # fmt: skip


def upload_task_data_and_wait(
    task_id: int,
    files: Sequence[Path],
    *,
    image_quality: int = 70,
    on_progress: ByteProgress | None = None,
    on_request: RequestProgress | None = None,
    interval: float = POLL_INTERVAL_S,
    **options: Any,
) -> Flow[Task]:
    """`start_task_data`, then wait for the creation (`on_request`); the task with media."""
    rq_id = yield from start_task_data(
        task_id, files, image_quality=image_quality, on_progress=on_progress, **options
    )
    yield from wait(rq_id, on_progress=on_request, interval=interval)
    return (yield from get_task(task_id))


def start_task_data_from_cloud(
    task_id: int,
    cloud_storage_id: int,
    keys: Sequence[str],
    *,
    image_quality: int = 70,
    **options: Any,
) -> Flow[str]:
    """A task's media from a cloud storage's objects (`keys`; a folder ends with "/"),
    as CVAT's `server_files` with `cloud_storage_id`; the creation's `rq_id`."""
    body = {
        "image_quality": image_quality,
        "server_files": list(keys),
        "cloud_storage_id": cloud_storage_id,
        **options,
    }
    reply = yield from call(Call("POST", f"/api/tasks/{task_id}/data/", json=body))
    return parse(RequestCreated, expect(reply, 202)).rq_id


def get_data_meta(task_id: int) -> Flow[DataMeta]:
    """A task's media: frames with their names and sizes, chunk size, deleted frames."""
    return (yield from fetch(DataMeta, f"/api/tasks/{task_id}/data/meta"))


# --- labels and jobs --------------------------------------------------------------------


def list_labels(
    *,
    project_id: int | None = None,
    task_id: int | None = None,
    job_id: int | None = None,
    page_size: int = 100,
    **fields: Any,
) -> Listing[Label]:
    """Labels of a project, task or job."""
    return _listing(
        "/api/labels", Label, page_size=page_size,
        filters={"project_id": project_id, "task_id": task_id, "job_id": job_id, **fields},
    )  # fmt: skip


def list_jobs(
    *,
    task_id: int | None = None,
    project_id: int | None = None,
    sort: str | None = None,
    filter: Mapping[str, Any] | str | None = None,
    page_size: int = 100,
    **fields: Any,
) -> Listing[Job]:
    """Jobs the caller sees (`fields`: `stage=`, `state=`, `assignee=`...)."""
    return _listing(
        "/api/jobs", Job, page_size=page_size,
        filters={"task_id": task_id, "project_id": project_id, "sort": sort, "filter": filter,
                 **fields},
    )  # fmt: skip


def get_job(job_id: int) -> Flow[Job]:
    """One job."""
    return (yield from fetch(Job, f"/api/jobs/{job_id}"))


def update_job(
    job_id: int, *, assignee: int | None = KEEP, stage: str = KEEP, state: str = KEEP
) -> Flow[Job]:
    """Assign a job (a user id; None unassigns it), or set its stage (annotation,
    validation, acceptance) or state (new, in progress, completed, rejected)."""
    body = {
        key: value
        for key, value in (("assignee", assignee), ("stage", stage), ("state", state))
        if value is not KEEP
    }
    reply = yield from call(Call("PATCH", f"/api/jobs/{job_id}", json=body))
    return parse(Job, expect(reply, 200))


# --- background requests ----------------------------------------------------------------


def list_requests(
    *,
    status: str | None = None,
    action: str | None = None,
    target: str | None = None,
    subresource: str | None = None,
    format: str | None = None,
    project_id: int | None = None,
    task_id: int | None = None,
    job_id: int | None = None,
    page_size: int = 100,
) -> Listing[Request]:
    """The caller's background requests of every kind (task creation, exports, imports,
    backups, auto-annotation), newest first, in one list the server merges. CVAT's
    filters: `status` (queued, started, finished, failed), `action` (create, import,
    export, autoannotate), `target` (project, task, job), `subresource` (annotations,
    dataset, backup), `format`, and the project, task or job the request is about."""
    filters = {
        "status": status, "action": action, "target": target, "subresource": subresource,
        "format": format, "project_id": project_id, "task_id": task_id, "job_id": job_id,
    }  # fmt: skip
    return _listing("/api/requests", Request, page_size=page_size, filters=filters)


def get_request(rq_id: str) -> Flow[Request]:
    """A background request's status, progress and result."""
    return (yield from fetch(Request, f"/api/requests/{rq_id}"))


def cancel_request(rq_id: str) -> Flow[None]:
    """Cancel a queued or running request (an auto-annotation's through CVAT's lambda
    API, the others at `/api/requests/{rq_id}/cancel`)."""
    if rq_id.startswith("inference-"):
        yield from _deleted(f"/api/lambda/requests/{rq_id}")
        return
    reply = yield from call(Call("POST", f"/api/requests/{rq_id}/cancel"))
    expect(reply)


wait_request = wait


# --- exports, imports and backups -------------------------------------------------------


def start_export(
    target_id: int,
    format: str,
    *,
    target: Target = "tasks",
    save_images: bool = False,
    filename: str | None = None,
    **params: Any,
) -> Flow[str]:
    """Start exporting a task's (project's, job's) dataset in `format` (a name from
    `formats()`); the request's `rq_id`. `params`: `location`, `cloud_storage_id`,
    `frames`, `image_format`, `image_quality`."""
    query = query_params(format=format, save_images=save_images, filename=filename, **params)
    reply = yield from call(Call("POST", f"/api/{target}/{target_id}/dataset/export", params=query))
    return parse(RequestCreated, expect(reply, 202, 201, 200)).rq_id


def export_dataset(
    target_id: int,
    format: str,
    path: Path,
    *,
    target: Target = "tasks",
    save_images: bool = False,
    on_request: RequestProgress | None = None,
    on_download: ByteProgress | None = None,
    interval: float = POLL_INTERVAL_S,
    **params: Any,
) -> Flow[Path]:
    """Export, wait for the archive (`on_request`), download it into `path`
    (`on_download`); the path."""
    rq_id = yield from start_export(
        target_id, format, target=target, save_images=save_images, **params
    )
    request = yield from wait(rq_id, on_progress=on_request, interval=interval)
    return (yield from download(result_of(request), path, on_progress=on_download))


def start_backup(target_id: int, *, target: Literal["tasks", "projects"] = "tasks") -> Flow[str]:
    """Start a backup of a task (project) in CVAT's format; the request's `rq_id`."""
    reply = yield from call(Call("POST", f"/api/{target}/{target_id}/backup/export"))
    return parse(RequestCreated, expect(reply, 202, 201, 200)).rq_id


def backup(
    target_id: int,
    path: Path,
    *,
    target: Literal["tasks", "projects"] = "tasks",
    on_request: RequestProgress | None = None,
    on_download: ByteProgress | None = None,
    interval: float = POLL_INTERVAL_S,
) -> Flow[Path]:
    """Back a task (project) up into the file `path`; the path."""
    rq_id = yield from start_backup(target_id, target=target)
    request = yield from wait(rq_id, on_progress=on_request, interval=interval)
    return (yield from download(result_of(request), path, on_progress=on_download))


def start_import(
    target_id: int,
    path: Path,
    format: str,
    *,
    target: Literal["tasks", "jobs"] = "tasks",
    mode: ImportMode = "replace",
    conv_mask_to_poly: bool = False,
    strict: bool = False,
    on_progress: ByteProgress | None = None,
) -> Flow[str]:
    """Upload an annotation file in `format` into a task (job) and start its import;
    the request's `rq_id`. `mode` replace (CVAT's default) or append."""
    params = query_params(
        format=format, filename=path.name, import_mode=mode,
        conv_mask_to_poly=conv_mask_to_poly or None, strict=strict or None,
    )  # fmt: skip
    return (
        yield from upload_file(
            f"/api/{target}/{target_id}/annotations/", path, params=params,
            on_progress=on_progress,
        )
    )  # fmt: skip


def import_annotations(
    target_id: int,
    path: Path,
    format: str,
    *,
    target: Literal["tasks", "jobs"] = "tasks",
    mode: ImportMode = "replace",
    on_progress: ByteProgress | None = None,
    on_request: RequestProgress | None = None,
    interval: float = POLL_INTERVAL_S,
) -> Flow[Request]:
    """`start_import`, then wait for it; the finished request (its `message` says what
    was stored and what was left out)."""
    rq_id = yield from start_import(
        target_id, path, format, target=target, mode=mode, on_progress=on_progress
    )
    return (yield from wait(rq_id, on_progress=on_request, interval=interval))


def start_restore(
    path: Path,
    *,
    target: Literal["tasks", "projects"] = "tasks",
    on_progress: ByteProgress | None = None,
) -> Flow[str]:
    """Upload a backup (Tessera's or CVAT's) and start restoring it as a new task
    (project); the request's `rq_id` (its `result_id` is the new object)."""
    return (
        yield from upload_file(
            f"/api/{target}/backup/", path, params={"filename": path.name},
            on_progress=on_progress,
        )
    )  # fmt: skip


def restore(
    path: Path,
    *,
    target: Literal["tasks", "projects"] = "tasks",
    on_progress: ByteProgress | None = None,
    on_request: RequestProgress | None = None,
    interval: float = POLL_INTERVAL_S,
) -> Flow[int]:
    """Restore a backup and wait; the new task's (project's) id."""
    rq_id = yield from start_restore(path, target=target, on_progress=on_progress)
    request = yield from wait(rq_id, on_progress=on_request, interval=interval)
    if request.result_id is None:
        raise ProtocolError(f"Request {rq_id} finished without naming what it restored.")
    return request.result_id


def download_file(url: str, path: Path, *, on_progress: ByteProgress | None = None) -> Flow[Path]:
    """Stream a URL of the API (a `result_url`) into `path`; the path."""
    return (yield from download(url, path, on_progress=on_progress))


def render_frame(
    target_id: int,
    frame: int,
    *,
    target: Literal["tasks", "jobs"] = "tasks",
    format: Literal["png", "jpeg"] = "png",
    **params: Any,
) -> Flow[bytes]:
    """A frame with its annotations drawn, as PNG (JPEG) bytes. `params`: `labels`,
    `outline_width`, `opacity`, `max_size`, `quality`."""
    query = query_params(format=format, **params)
    reply = yield from call(
        Call("GET", f"/api/{target}/{target_id}/frames/{frame}/render", params=query)
    )
    return expect(reply, 200).content


# --- annotations ------------------------------------------------------------------------

AnnotationAction = Literal["create", "update", "delete"]


def list_shapes(
    target_id: int,
    *,
    target: Literal["tasks", "jobs"] = "tasks",
    source: str | Sequence[str] | None = None,
    sort: Literal["score", "-score"] | None = None,
    label_id: int | None = None,
    min_frame: int | None = None,
    max_frame: int | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    page_size: int = 100,
) -> Listing[ReviewShape]:
    """The review list: a task's (job's) shapes, least certain first (`sort="-score"`:
    most certain first), only of the given sources (`"auto"`: the models'), labels,
    frames and scores (bounds inclusive)."""
    sources = [source] if isinstance(source, str) else source
    return _listing(
        f"/api/{target}/{target_id}/annotations/shapes", ReviewShape, page_size=page_size,
        filters={"source": ",".join(sources) if sources else None, "sort": sort,
                 "label_id": label_id, "min_frame": min_frame, "max_frame": max_frame,
                 "min_score": min_score, "max_score": max_score},
    )  # fmt: skip


def get_annotations(
    target_id: int, *, target: Literal["tasks", "jobs"] = "tasks"
) -> Flow[Annotations]:
    """Every tag, shape and track of a task (job)."""
    return (yield from fetch(Annotations, f"/api/{target}/{target_id}/annotations"))


def update_annotations(
    target_id: int,
    action: AnnotationAction,
    *,
    target: Literal["tasks", "jobs"] = "tasks",
    shapes: Sequence[Shape | Mapping[str, Any]] = (),
    tags: Sequence[Mapping[str, Any]] = (),
    tracks: Sequence[Mapping[str, Any]] = (),
    version: int | None = None,
) -> Flow[Annotations]:
    """Add (`create`: without ids), change (`update`: by id, whole shapes) or remove
    (`delete`: by id) some annotations of a task (job), as CVAT's PATCH does. Answers
    what was written. With `version` (as `get_annotations` gave it), the write happens
    only if nobody wrote in between (else `TesseraError` 409); without, it always does."""
    body: dict[str, Any] = {
        "shapes": [
            shape.model_dump(exclude={"job_id"}) if isinstance(shape, Shape) else dict(shape)
            for shape in shapes
        ],
        "tags": list(tags),
        "tracks": list(tracks),
    }
    if version is not None:
        body["version"] = version
    reply = yield from call(
        Call(
            "PATCH", f"/api/{target}/{target_id}/annotations", params={"action": action}, json=body
        )
    )
    return parse(Annotations, expect(reply, 200))


# --- cloud storages ---------------------------------------------------------------------


def list_cloud_storages(
    *, search: str | None = None, page_size: int = 100, **fields: Any
) -> Listing[CloudStorage]:
    """Cloud storages the caller sees."""
    return _listing(
        "/api/cloudstorages", CloudStorage, page_size=page_size,
        filters={"search": search, **fields},
    )  # fmt: skip


def create_cloud_storage(
    resource: str,
    *,
    display_name: str | None = None,
    key: str | None = None,
    secret_key: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    prefix: str | None = None,
    provider_type: str = "AWS_S3_BUCKET",
    **fields: Any,
) -> Flow[CloudStorage]:
    """Connect a bucket (`resource`) as a cloud storage: with `key` and `secret_key`, or
    anonymous without them; `endpoint_url` for an S3-compatible service, `prefix` to
    limit it to a folder. The server checks the keys against the bucket."""
    attributes = urlencode(
        [(name, value) for name, value in
         (("endpoint_url", endpoint_url), ("region", region), ("prefix", prefix)) if value]
    )  # fmt: skip
    body: dict[str, Any] = {
        "provider_type": provider_type,
        "resource": resource,
        "display_name": display_name or resource,
        "credentials_type": "KEY_SECRET_KEY_PAIR" if key else "ANONYMOUS_ACCESS",
        "specific_attributes": attributes,
        **fields,
    }
    if key:
        body["key"], body["secret_key"] = key, secret_key
    reply = yield from call(Call("POST", "/api/cloudstorages", json=body))
    return parse(CloudStorage, expect(reply, 201))


def delete_cloud_storage(storage_id: int) -> Flow[None]:
    """Disconnect a cloud storage (the bucket is left as it is)."""
    yield from _deleted(f"/api/cloudstorages/{storage_id}")


def get_cloud_storage(storage_id: int) -> Flow[CloudStorage]:
    """One cloud storage (its keys are never answered)."""
    return (yield from fetch(CloudStorage, f"/api/cloudstorages/{storage_id}"))


def cloud_content(
    storage_id: int,
    prefix: str | None = None,
    *,
    next_token: str | None = None,
    page_size: int = 1000,
) -> Flow[CloudContent]:
    """One page of a folder of the storage's bucket (the storage's own prefix when
    `prefix` is None); names are relative to the folder."""
    params = query_params(prefix=prefix, next_token=next_token, page_size=page_size)
    return (
        yield from fetch(CloudContent, f"/api/cloudstorages/{storage_id}/content-v2", params=params)
    )


def storage_prefix(storage: CloudStorage) -> str:
    """The folder a storage is limited to (its `prefix` attribute), or ""."""
    return dict(parse_qsl(storage.specific_attributes)).get("prefix", "")


def list_cloud_files(
    storage_id: int,
    prefix: str | None = None,
    *,
    recursive: bool = True,
    media_only: bool = True,
) -> Flow[list[str]]:
    """The keys of the objects under `prefix` in a storage's bucket (sub-folders too with
    `recursive`), in the order listed; with `media_only`, those the server takes as media
    (images, videos, archives, point clouds)."""
    if prefix is None:
        prefix = storage_prefix((yield from get_cloud_storage(storage_id)))
    folders = [prefix.rstrip("/") + "/" if prefix.strip("/") else ""]
    keys: list[str] = []
    while folders:
        folder = folders.pop(0)
        token: str | None = None
        while True:
            listed = yield from cloud_content(storage_id, folder, next_token=token)
            for entry in listed.content:
                if entry.type == "DIR":
                    if recursive:
                        folders.append(f"{folder}{entry.name}/")
                elif not media_only or entry.mime_type not in ("unknown", ""):
                    keys.append(folder + entry.name)
            token = listed.next
            if not token:
                break
    return keys


# --- AI functions -----------------------------------------------------------------------


def list_functions() -> Flow[list[Function]]:
    """The AI functions the server runs (detectors, interactors, trackers)."""
    reply = yield from call(Call("GET", "/api/lambda/functions"))
    return [Function.model_validate(item) for item in expect(reply, 200).json()]


def start_auto_annotation(
    task_id: int | None,
    function: str,
    *,
    project_id: int | None = None,
    job_id: int | None = None,
    job_ids: Sequence[int] | None = None,
    frames: Sequence[int] | None = None,
    threshold: float | None = None,
    mapping: Mapping[str, Any] | None = None,
    cleanup: bool = False,
    conv_mask_to_poly: bool = False,
    **fields: Any,
) -> Flow[FunctionCall]:
    """Start annotating a task with a detector: the whole task, one of its jobs
    (`job_id`, as CVAT), some of them (`job_ids`) or some of its frames (`frames`); or,
    with `task_id` None, a project (`project_id`): each of its tasks, or `job_ids` of
    them. The request (its `id` is also a request id, for `wait`). `cleanup` replaces the
    annotations there (not with `frames`)."""
    if (task_id is None) == (project_id is None):
        raise ValueError("start_auto_annotation() takes a task_id or a project_id (one of them)")
    body: dict[str, Any] = {
        "function": function, "cleanup": cleanup, "conv_mask_to_poly": conv_mask_to_poly,
        **fields,
    }  # fmt: skip
    optional = {"task": task_id, "project": project_id, "job": job_id, "threshold": threshold}
    body.update({key: value for key, value in optional.items() if value is not None})
    if job_ids is not None:
        body["jobs"] = list(job_ids)
    if frames is not None:
        body["frames"] = list(frames)
    if mapping is not None:
        body["mapping"] = dict(mapping)
    reply = yield from call(Call("POST", "/api/lambda/requests", json=body))
    return parse(FunctionCall, expect(reply, 200, 201, 202))


def list_function_calls() -> Flow[list[FunctionCall]]:
    """The caller's auto-annotation requests: running ones and those ended lately."""
    reply = yield from call(Call("GET", "/api/lambda/requests"))
    return [FunctionCall.model_validate(item) for item in expect(reply, 200).json()]


def get_function_call(rq_id: str) -> Flow[FunctionCall]:
    """An auto-annotation request as CVAT reports it."""
    return (yield from fetch(FunctionCall, f"/api/lambda/requests/{rq_id}"))


def auto_annotate(
    task_id: int | None,
    function: str,
    *,
    on_request: RequestProgress | None = None,
    interval: float = POLL_INTERVAL_S,
    **options: Any,
) -> Flow[Request]:
    """`start_auto_annotation` (of a task, or with `task_id` None and `project_id`, of a
    project), then wait for it; the finished request."""
    started = yield from start_auto_annotation(task_id, function, **options)
    return (yield from wait(started.id, on_progress=on_request, interval=interval))
