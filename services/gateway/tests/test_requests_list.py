"""`GET /api/requests` at the gateway: the lists of export, ingest and inference merged.

The three services run for real on loopback sockets, over one test database; their
requests are written straight into their `requests` tables, with chosen dates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from cvat_sdk.api_client import ApiClient, Configuration  # type: ignore[import-untyped]
from fastapi import FastAPI

from tessera.devstack.servers import free_port
from tessera.devstack.testing import ADMIN_TOKEN, serve_in_thread, settings_for
from tessera.export.app import create_app as create_export
from tessera.gateway.app import create_app as create_gateway
from tessera.gateway.config import GatewaySettings
from tessera.inference.app import create_app as create_inference
from tessera.ingest.app import create_app as create_ingest
from tessera.platform.auth import ensure_token, ensure_user
from tessera.platform.db import Database
from tessera.platform.requests import requests_table

GATEWAY = "http://gateway.test"
BOB_TOKEN = "tsr_bob-test-token-0123456789abcdefghijklmnop"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# (service, id, minutes after T0, operation, status): the newest is the last.
SEEDED: list[tuple[str, str, int, dict[str, Any], str]] = [
    ("export", "export-export-dataset-3-a", 1,
     {"type": "export:dataset", "target": "task", "task_id": 3, "format": "COCO 1.0"},
     "finished"),
    ("ingest", "ingest-create-task-3-a", 2,
     {"type": "create:task", "target": "task", "task_id": 3}, "finished"),
    ("export", "export-export-annotations-7-a", 3,
     {"type": "export:annotations", "target": "job", "task_id": 3, "job_id": 7,
      "format": "YOLO 1.1"}, "failed"),
    ("inference", "inference-autoannotate-task-3-a", 4,
     {"type": "autoannotate:task", "target": "task", "task_id": 3, "function_id": "det"},
     "started"),
    ("ingest", "ingest-create-task-4-a", 5,
     {"type": "create:task", "target": "task", "task_id": 4}, "queued"),
    ("export", "export-import-backup-a", 6,
     {"type": "import:backup", "target": "task"}, "queued"),
    ("inference", "inference-autoannotate-task-4-a", 7,
     {"type": "autoannotate:task", "target": "task", "task_id": 4, "function_id": "det"},
     "queued"),
]  # fmt: skip
NEWEST_FIRST = [rq_id for _, rq_id, *_ in reversed(SEEDED)]


@dataclass
class Fleet:
    """The three services on sockets, and a database session to seed them."""

    urls: dict[str, str]
    database: Database
    admin_id: int
    bob_id: int

    async def seed(self, service: str, rq_id: str, minutes: int, operation: dict[str, Any],
                   status: str, *, owner_id: int | None = None) -> None:  # fmt: skip
        table = requests_table(sa.MetaData(), service)
        result_url = f"/api/tasks/3/dataset/download?rq_id={rq_id}" if service == "export" else None
        async with self.database.transaction() as session:
            await session.execute(
                table.insert().values(
                    id=rq_id, owner_id=owner_id or self.admin_id, operation=operation,
                    status=status, created_date=T0 + timedelta(minutes=minutes),
                    result_url=result_url if status == "finished" else None,
                )
            )  # fmt: skip

    @contextlib.asynccontextmanager
    async def gateway(
        self, token: str | None = ADMIN_TOKEN, **upstreams: str
    ) -> AsyncIterator[httpx.AsyncClient]:
        """A client of the gateway (in process) in front of the fleet."""
        urls = {"annotations": f"http://127.0.0.1:{free_port()}", **self.urls, **upstreams}
        app = create_gateway(GatewaySettings(upstreams=urls, log_json=False))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=GATEWAY, headers=headers
            ) as client,
        ):
            yield client


@contextlib.contextmanager
def _serve_all(apps: dict[str, FastAPI]) -> Iterator[dict[str, str]]:
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(serve_in_thread(app)) for name, app in apps.items()}


@pytest.fixture
async def fleet(service_settings: dict[str, Any], database_url: str) -> AsyncIterator[Fleet]:
    """Export, ingest and inference (no auto-annotation workers), with the seeded requests
    of the admin and one of another user's."""
    apps = {
        "export": create_export(settings_for("export", **service_settings)),
        "ingest": create_ingest(settings_for("ingest", **service_settings)),
        "inference": create_inference(
            settings_for("inference", **service_settings, auto_annotation_workers=0)
        ),
    }
    database = Database(database_url, pool_size=2)
    try:
        async with database.transaction() as session:
            admin_id = await ensure_user(
                session, username="admin", email="admin@localhost", password="unused"
            )
            bob_id = await ensure_user(
                session, username="bob", email="bob@example.com", password=BOB_TOKEN
            )
            await ensure_token(session, owner_id=bob_id, name="test", token=BOB_TOKEN)
        with _serve_all(apps) as urls:
            fleet = Fleet(urls, database, admin_id, bob_id)
            for row in SEEDED:
                await fleet.seed(*row)
            await fleet.seed(
                "ingest", "ingest-create-task-9-bob", 8, {"type": "create:task", "target": "task",
                "task_id": 9}, "queued", owner_id=bob_id,
            )  # fmt: skip
            yield fleet
    finally:
        await database.dispose()


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["results"]]


async def test_cvat_sdk_reads_the_merged_list(fleet: Fleet) -> None:
    """cvat-sdk's `requests_api.list` parses the page as CVAT's `PaginatedRequestList`."""
    upstreams = {"annotations": f"http://127.0.0.1:{free_port()}", **fleet.urls}
    gateway = create_gateway(GatewaySettings(upstreams=upstreams, log_json=False))
    with serve_in_thread(gateway) as url:

        def use_sdk() -> tuple[Any, Any]:
            with ApiClient(Configuration(host=url)) as client:
                client.set_default_header("Authorization", f"Bearer {ADMIN_TOKEN}")
                second, _ = client.requests_api.list(page=2, page_size=3)
                created, _ = client.requests_api.list(action="create", task_id=3)
                return second, created

        second, created = await asyncio.to_thread(use_sdk)
    assert second.count == len(SEEDED)
    assert [item.id for item in second.results] == NEWEST_FIRST[3:6]
    assert second.next == f"{url}/api/requests?page_size=3&page=3"
    assert [(item.id, item.operation.type) for item in created.results] == [
        ("ingest-create-task-3-a", "create:task")
    ]


async def test_the_lists_merge_newest_first_page_by_page(fleet: Fleet) -> None:
    async with fleet.gateway() as gateway:
        first = (await gateway.get("/api/requests", params={"page_size": 3})).json()
        assert first["count"] == len(SEEDED)
        assert _ids(first) == NEWEST_FIRST[:3]
        assert first["previous"] is None
        assert first["next"] == f"{GATEWAY}/api/requests?page_size=3&page=2"

        second = (await gateway.get(first["next"])).json()
        assert second["count"] == len(SEEDED)
        assert _ids(second) == NEWEST_FIRST[3:6]
        assert second["previous"] == f"{GATEWAY}/api/requests?page_size=3"

        third = (await gateway.get(second["next"])).json()
        assert _ids(third) == NEWEST_FIRST[6:]
        assert third["next"] is None

        beyond = await gateway.get("/api/requests", params={"page_size": 3, "page": 4})
        assert beyond.status_code == 404

        every = (await gateway.get("/api/requests/", params={"page_size": "all"})).json()
        assert _ids(every) == NEWEST_FIRST
        assert (every["next"], every["previous"]) == (None, None)
        default = (await gateway.get("/api/requests/")).json()
        assert _ids(default) == NEWEST_FIRST

    # Each item as its service answers it: a result on the address the client used.
    (exported,) = [item for item in every["results"] if item["status"] == "finished"
                   and item["id"].startswith("export-")]  # fmt: skip
    assert exported["result_url"] == (
        f"{GATEWAY}/api/tasks/3/dataset/download?rq_id=export-export-dataset-3-a"
    )
    assert exported["operation"]["format"] == "COCO 1.0"
    assert exported["owner"] == {"id": fleet.admin_id, "username": "admin"}


async def test_cvats_filters_reach_every_service(fleet: Fleet) -> None:
    async def listed(gateway: httpx.AsyncClient, **filters: str) -> dict[str, Any]:
        response = await gateway.get("/api/requests", params=filters)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        assert page["count"] == len(page["results"])
        return page

    async with fleet.gateway() as gateway:
        assert _ids(await listed(gateway, task_id="3")) == [
            "inference-autoannotate-task-3-a", "export-export-annotations-7-a",
            "ingest-create-task-3-a", "export-export-dataset-3-a",
        ]  # fmt: skip
        assert _ids(await listed(gateway, status="queued", target="task")) == [
            "inference-autoannotate-task-4-a", "export-import-backup-a", "ingest-create-task-4-a",
        ]  # fmt: skip
        assert _ids(await listed(gateway, action="create")) == [
            "ingest-create-task-4-a", "ingest-create-task-3-a",
        ]  # fmt: skip
        assert _ids(await listed(gateway, subresource="annotations", format="YOLO 1.1")) == [
            "export-export-annotations-7-a"
        ]
        one = await listed(gateway, action="autoannotate", task_id="4", page_size="1")
        assert _ids(one) == ["inference-autoannotate-task-4-a"]
        assert one["next"] is None
        # A filter a service cannot read is its refusal, passed on.
        malformed = await gateway.get("/api/requests", params={"task_id": "three"})
        assert malformed.status_code in (400, 422)
        assert malformed.headers["content-type"] == "application/problem+json"


async def test_a_service_that_is_down_makes_the_list_unavailable(fleet: Fleet) -> None:
    async with fleet.gateway(ingest=f"http://127.0.0.1:{free_port()}") as gateway:
        response = await gateway.get("/api/requests")
        # A request's status still goes to its own service.
        polled = await gateway.get("/api/requests/export-export-dataset-3-a")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "ingest" in response.json()["detail"]
    assert response.json()["services"] == ["ingest"]
    assert polled.status_code == 200
    assert polled.json()["status"] == "finished"


async def test_each_caller_sees_only_their_own_and_none_without_a_token(fleet: Fleet) -> None:
    async with fleet.gateway(token=BOB_TOKEN) as gateway:
        page = (await gateway.get("/api/requests")).json()
    assert page["count"] == 1
    assert _ids(page) == ["ingest-create-task-9-bob"]

    async with fleet.gateway(token=None) as gateway:
        response = await gateway.get("/api/requests")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


async def test_the_merged_document_describes_the_list_once(fleet: Fleet) -> None:
    async with fleet.gateway() as gateway:
        schema = (await gateway.get("/api/schema")).json()
    listing = schema["paths"]["/api/requests"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"page", "page_size", "status", "action", "target", "subresource", "format",
            "project_id", "task_id", "job_id"} <= names  # fmt: skip
    assert "/api/requests/{rq_id}" in schema["paths"]
