"""`Client` (blocking) and `AsyncClient` (asyncio): both run the same flows.

Every operation lives once, in `tessera.client.operations`, as a sans-IO flow; each
class only knows how to perform a `Call` with its httpx client and how to pause, and
exposes each operation as a method of the same name and parameters (a `Listing` becomes
an iterator over every page, `async for` on `AsyncClient`).

    with Client("http://127.0.0.1:8080", token) as client:
        project = client.create_project("cars", labels=[LabelSpec(name="car")])
        task = client.create_task("drive 1", project_id=project.id, segment_size=100)
        client.upload_task_data_and_wait(task.id, [Path("a.jpg"), Path("b.jpg")])
        client.export_dataset(task.id, "COCO 1.0", Path("coco.zip"))
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, ParamSpec, Self, TypeVar, overload

import httpx

from tessera.client import operations as ops
from tessera.client.config import resolve_credentials
from tessera.client.models import Resource
from tessera.client.operations import Listing, next_page, page
from tessera.client.protocol import (
    Call,
    Flow,
    ProgressFile,
    Reply,
    Sleep,
    slices,
)

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R", bound=Resource)

USER_AGENT = "tessera-client/0.1.0"
DEFAULT_TIMEOUT_S = 60.0


# --- methods made of flows --------------------------------------------------------------


class _Method(Generic[P, T]):
    """A method whose body is an operation's flow (or listing)."""

    def __init__(self, operation: Callable[P, T]) -> None:
        self.operation = operation
        self.__doc__ = operation.__doc__
        self.__name__ = operation.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.__name__ = name


class _Sync(_Method[P, Flow[T]]):
    @overload
    def __get__(self, client: None, owner: type) -> Self: ...
    @overload
    def __get__(self, client: Client, owner: type) -> Callable[P, T]: ...
    def __get__(self, client: Client | None, owner: type) -> Self | Callable[P, T]:
        if client is None:
            return self
        operation = self.operation

        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            return client._run(operation(*args, **kwargs))

        run.__doc__, run.__name__ = self.__doc__, self.__name__
        return run


class _Async(_Method[P, Flow[T]]):
    @overload
    def __get__(self, client: None, owner: type) -> Self: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(
        self, client: AsyncClient | None, owner: type
    ) -> Self | Callable[P, Coroutine[Any, Any, T]]:
        if client is None:
            return self
        operation = self.operation

        async def run(*args: P.args, **kwargs: P.kwargs) -> T:
            return await client._run(operation(*args, **kwargs))

        run.__doc__, run.__name__ = self.__doc__, self.__name__
        return run


class _SyncPages(_Method[P, Listing[R]]):
    @overload
    def __get__(self, client: None, owner: type) -> Self: ...
    @overload
    def __get__(self, client: Client, owner: type) -> Callable[P, Iterator[R]]: ...
    def __get__(self, client: Client | None, owner: type) -> Self | Callable[P, Iterator[R]]:
        if client is None:
            return self
        operation = self.operation

        def run(*args: P.args, **kwargs: P.kwargs) -> Iterator[R]:
            return client.iterate(operation(*args, **kwargs))

        run.__doc__, run.__name__ = self.__doc__, self.__name__
        return run


class _AsyncPages(_Method[P, Listing[R]]):
    @overload
    def __get__(self, client: None, owner: type) -> Self: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type) -> Callable[P, AsyncIterator[R]]: ...
    def __get__(
        self, client: AsyncClient | None, owner: type
    ) -> Self | Callable[P, AsyncIterator[R]]:
        if client is None:
            return self
        operation = self.operation

        def run(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[R]:
            return client.iterate(operation(*args, **kwargs))

        run.__doc__, run.__name__ = self.__doc__, self.__name__
        return run


# --- what both clients share ------------------------------------------------------------


def _headers(
    token: str | None, organization: str | None, extra: Mapping[str, str] | None
) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json, application/problem+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if organization:
        headers["X-Organization"] = organization
    headers.update(extra or {})
    return headers


def _build(
    http: httpx.Client | httpx.AsyncClient, step: Call, content: Any, files: Any
) -> httpx.Request:
    headers = dict(step.headers)
    if step.content is not None and step.on_sent is not None:
        # A streamed body keeps its length (no chunked encoding: TUS wants Content-Length).
        headers["Content-Length"] = str(len(step.content))
    return http.build_request(
        step.method,
        step.url,
        params=step.params,
        headers=headers,
        json=step.json,
        content=content,
        data=dict(step.data) if files else None,
        files=files,
        timeout=step.timeout if step.timeout is not None else httpx.USE_CLIENT_DEFAULT,
    )


def _open_parts(step: Call, stack: ExitStack) -> list[tuple[str, tuple[str, Any, str]]] | None:
    if not step.files:
        return None
    opened = []
    for part in step.files:
        file: IO[bytes] = stack.enter_context(part.path.open("rb"))
        opened.append(
            (part.field, (part.filename, ProgressFile(file, step.on_sent), part.content_type))
        )
    return opened


def _reply(request: httpx.Request, response: httpx.Response, content: bytes) -> Reply:
    return Reply(
        response.status_code,
        {name.lower(): value for name, value in response.headers.items()},
        content,
        method=request.method,
        url=str(request.url),
    )


def _failed(request: httpx.Request, error: Exception) -> Reply:
    return Reply(0, {}, b"", error=error, method=request.method, url=str(request.url))


def _part_file(target: Path) -> tuple[int, Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    return handle, Path(name)


def _total(response: httpx.Response) -> int:
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else 0


class _Base:
    def __init__(
        self,
        url: str,
        token: str | None,
        organization: str | None,
        headers: Mapping[str, str] | None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.organization = organization
        self._headers = _headers(token, organization, headers)

    @classmethod
    def from_config(cls, **kwargs: Any) -> Self:
        """A client on the URL and token of `tessera login` (`TESSERA_URL` and
        `TESSERA_TOKEN` take precedence)."""
        url, token = resolve_credentials()
        return cls(url, token, **kwargs)


class Client(_Base):
    """Tessera's API over blocking httpx (`with Client(url, token) as client: ...`).

    Errors of the server raise `TesseraError` (with its problem details); a background
    request that fails raises `RequestFailed`; network failures raise httpx's errors.
    Methods that list (`list_projects`, `list_tasks`...) return iterators over every
    page. Progress callbacks: `on_progress(done, total)` in bytes for transfers (total 0
    when unknown), `on_request(request)` at each poll of a background request.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        organization: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        verify: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(url, token, organization, headers)
        self.http = httpx.Client(
            base_url=self.url,
            headers=self._headers,
            timeout=timeout,
            transport=transport,
            verify=verify,
            follow_redirects=False,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    # --- running flows ------------------------------------------------------------------

    def _run(self, flow: Flow[T]) -> T:
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = flow.send(None)
                else:
                    step = flow.send(self._send(step))
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    def _send(self, step: Call) -> Reply:
        with ExitStack() as stack:
            files = _open_parts(step, stack)
            content: Any = step.content
            if step.content is not None and step.on_sent is not None:
                content = slices(step.content, step.on_sent)
            request = _build(self.http, step, content, files)
            try:
                response = self.http.send(request, stream=True)
            except httpx.TransportError as error:
                if step.tolerate_transport_errors:
                    return _failed(request, error)
                raise
            try:
                if step.download_to is not None and response.status_code == 200:
                    self._save(response, step)
                    return _reply(request, response, b"")
                try:
                    body = response.read()
                except httpx.TransportError as error:
                    if step.tolerate_transport_errors:
                        return _failed(request, error)
                    raise
                return _reply(request, response, body)
            finally:
                response.close()

    @staticmethod
    def _save(response: httpx.Response, step: Call) -> None:
        assert step.download_to is not None
        total, done = _total(response), 0
        handle, part = _part_file(step.download_to)
        try:
            with os.fdopen(handle, "wb") as sink:
                for block in response.iter_bytes():
                    sink.write(block)
                    done += len(block)
                    if step.on_received is not None:
                        step.on_received(done, total)
            part.replace(step.download_to)
        finally:
            part.unlink(missing_ok=True)

    def run(self, flow: Flow[T]) -> T:
        """Run a flow of `tessera.client.operations` (or one of your own)."""
        return self._run(flow)

    def iterate(self, listing: Listing[R]) -> Iterator[R]:
        """Every item of a listing, page by page."""
        current: Listing[R] | None = listing
        while current is not None:
            got = self._run(page(current))
            yield from got.results
            current = next_page(current, got)

    # --- the operations -----------------------------------------------------------------

    about = _Sync(ops.about)
    me = _Sync(ops.me)
    list_users = _SyncPages(ops.list_users)
    get_user = _Sync(ops.get_user)
    formats = _Sync(ops.formats)
    list_projects = _SyncPages(ops.list_projects)
    get_project = _Sync(ops.get_project)
    create_project = _Sync(ops.create_project)
    update_project = _Sync(ops.update_project)
    delete_project = _Sync(ops.delete_project)
    list_tasks = _SyncPages(ops.list_tasks)
    get_task = _Sync(ops.get_task)
    create_task = _Sync(ops.create_task)
    update_task = _Sync(ops.update_task)
    delete_task = _Sync(ops.delete_task)
    start_task_data = _Sync(ops.start_task_data)
    upload_task_data_and_wait = _Sync(ops.upload_task_data_and_wait)
    start_task_data_from_cloud = _Sync(ops.start_task_data_from_cloud)
    get_data_meta = _Sync(ops.get_data_meta)
    list_labels = _SyncPages(ops.list_labels)
    list_jobs = _SyncPages(ops.list_jobs)
    get_job = _Sync(ops.get_job)
    update_job = _Sync(ops.update_job)
    list_requests = _SyncPages(ops.list_requests)
    get_request = _Sync(ops.get_request)
    cancel_request = _Sync(ops.cancel_request)
    wait = _Sync(ops.wait_request)
    start_export = _Sync(ops.start_export)
    export_dataset = _Sync(ops.export_dataset)
    start_backup = _Sync(ops.start_backup)
    backup = _Sync(ops.backup)
    start_import = _Sync(ops.start_import)
    import_annotations = _Sync(ops.import_annotations)
    start_restore = _Sync(ops.start_restore)
    restore = _Sync(ops.restore)
    download = _Sync(ops.download_file)
    render_frame = _Sync(ops.render_frame)
    list_shapes = _SyncPages(ops.list_shapes)
    get_annotations = _Sync(ops.get_annotations)
    update_annotations = _Sync(ops.update_annotations)
    list_cloud_storages = _SyncPages(ops.list_cloud_storages)
    create_cloud_storage = _Sync(ops.create_cloud_storage)
    delete_cloud_storage = _Sync(ops.delete_cloud_storage)
    get_cloud_storage = _Sync(ops.get_cloud_storage)
    cloud_content = _Sync(ops.cloud_content)
    list_cloud_files = _Sync(ops.list_cloud_files)
    list_functions = _Sync(ops.list_functions)
    start_auto_annotation = _Sync(ops.start_auto_annotation)
    list_function_calls = _Sync(ops.list_function_calls)
    get_function_call = _Sync(ops.get_function_call)
    auto_annotate = _Sync(ops.auto_annotate)


class AsyncClient(_Base):
    """Tessera's API over asyncio httpx (`async with AsyncClient(url, token) as client`);
    the same methods as `Client`, awaited, and listings iterated with `async for`."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        organization: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(url, token, organization, headers)
        self.http = httpx.AsyncClient(
            base_url=self.url,
            headers=self._headers,
            timeout=timeout,
            transport=transport,
            verify=verify,
            follow_redirects=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self.http.aclose()

    # --- running flows ------------------------------------------------------------------

    async def _run(self, flow: Flow[T]) -> T:
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = flow.send(None)
                else:
                    step = flow.send(await self._send(step))
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            flow.close()

    async def _send(self, step: Call) -> Reply:
        with ExitStack() as stack:
            files = _open_parts(step, stack)
            content: Any = step.content
            if step.content is not None and step.on_sent is not None:
                content = _async_slices(step.content, step.on_sent)
            request = _build(self.http, step, content, files)
            try:
                response = await self.http.send(request, stream=True)
            except httpx.TransportError as error:
                if step.tolerate_transport_errors:
                    return _failed(request, error)
                raise
            try:
                if step.download_to is not None and response.status_code == 200:
                    await self._save(response, step)
                    return _reply(request, response, b"")
                try:
                    body = await response.aread()
                except httpx.TransportError as error:
                    if step.tolerate_transport_errors:
                        return _failed(request, error)
                    raise
                return _reply(request, response, body)
            finally:
                await response.aclose()

    @staticmethod
    async def _save(response: httpx.Response, step: Call) -> None:
        assert step.download_to is not None
        total, done = _total(response), 0
        handle, part = _part_file(step.download_to)
        try:
            with os.fdopen(handle, "wb") as sink:
                async for block in response.aiter_bytes():
                    sink.write(block)
                    done += len(block)
                    if step.on_received is not None:
                        step.on_received(done, total)
            part.replace(step.download_to)
        finally:
            part.unlink(missing_ok=True)

    async def run(self, flow: Flow[T]) -> T:
        """Run a flow of `tessera.client.operations` (or one of your own)."""
        return await self._run(flow)

    async def iterate(self, listing: Listing[R]) -> AsyncIterator[R]:
        """Every item of a listing, page by page."""
        current: Listing[R] | None = listing
        while current is not None:
            got = await self._run(page(current))
            for item in got.results:
                yield item
            current = next_page(current, got)

    # --- the operations (the same list as Client's) -------------------------------------

    about = _Async(ops.about)
    me = _Async(ops.me)
    list_users = _AsyncPages(ops.list_users)
    get_user = _Async(ops.get_user)
    formats = _Async(ops.formats)
    list_projects = _AsyncPages(ops.list_projects)
    get_project = _Async(ops.get_project)
    create_project = _Async(ops.create_project)
    update_project = _Async(ops.update_project)
    delete_project = _Async(ops.delete_project)
    list_tasks = _AsyncPages(ops.list_tasks)
    get_task = _Async(ops.get_task)
    create_task = _Async(ops.create_task)
    update_task = _Async(ops.update_task)
    delete_task = _Async(ops.delete_task)
    start_task_data = _Async(ops.start_task_data)
    upload_task_data_and_wait = _Async(ops.upload_task_data_and_wait)
    start_task_data_from_cloud = _Async(ops.start_task_data_from_cloud)
    get_data_meta = _Async(ops.get_data_meta)
    list_labels = _AsyncPages(ops.list_labels)
    list_jobs = _AsyncPages(ops.list_jobs)
    get_job = _Async(ops.get_job)
    update_job = _Async(ops.update_job)
    list_requests = _AsyncPages(ops.list_requests)
    get_request = _Async(ops.get_request)
    cancel_request = _Async(ops.cancel_request)
    wait = _Async(ops.wait_request)
    start_export = _Async(ops.start_export)
    export_dataset = _Async(ops.export_dataset)
    start_backup = _Async(ops.start_backup)
    backup = _Async(ops.backup)
    start_import = _Async(ops.start_import)
    import_annotations = _Async(ops.import_annotations)
    start_restore = _Async(ops.start_restore)
    restore = _Async(ops.restore)
    download = _Async(ops.download_file)
    render_frame = _Async(ops.render_frame)
    list_shapes = _AsyncPages(ops.list_shapes)
    get_annotations = _Async(ops.get_annotations)
    update_annotations = _Async(ops.update_annotations)
    list_cloud_storages = _AsyncPages(ops.list_cloud_storages)
    create_cloud_storage = _Async(ops.create_cloud_storage)
    delete_cloud_storage = _Async(ops.delete_cloud_storage)
    get_cloud_storage = _Async(ops.get_cloud_storage)
    cloud_content = _Async(ops.cloud_content)
    list_cloud_files = _Async(ops.list_cloud_files)
    list_functions = _Async(ops.list_functions)
    start_auto_annotation = _Async(ops.start_auto_annotation)
    list_function_calls = _Async(ops.list_function_calls)
    get_function_call = _Async(ops.get_function_call)
    auto_annotate = _Async(ops.auto_annotate)


async def _async_slices(content: bytes, on_sent: Callable[[int], None]) -> AsyncIterator[bytes]:
    for piece in slices(content, on_sent):
        yield piece
