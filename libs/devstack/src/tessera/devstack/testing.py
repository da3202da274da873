"""pytest plugin: real PostgreSQL, NATS and S3 for the test session, isolated per test.

A local Triton (the `triton` fixture) starts once, for the first test that asks for it.

The servers start once per session on free loopback ports (PostgreSQL without fsync),
and stop when the session ends. Every service schema is migrated once into a template
database; each test gets a fresh database copied from it (`CREATE DATABASE ...
TEMPLATE`, milliseconds), its own bucket, and empty streams.

    async def test_something(open_service):
        async with open_service("annotations") as svc:
            response = await svc.client.get("/api/users/self")
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from nats.js.errors import NotFoundError

from tessera.devstack.launcher import MIGRATIONS
from tessera.devstack.servers import S3, Nats, Postgres, Triton, free_port, stop_all
from tessera.platform.auth import ensure_token, ensure_user
from tessera.platform.bus import STREAMS
from tessera.platform.db import Database
from tessera.platform.migrate import migrate_packages
from tessera.platform.service import Platform

TEMPLATE_DATABASE = "tessera_template"
ADMIN_TOKEN = "tsr_test-admin-token-0123456789abcdefghijklmnop"
ADMIN_PASSWORD = "test-admin-password"
SETTINGS_CLASSES = {
    "annotations": "tessera.annotations.config:AnnotationsSettings",
    "ingest": "tessera.ingest.config:IngestSettings",
    "export": "tessera.export.config:ExportSettings",
    "inference": "tessera.inference.config:InferenceSettings",
}


@dataclass
class Stack:
    """The servers of the test session."""

    base: Path
    postgres: Postgres
    nats: Nats
    s3: S3


@dataclass
class ServiceHandle:
    """A running service app: an authenticated client (as the admin) and an anonymous one."""

    app: FastAPI
    client: httpx.AsyncClient
    anonymous: httpx.AsyncClient

    @property
    def platform(self) -> Platform:
        """The service's clients (database, bus, storage, outbox)."""
        platform: Platform = self.app.state.platform
        return platform


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """PostgreSQL, NATS and S3 for the whole session, with the template database migrated."""
    base = Path(tempfile.mkdtemp(prefix="tessera-test-"))
    base.chmod(0o755)
    servers: list[Any] = []
    try:
        postgres = Postgres(
            base / "postgres", port=free_port(), password=uuid.uuid4().hex, durable=False
        )
        servers.append(postgres.start())
        nats_server = Nats(base / "nats", port=free_port(), token=uuid.uuid4().hex)
        servers.append(nats_server.start())
        s3 = S3(base / "s3", port=free_port(), access_key="tessera", secret_key=uuid.uuid4().hex)
        servers.append(s3.start())
        postgres.ensure_database(TEMPLATE_DATABASE)
        asyncio.run(migrate_packages(postgres.url(TEMPLATE_DATABASE), MIGRATIONS))
        asyncio.run(_create_admin(postgres.url(TEMPLATE_DATABASE)))
        yield Stack(base, postgres, nats_server, s3)
    finally:
        stop_all(servers)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def triton() -> Iterator[Triton]:
    """Triton Inference Server serving the model repository, for the rest of the session.

    Its gRPC address is `triton.url` (for `TESSERA_TRITON_URL`), its REST one
    `triton.http_url`. Started only when a test asks for it: loading the models takes
    a few seconds.
    """
    base = Path(tempfile.mkdtemp(prefix="tessera-triton-test-"))
    server = Triton(base, http_port=free_port(), grpc_port=free_port())
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


async def _create_admin(url: str) -> None:
    """The admin and its token, as the annotations service makes them at its first start."""
    database = Database(url, pool_size=1)
    try:
        async with database.transaction() as session:
            admin_id = await ensure_user(
                session,
                username="admin",
                email="admin@localhost",
                password=ADMIN_PASSWORD,
                is_superuser=True,
            )
            await ensure_token(session, owner_id=admin_id, name="bootstrap", token=ADMIN_TOKEN)
    finally:
        await database.dispose()


@pytest.fixture
def database_url(stack: Stack) -> Iterator[str]:
    """A fresh, fully migrated database for one test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    stack.postgres.psql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DATABASE}"')
    yield stack.postgres.url(name)
    stack.postgres.psql(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def service_settings(stack: Stack, database_url: str) -> AsyncIterator[dict[str, Any]]:
    """Settings (as keyword arguments) that point a service at this test's resources."""
    yield {
        "env": "test",
        "log_json": False,
        "database_url": database_url,
        "database_pool_size": 5,
        "migrate_on_start": False,
        "nats_url": stack.nats.url,
        "nats_token": stack.nats.token,
        "s3_endpoint_url": stack.s3.url,
        "s3_access_key": stack.s3.access_key,
        "s3_secret_key": stack.s3.secret_key,
        "s3_bucket": f"test-{uuid.uuid4().hex[:20]}",
        "s3_create_bucket": True,
        "bootstrap_admin_password": ADMIN_PASSWORD,
        "bootstrap_admin_token": ADMIN_TOKEN,
    }
    connection = await nats.connect(stack.nats.url, token=stack.nats.token)
    try:
        js = connection.jetstream()
        for name in STREAMS:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await connection.close()


def settings_for(service: str, **values: Any) -> Any:
    """An instance of a service's settings class."""
    module_name, class_name = SETTINGS_CLASSES[service].split(":")
    return getattr(importlib.import_module(module_name), class_name)(**values)


@asynccontextmanager
async def run_app(app: FastAPI) -> AsyncIterator[ServiceHandle]:
    """Run an app's lifespan and give clients that call it in-process."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with (
            httpx.AsyncClient(
                transport=transport,
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as client,
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous,
        ):
            yield ServiceHandle(app, client, anonymous)


OpenService = Callable[..., AbstractAsyncContextManager[ServiceHandle]]


@contextlib.contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run an app under uvicorn on a free loopback port, in a thread; its base URL.

    For clients that need a real socket: another service calling this one over HTTP,
    or a synchronous client such as cvat-sdk.
    """
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server stopped while starting")
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start in time")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass(frozen=True)
class Person:
    """A user besides the admin, with a personal access token and a client that sends it."""

    id: int
    username: str
    token: str
    client: httpx.AsyncClient


Enrol = Callable[[ServiceHandle, str], Awaitable[Person]]


@pytest.fixture
async def enrol() -> AsyncIterator[Enrol]:
    """`await enrol(svc, "alice")`: a new user of that service with a token and a client."""
    clients: list[httpx.AsyncClient] = []

    async def enrol_(svc: ServiceHandle, username: str) -> Person:
        token = f"tsr_{username}-test-token-0123456789abcdefghij"
        async with svc.platform.database.transaction() as session:
            user_id = await ensure_user(
                session, username=username, email=f"{username}@example.com", password=token
            )
            await ensure_token(session, owner_id=user_id, name="test", token=token)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=svc.app, raise_app_exceptions=False),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {token}"},
        )
        clients.append(client)
        return Person(user_id, username, token, client)

    yield enrol_
    for client in clients:
        await client.aclose()


@pytest.fixture
def open_service(service_settings: dict[str, Any]) -> OpenService:
    """`async with open_service("annotations", **overrides) as svc:` runs that service."""

    def open_(service: str, **overrides: Any) -> AbstractAsyncContextManager[ServiceHandle]:
        app_module = importlib.import_module(f"tessera.{service}.app")
        settings = settings_for(service, **{**service_settings, **overrides})
        return run_app(app_module.create_app(settings))

    return open_
