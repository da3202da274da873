"""A fake server of CVAT's upload protocol, TUS and requests, for httpx's MockTransport.

`FakeServer` is a request handler (`httpx.MockTransport(server)` serves it to `Client`
and `AsyncClient` alike) that keeps uploads in memory and records every exchange, with
faults to inject into chosen PATCHes: a connection that breaks after the server kept part
of the chunk (or all of it, the answer lost), or an error status.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

BASE = "http://tessera.test"


@dataclass
class Fault:
    """What happens to one PATCH: keep `keep` bytes of its chunk (None: all), then break
    the connection (`status` None) or answer `status` (with `offset` as Upload-Offset)."""

    keep: int | None = 0
    status: int | None = None
    offset: bool = False


@dataclass
class Upload:
    name: str
    length: int
    data: bytearray = field(default_factory=bytearray)


@dataclass
class FakeServer:
    """CVAT's upload protocol at `/api/tasks/{id}/data/` and `/api/tasks/{id}/annotations/`."""

    uploads: dict[str, Upload] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    faults: dict[int, Fault] = field(default_factory=dict)
    head_faults: dict[int, Fault] = field(default_factory=dict)
    finished: list[dict[str, Any]] = field(default_factory=list)
    forms: list[list[tuple[str, str, bytes]]] = field(default_factory=list)
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    routes: dict[str, Callable[[httpx.Request], httpx.Response]] = field(default_factory=dict)
    patches: int = 0
    heads: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.log.append((request.method, path, headers))
        self.queries.append(dict(request.url.params))
        if path in self.routes:
            return self.routes[path](request)
        if request.method == "POST" and path.endswith("/"):
            return self._post(request, headers)
        if request.method == "PATCH":
            return self._patch(request, path, headers)
        if request.method == "HEAD":
            return self._head(path)
        if request.method == "GET" and path.startswith("/api/requests/"):
            return self._poll(path.rsplit("/", 1)[-1])
        return problem(404, f"No route for {request.method} {path}.")

    def _post(self, request: httpx.Request, headers: dict[str, str]) -> httpx.Response:
        if "upload-start" in headers:
            self.uploads.clear()
            self.files.clear()
            return httpx.Response(202)
        if "upload-finish" in headers:
            body = json.loads(request.content) if request.content else {}
            self.finished.append({"json": body, "query": dict(request.url.params)})
            return httpx.Response(202, json={"rq_id": "fake-rq-1"})
        if "upload-multiple" in headers:
            parts = parse_form(headers["content-type"], request.content)
            self.forms.append(parts)
            for _, filename, data in parts:
                if filename:
                    self.files[filename] = data
            return httpx.Response(200)
        if "upload-length" in headers:
            metadata = dict(item.split(" ", 1) for item in headers["upload-metadata"].split(","))
            name = base64.b64decode(metadata["filename"]).decode()
            upload_id = str(uuid.uuid4())
            self.uploads[upload_id] = Upload(name, int(headers["upload-length"]))
            return httpx.Response(
                201,
                headers={
                    "Location": f"{BASE}{request.url.path}{upload_id}",
                    "Upload-Filename": name,
                    "Upload-Offset": "0",
                    "Tus-Resumable": "1.0.0",
                },
            )
        return problem(400, "Not a step of the protocol.")

    def _patch(self, request: httpx.Request, path: str, headers: dict[str, str]) -> httpx.Response:
        self.patches += 1
        upload = self.uploads[path.rsplit("/", 1)[-1]]
        assert headers["content-type"] == "application/offset+octet-stream"
        assert headers["tus-resumable"] == "1.0.0"
        assert int(headers["content-length"]) == len(request.content)
        offset = int(headers["upload-offset"])
        if offset != len(upload.data):
            return problem(409, "Wrong offset.", headers={"Upload-Offset": str(len(upload.data))})
        fault = self.faults.get(self.patches)
        chunk = request.content
        if fault is not None:
            kept = chunk if fault.keep is None else chunk[: fault.keep]
            upload.data += kept
            if fault.status is None:
                raise httpx.RemoteProtocolError("connection broke", request=request)
            extra = {"Upload-Offset": str(len(upload.data))} if fault.offset else {}
            return problem(fault.status, f"Injected {fault.status}.", headers=extra)
        upload.data += chunk
        if len(upload.data) == upload.length:
            self.files[upload.name] = bytes(upload.data)
        return httpx.Response(204, headers={"Upload-Offset": str(len(upload.data))})

    def _head(self, path: str) -> httpx.Response:
        self.heads += 1
        fault = self.head_faults.get(self.heads)
        if fault is not None:
            if fault.status is None:
                raise httpx.ConnectError("refused")
            return problem(fault.status, "Injected.")
        upload = self.uploads[path.rsplit("/", 1)[-1]]
        return httpx.Response(
            200,
            headers={"Upload-Offset": str(len(upload.data)), "Upload-Length": str(upload.length)},
        )

    def _poll(self, rq_id: str) -> httpx.Response:
        states = self.requests.get(rq_id)
        if not states:
            return problem(404, f"Request {rq_id} does not exist.")
        state = states.pop(0) if len(states) > 1 else states[0]
        return httpx.Response(200, json=request_body(rq_id, **state))

    def steps(self) -> list[str]:
        """The log as `METHOD step`: which step of the protocol each exchange was."""
        named = []
        for method, _, headers in self.log:
            step = next(
                (h for h in ("upload-start", "upload-finish", "upload-multiple", "upload-length")
                 if h in headers),
                "",
            )  # fmt: skip
            named.append(f"{method} {step}".strip())
        return named


def problem(
    status: int, detail: str, *, headers: dict[str, str] | None = None, **more: Any
) -> httpx.Response:
    body = {"type": "about:blank", "title": "Problem", "status": status, "detail": detail, **more}
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/problem+json", **(headers or {})},
    )


def request_body(rq_id: str, **state: Any) -> dict[str, Any]:
    return {
        "id": rq_id,
        "status": "queued",
        "message": "",
        "progress": None,
        "operation": {"type": "create:task", "target": "task", "task_id": 1},
        "owner": {"id": 1, "username": "admin"},
        "created_date": "2026-01-01T00:00:00Z",
        "started_date": None,
        "finished_date": None,
        "expiry_date": None,
        "result_url": None,
        "result_id": None,
        **state,
    }


def parse_form(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """A multipart form's parts: (field, filename, bytes)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = []
    for part in message.iter_parts():
        disposition = part.get("Content-Disposition", "")
        params = dict(part.get_params(header="content-disposition") or [])
        payload = part.get_payload(decode=True)
        assert disposition
        assert isinstance(payload, bytes | None)
        parts.append((params.get("name", ""), params.get("filename", ""), payload or b""))
    return parts


@pytest.fixture
def server() -> FakeServer:
    """A fresh fake server."""
    return FakeServer()
