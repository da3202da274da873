"""The sans-IO core that `Client` and `AsyncClient` share.

Every operation of the API is written once, as a *flow*: a generator that yields what it
needs done (`Call`: one HTTP exchange; `Sleep`: a pause between polls or retries) and
receives each call's `Reply`, then returns its result. A flow never touches the network,
the clock of the event loop, or httpx; the clients only run flows (`Client._run` with
blocking httpx, `AsyncClient._run` with asyncio), so both speak exactly the same
protocol, and tests can drive a flow by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError

from tessera.client.errors import ProtocolError, TesseraError, problem_error

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

SENT_SLICE = 256 * 1024
"""The bytes a request body is handed to the transport in, so that progress moves while
one large body is sent."""

ByteProgress = Callable[[int, int], None]
"""`(done, total)` in bytes of a transfer; `done` may go back when a broken chunk is sent
again."""


@dataclass(frozen=True)
class FilePart:
    """A local file sent as one part of a multipart form (`client_files[0]`)."""

    field: str
    path: Path
    filename: str
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Call:
    """One HTTP exchange a flow asks for.

    `url` is a path under the client's base URL (`/api/tasks/1`) or an absolute URL the
    server gave (`next`, a TUS `Location`, a `result_url`). The body is `json`, `content`
    (bytes) or a multipart form (`files` with `data` fields). `on_sent(n)` is told of
    every `n` bytes of the body handed to the transport. `download_to`: a 200's body is
    streamed into that file (its `Reply` then has no content), with `on_received(done,
    total)`. With `tolerate_transport_errors`, a connection that breaks comes back as a
    `Reply` with `error` set instead of raising (TUS resumes after it).
    """

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    files: Sequence[FilePart] = ()
    data: Mapping[str, str] = field(default_factory=dict)
    on_sent: Callable[[int], None] | None = None
    download_to: Path | None = None
    on_received: ByteProgress | None = None
    tolerate_transport_errors: bool = False
    timeout: float | None = None


@dataclass(frozen=True)
class Reply:
    """What came back for a `Call`: status, headers (lower-case names), body; or, for a
    tolerated transport error, `status` 0 and the `error`."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    error: Exception | None = None
    method: str = ""
    url: str = ""

    def header(self, name: str) -> str | None:
        """A response header, by any case of its name."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON; `ProtocolError` if it is not."""
        try:
            return json.loads(self.content)
        except ValueError as exc:
            raise ProtocolError(
                f"{self.method} {self.url} answered {self.status} with a body that is not "
                f"JSON: {self.content[:200]!r}",
                status=self.status,
            ) from exc


@dataclass(frozen=True)
class Sleep:
    """Pause the flow for `seconds` (between polls, before a retry)."""

    seconds: float


Step = Call | Sleep
Flow = Generator[Step, Reply | None, T]
"""A flow yields steps and receives each `Call`'s `Reply` (None after a `Sleep`)."""


def call(step: Call) -> Generator[Step, Reply | None, Reply]:
    """Yield one call and return its reply (`yield from call(...)` in a flow)."""
    reply = yield step
    assert reply is not None, "a Call is answered with a Reply"
    return reply


def sleep(seconds: float) -> Generator[Step, Reply | None, None]:
    """Pause the flow (`yield from sleep(...)`)."""
    yield Sleep(seconds)


def error_of(reply: Reply) -> TesseraError:
    """The `TesseraError` of an error reply (its problem details)."""
    return problem_error(
        reply.status,
        reply.content,
        reply.header("content-type") or "",
        method=reply.method,
        url=reply.url,
    )


def expect(reply: Reply, *statuses: int) -> Reply:
    """The reply when its status is one of `statuses` (any 2xx when none are given);
    otherwise its `TesseraError`. A transport error that was tolerated is raised as is."""
    if reply.error is not None:
        raise reply.error
    if (reply.status in statuses) if statuses else (200 <= reply.status < 300):
        return reply
    if 200 <= reply.status < 400:
        raise ProtocolError(
            f"{reply.method} {reply.url} answered {reply.status}; expected "
            f"{' or '.join(map(str, statuses))}.",
            status=reply.status,
        )
    raise error_of(reply)


def parse(model: type[M], reply: Reply) -> M:
    """The reply's JSON body as `model`; `ProtocolError` naming what did not fit."""
    try:
        return model.model_validate_json(reply.content)
    except ValidationError as exc:
        raise ProtocolError(
            f"{reply.method} {reply.url}: the answer is not a {model.__name__}: {exc}",
            status=reply.status,
        ) from exc


def fetch(
    model: type[M], url: str, *, params: Mapping[str, Any] | None = None, status: int = 200
) -> Flow[M]:
    """GET `url` and parse it as `model` (the flow of most reads)."""
    reply = yield from call(Call("GET", url, params=params))
    return parse(model, expect(reply, status))


def query_params(**values: Any) -> dict[str, Any]:
    """Query parameters without the None ones; booleans as `true`/`false`, JSON objects
    (a JSON Logic `filter`) as JSON text."""
    params: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, dict | list):
            params[key] = json.dumps(value)
        else:
            params[key] = value
    return params


def slices(
    content: bytes, on_sent: Callable[[int], None], size: int = SENT_SLICE
) -> Iterator[bytes]:
    """`content` in slices of `size`, telling `on_sent` of each as the transport takes it."""
    view = memoryview(content)
    for start in range(0, len(content), size):
        piece = bytes(view[start : start + size])
        yield piece
        on_sent(len(piece))


class ProgressFile:
    """A file opened for a multipart part that tells `on_sent` of the bytes read from it.

    httpx reads a part with `read(n)` (after `seek(0)`, and again if the body is sent
    twice); only bytes past the furthest point read so far count, so a body sent twice is
    not counted twice. `fileno` lets httpx find the length without reading.
    """

    def __init__(self, file: IO[bytes], on_sent: Callable[[int], None] | None) -> None:
        self._file = file
        self._on_sent = on_sent
        self._furthest = 0

    def read(self, size: int = -1) -> bytes:
        block = self._file.read(size)
        position = self._file.tell()
        if position > self._furthest:
            if self._on_sent is not None:
                self._on_sent(position - self._furthest)
            self._furthest = position
        return block

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


def url_of(base: str, url: str) -> str:
    """`url` as it is requested from a client on `base` (absolute URLs stay as they are)."""
    if "://" in url:
        return url
    return base.rstrip("/") + "/" + url.lstrip("/")
