"""Flows that move files and wait for background work, as cvat-sdk 2.80 does on the wire.

CVAT's upload protocol (`tessera.platform.uploads` on the server), for a task's media, an
annotation import, a dataset import or a backup restore:

1. `POST <url>` with `Upload-Start` (202) forgets what an abandoned attempt left;
2. files arrive either in forms (`Upload-Multiple`, parts `client_files[i]`, small files
   grouped up to `MAX_REQUEST_SIZE` bytes a request; task media only) or by TUS 1.0.0:
   `POST <url>/` with `Upload-Length` and `Upload-Metadata: filename <base64>` creates
   the upload (201, its URL in `Location`, the name to use in `Upload-Filename`), then
   `PATCH <Location>` appends `TUS_CHUNK_SIZE` bytes at a time at `Upload-Offset`;
3. `POST <url>` with `Upload-Finish` (the task's data options as JSON, or `?filename=`
   and `format` as query) answers 202 `{rq_id}`.

A PATCH that breaks (the connection drops, a 5xx, or 409 for an offset the server does
not have) is resumed: the offset comes from the 409's `Upload-Offset` or else from
`HEAD <Location>`, and the upload continues from there, up to `MAX_TUS_RETRIES` failures
in a row (with a growing pause between them).
"""

from __future__ import annotations

import base64
import mimetypes
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessera.client.errors import ProtocolError, RequestFailed, TesseraError
from tessera.client.models import Request, RequestCreated
from tessera.client.protocol import (
    ByteProgress,
    Call,
    FilePart,
    Flow,
    Reply,
    call,
    error_of,
    expect,
    fetch,
    parse,
    sleep,
)

TUS_VERSION = "1.0.0"
TUS_CHUNK_SIZE = 10 * 2**20
"""Bytes per PATCH (cvat-sdk's size)."""
MAX_REQUEST_SIZE = 100 * 2**20
"""The most bytes of small files sent in one form (cvat-sdk's size); a larger file goes
by TUS."""
MAX_TUS_RETRIES = 5
RETRY_DELAY_S = 0.5
RETRIED_STATUSES = frozenset({408, 409, 423, 429})
"""Besides 5xx: answers after which a PATCH is resumed rather than given up."""
POLL_INTERVAL_S = 0.5

RequestProgress = Callable[[Request], None]
"""Told of each poll of a background request (status, `progress` fraction, message)."""


class Transfer:
    """Byte progress over everything one operation sends or receives."""

    def __init__(self, total: int, on_progress: ByteProgress | None) -> None:
        self.total = total
        self.done = 0
        self._on_progress = on_progress

    def sent(self, count: int) -> None:
        """`count` more bytes went out."""
        self.at(self.done + count)

    def at(self, done: int) -> None:
        """The transfer stands at `done` bytes (it may go back, after a broken chunk)."""
        self.done = done
        if self._on_progress is not None:
            self._on_progress(done, self.total)


# --- TUS --------------------------------------------------------------------------------


def tus_metadata(values: Mapping[str, str]) -> str:
    """TUS `Upload-Metadata`: `key base64(value)` pairs, comma-separated."""
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _offset(reply: Reply) -> int | None:
    raw = reply.header("upload-offset")
    if raw is None:
        return None
    if not raw.isdigit():
        raise ProtocolError(f"Upload-Offset {raw!r} is not a number.", status=reply.status)
    return int(raw)


def tus_upload(
    create_url: str,
    path: Path,
    transfer: Transfer,
    *,
    filename: str | None = None,
    chunk_size: int = TUS_CHUNK_SIZE,
    max_retries: int = MAX_TUS_RETRIES,
    retry_delay: float = RETRY_DELAY_S,
) -> Flow[str]:
    """Upload one file by TUS; the file name the server gave it (`Upload-Filename`), for
    `Upload-Finish`. Progress goes to `transfer` from where it stands now."""
    length = path.stat().st_size
    name = filename or path.name
    tus = {"Tus-Resumable": TUS_VERSION}
    created = yield from call(
        Call(
            "POST",
            create_url,
            headers={
                **tus,
                "Upload-Length": str(length),
                "Upload-Metadata": tus_metadata({"filename": name}),
            },
        )
    )
    expect(created, 201)
    location = created.header("location")
    if not location:
        raise ProtocolError("The server created a TUS upload without a Location.", status=201)
    real_name = created.header("upload-filename") or name
    base = transfer.done
    offset = _offset(created) or 0
    failures = 0
    with path.open("rb") as file:
        while True:
            file.seek(offset)
            chunk = file.read(chunk_size)
            transfer.at(base + offset)
            reply = yield from call(
                Call(
                    "PATCH",
                    location,
                    headers={
                        **tus,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                    content=chunk,
                    on_sent=transfer.sent,
                    tolerate_transport_errors=True,
                )
            )
            new_offset: int | None = None
            if reply.error is None and 200 <= reply.status < 300:
                new_offset = _offset(reply)
                if new_offset is None:
                    raise ProtocolError("The server did not answer the PATCH's Upload-Offset.")
                if new_offset < offset + len(chunk):
                    raise ProtocolError(
                        f"The server took {new_offset - offset} of the {len(chunk)} bytes "
                        f"sent at offset {offset}."
                    )
                failures = 0
            elif (
                reply.error is None
                and reply.status < 500
                and reply.status not in (RETRIED_STATUSES)
            ):
                raise error_of(reply)
            else:
                failures += 1
                if failures > max_retries:
                    raise _given_up(reply, path, failures)
                if reply.status == 409:
                    new_offset = _offset(reply)
                yield from sleep(retry_delay * 2 ** (failures - 1))
            while new_offset is None:
                head = yield from call(
                    Call("HEAD", location, headers=tus, tolerate_transport_errors=True)
                )
                if head.error is None and head.status == 200:
                    new_offset = _offset(head)
                    if new_offset is None:
                        raise ProtocolError("The server's HEAD did not say the Upload-Offset.")
                    break
                if head.error is None and head.status < 500:
                    raise error_of(head)
                failures += 1
                if failures > max_retries:
                    raise _given_up(head, path, failures)
                yield from sleep(retry_delay * 2 ** (failures - 1))
            if not 0 <= new_offset <= length:
                raise ProtocolError(
                    f"The server's Upload-Offset {new_offset} is outside 0..{length}."
                )
            offset = new_offset
            # An empty file is complete after one PATCH the server took.
            if offset == length and (length > 0 or failures == 0):
                break
    transfer.at(base + length)
    return real_name


def _given_up(reply: Reply, path: Path, failures: int) -> Exception:
    if reply.error is not None:
        return reply.error
    error = error_of(reply)
    error.detail = f"Uploading {path.name} failed {failures} times: {error.detail}"
    return error


# --- CVAT's upload protocol -------------------------------------------------------------


def upload_file(
    url: str,
    path: Path,
    *,
    params: Mapping[str, Any] | None = None,
    on_progress: ByteProgress | None = None,
    chunk_size: int = TUS_CHUNK_SIZE,
) -> Flow[str]:
    """One file by the whole protocol (an annotation or dataset import, a backup's
    restore): Upload-Start, TUS, Upload-Finish with `params` and `filename`; the
    `rq_id` of the request it started."""
    query = dict(params or {})
    started = yield from call(Call("POST", url, params=query, headers={"Upload-Start": ""}))
    expect(started, 202)
    transfer = Transfer(path.stat().st_size, on_progress)
    transfer.at(0)
    real_name = yield from tus_upload(url.rstrip("/") + "/", path, transfer, chunk_size=chunk_size)
    query["filename"] = real_name
    finished = yield from call(Call("POST", url, params=query, headers={"Upload-Finish": ""}))
    return parse(RequestCreated, expect(finished, 202)).rq_id


@dataclass(frozen=True)
class UploadPlan:
    """How a task's files go: forms of small files (with their bytes), and big files by TUS."""

    groups: list[tuple[list[Path], int]]
    separate: list[Path]
    total: int


def plan_upload(files: Sequence[Path], max_request_size: int = MAX_REQUEST_SIZE) -> UploadPlan:
    """Group small files into forms of at most `max_request_size` bytes, in the order
    given; larger files go alone by TUS. `ValueError` for two files of one name (the
    server keeps base names, unique per task) or a path that is not a file."""
    seen: dict[str, Path] = {}
    for path in files:
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
        if path.name in seen:
            raise ValueError(
                f"{seen[path.name]} and {path} have the same name; a task's files are kept "
                "by name (put them in an archive to keep folders)"
            )
        seen[path.name] = path
    groups: list[tuple[list[Path], int]] = []
    separate: list[Path] = []
    current: list[Path] = []
    current_size = 0
    total = 0
    for path in files:
        size = path.stat().st_size
        total += size
        if size > max_request_size:
            separate.append(path)
            continue
        if current and current_size + size > max_request_size:
            groups.append((current, current_size))
            current, current_size = [], 0
        current.append(path)
        current_size += size
    if current:
        groups.append((current, current_size))
    return UploadPlan(groups, separate, total)


def upload_task_data(
    task_id: int,
    files: Sequence[Path],
    *,
    image_quality: int = 70,
    options: Mapping[str, Any] | None = None,
    on_progress: ByteProgress | None = None,
    max_request_size: int = MAX_REQUEST_SIZE,
    chunk_size: int = TUS_CHUNK_SIZE,
) -> Flow[str]:
    """Send local files as a task's media (images, archives, a video, point clouds) and
    start its creation; the request's `rq_id`. `options` are more fields of CVAT's data
    request (`sorting_method`, `chunk_size`, `start_frame`, `frame_filter`, `use_cache`)."""
    if not files:
        raise ValueError("no files to upload")
    plan = plan_upload(files, max_request_size)
    url = f"/api/tasks/{task_id}/data/"
    transfer = Transfer(plan.total, on_progress)
    transfer.at(0)
    started = yield from call(Call("POST", url, headers={"Upload-Start": ""}))
    expect(started, 202)
    for group, size in plan.groups:
        before = transfer.done
        parts = [
            FilePart(
                f"client_files[{index}]",
                path,
                path.name,
                mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            )
            for index, path in enumerate(group)
        ]
        sent = yield from call(
            Call(
                "POST",
                url,
                headers={"Upload-Multiple": ""},
                files=parts,
                data={"image_quality": str(image_quality)},
                on_sent=transfer.sent,
            )
        )
        expect(sent, 200)
        transfer.at(before + size)
    for path in plan.separate:
        yield from tus_upload(url, path, transfer, chunk_size=chunk_size)
    fields: dict[str, Any] = {"image_quality": image_quality, **(options or {})}
    if str(fields.get("sorting_method", "")).lower() == "predefined":
        fields.setdefault("upload_file_order", [path.name for path in files])
    finished = yield from call(Call("POST", url, headers={"Upload-Finish": ""}, json=fields))
    return parse(RequestCreated, expect(finished, 202)).rq_id


# --- background requests and downloads --------------------------------------------------


def wait(
    rq_id: str,
    *,
    on_progress: RequestProgress | None = None,
    interval: float = POLL_INTERVAL_S,
    timeout: float | None = None,
) -> Flow[Request]:
    """Poll `/api/requests/{rq_id}` until it ends, telling `on_progress` of every poll;
    the finished request, or `RequestFailed` with the server's message (`TimeoutError`
    after `timeout` seconds)."""
    started = time.monotonic()
    while True:
        request = yield from fetch(Request, f"/api/requests/{rq_id}")
        if on_progress is not None:
            on_progress(request)
        if request.status == "finished":
            return request
        if request.status == "failed":
            raise RequestFailed(rq_id, request.message)
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"Request {rq_id} is still {request.status} after {timeout} s.")
        yield from sleep(interval)


def download(url: str, path: Path, *, on_progress: ByteProgress | None = None) -> Flow[Path]:
    """Stream `url` into the file `path` (written whole or not at all); the path."""
    reply = yield from call(Call("GET", url, download_to=path, on_received=on_progress))
    expect(reply, 200)
    return path


def result_of(request: Request) -> str:
    """The `result_url` of a finished request; `TesseraError` when there is none (the
    result went to a cloud storage)."""
    if not request.result_url:
        raise TesseraError(
            0,
            f"Request {request.id} has no file to download (was it written to a cloud storage?).",
            title="Nothing to download",
        )
    return request.result_url
