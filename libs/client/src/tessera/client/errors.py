"""Errors of the client: the server's RFC 9457 problem details, as an exception.

Every error answer of Tessera is `application/problem+json` with `type`, `title`,
`status`, `detail`, `instance` and, when particular fields of the request are at fault,
`errors` (`[{"field": "body.name", "message": ...}]`). `TesseraError` carries them; an
answer that is not problem+json (a proxy's HTML page) still becomes one, with its status
and the start of its text as the detail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One field of the request at fault (`body.shapes[3].points`) and why."""

    field: str
    message: str


class TesseraError(Exception):
    """An error answer of the server (or a request of its that failed).

    `status` is the HTTP status (0 for a background request that failed: see
    `RequestFailed`), `title` and `detail` the problem's, `errors` the fields at fault,
    `problem` the whole problem document (extension members included).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: Sequence[FieldError] = (),
        type_: str = "about:blank",
        instance: str | None = None,
        problem: Mapping[str, Any] | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _phrase(status)
        self.errors = list(errors)
        self.type = type_
        self.instance = instance
        self.problem = dict(problem or {})
        self.method = method
        self.url = url

    def __str__(self) -> str:
        head = f"{self.status} {self.title}: {self.detail}" if self.status else self.detail
        fields = "; ".join(
            f"{e.field}: {e.message}" for e in self.errors if e.message not in self.detail
        )
        return f"{head} ({fields})" if fields else head

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, detail={self.detail!r})"


class RequestFailed(TesseraError):
    """A background request (`/api/requests/{rq_id}`) that ended `failed`; `rq_id` names it
    and `detail` is the server's message."""

    def __init__(self, rq_id: str, message: str) -> None:
        super().__init__(
            0, message or f"Request {rq_id} failed.", title="Request failed", instance=rq_id
        )
        self.rq_id = rq_id


class ProtocolError(TesseraError):
    """The server answered something this client does not understand (a TUS answer without
    `Location`, an offset going backwards, a body that is not the expected JSON)."""

    def __init__(self, detail: str, *, status: int = 0) -> None:
        super().__init__(status, detail, title="Unexpected answer")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_error(
    status: int,
    content: bytes,
    content_type: str = "",
    *,
    method: str | None = None,
    url: str | None = None,
) -> TesseraError:
    """The `TesseraError` of an error answer: its problem details when the body is a
    JSON object (problem+json, or plain JSON with `detail`), else the start of the text."""
    document: Any = None
    if "json" in content_type or content[:1] == b"{":
        try:
            document = json.loads(content)
        except ValueError:
            document = None
    if isinstance(document, dict):
        raw_errors = document.get("errors")
        errors = [
            FieldError(str(item.get("field", "")), str(item.get("message", "")))
            for item in (raw_errors if isinstance(raw_errors, list) else [])
            if isinstance(item, dict)
        ]
        detail = document.get("detail")
        if not isinstance(detail, str):
            # FastAPI's own shape ({"detail": [...]}) or another service's JSON.
            detail = json.dumps(detail) if detail is not None else _phrase(status)
        return TesseraError(
            int(document.get("status") or status),
            detail,
            title=str(document["title"]) if document.get("title") else None,
            errors=errors,
            type_=str(document.get("type") or "about:blank"),
            instance=str(document["instance"]) if document.get("instance") else None,
            problem=document,
            method=method,
            url=url,
        )
    text = content.decode("utf-8", "replace").strip()
    return TesseraError(status, text[:500] or _phrase(status), problem=None, method=method, url=url)
