"""A request's end and the events it carries: written to the outbox in the transaction that
ends the request, and only when that transaction did end it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from tessera.devstack.testing import Stack
from tessera.platform.auth import Principal
from tessera.platform.bus import Bus, Outbox, outbox_table
from tessera.platform.db import Database
from tessera.platform.pagination import PageParams
from tessera.platform.requests import Operation, RequestStore, requests_table

SCHEMA = "requests_test"
ENDED = "things.ended"


@dataclasses.dataclass
class Env:
    """A request store whose outbox is read, not relayed."""

    database: Database
    requests: RequestStore

    async def create(self) -> str:
        """A queued request; its id."""
        async with self.database.transaction() as session:
            return await self.requests.create(
                session, Operation(type="test:thing", target="task", task_id=1),
                owner_id=1, organization_id=None,
            )  # fmt: skip

    async def outbox(self) -> list[tuple[str, dict[str, Any]]]:
        """The events written so far, oldest first."""
        table = self.requests.outbox.table
        async with self.database.transaction() as session:
            rows = await session.execute(
                sa.select(table.c.subject, table.c.payload).order_by(table.c.id)
            )
            return [(row.subject, row.payload) for row in rows]

    async def ended(self) -> list[dict[str, Any]]:
        """The payloads of the `ENDED` events written so far."""
        return [data for subject, data in await self.outbox() if subject == ENDED]


@pytest.fixture
async def env(stack: Stack, database_url: str) -> AsyncIterator[Env]:
    """The tables of requests and the outbox in their own schema."""
    database = Database(database_url, pool_size=2)
    metadata = sa.MetaData()
    requests_table(metadata, SCHEMA)
    outbox_table(metadata, SCHEMA)
    async with database.transaction() as session:
        await session.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
        await session.run_sync(lambda sync: metadata.create_all(sync.connection()))
    outbox = Outbox(database, Bus(stack.nats.url, token=stack.nats.token), SCHEMA)
    try:
        yield Env(database, RequestStore(database, outbox, "things", SCHEMA))
    finally:
        await database.dispose()


async def test_finish_and_fail_publish_their_events_only_when_they_end_the_request(
    env: Env,
) -> None:
    finished, failed = await env.create(), await env.create()
    await env.requests.start(finished)

    assert await env.requests.finish(finished, result_id=3, events=[(ENDED, {"rq_id": finished})])
    assert await env.requests.fail(failed, "broken", events=[(ENDED, {"rq_id": failed})])
    # ended already: neither the status nor the outbox changes
    assert not await env.requests.fail(finished, "late", events=[(ENDED, {"rq_id": "again"})])
    assert not await env.requests.finish(failed, events=[(ENDED, {"rq_id": "again"})])

    assert await env.ended() == [{"rq_id": finished}, {"rq_id": failed}]
    assert await env.requests.status(finished) == "finished"
    assert await env.requests.status(failed) == "failed"
    updates = [data["status"] for subject, data in await env.outbox() if subject != ENDED]
    assert updates == ["queued", "queued", "started", "finished", "failed"]


async def test_a_cancelled_request_publishes_no_event_of_its_end(env: Env) -> None:
    rq_id = await env.create()
    owner = Principal(user_id=1, username="owner", is_superuser=False, token_id=1, read_only=False)
    await env.requests.cancel(rq_id, owner)
    assert not await env.requests.finish(rq_id, events=[(ENDED, {"rq_id": rq_id})])
    assert not await env.requests.fail(rq_id, "late", events=[(ENDED, {"rq_id": rq_id})])
    assert await env.ended() == []
    assert (await env.outbox())[-1] == (
        "things.requests.updated",
        {"rq_id": rq_id, "status": "failed", "progress": None},
    )


async def test_the_event_and_the_status_change_commit_together(env: Env) -> None:
    """An event the outbox cannot store rolls the status change back with it."""
    rq_id = await env.create()
    with pytest.raises(StatementError, match="not JSON serializable"):
        await env.requests.finish(rq_id, events=[(ENDED, {"unserializable": object()})])
    assert await env.requests.status(rq_id) == "queued"
    assert await env.ended() == []

    assert await env.requests.finish(rq_id, events=[(ENDED, {"rq_id": rq_id})])
    assert await env.ended() == [{"rq_id": rq_id}]


async def test_the_list_takes_cvats_filters(env: Env) -> None:
    """`action` and `subresource` come from the operation's type, as CVAT's request ids
    give them; the simple filters all apply together, and `filter` is JSON Logic."""
    operations = {
        "dataset": Operation(type="export:dataset", target="task", task_id=3, format="COCO 1.0"),
        "job": Operation(type="export:annotations", target="job", task_id=3, job_id=7,
                         format="YOLO 1.1"),
        "creation": Operation(type="create:task", target="task", task_id=3),
        "annotate": Operation(type="autoannotate:task", target="task", task_id=4,
                              function_id="det"),
        "restore": Operation(type="import:backup", target="project"),
    }  # fmt: skip
    ids: dict[str, str] = {}
    async with env.database.transaction() as session:
        for name, operation in operations.items():
            ids[name] = await env.requests.create(
                session, operation, owner_id=1, organization_id=None
            )
        await env.requests.create(session, operations["dataset"], owner_id=2, organization_id=None)
    await env.requests.fail(ids["restore"], "broken")
    owner = Principal(user_id=1, username="owner", is_superuser=False, token_id=1, read_only=False)
    page = PageParams(page=1, page_size=None)

    async def listed(**filters: str) -> set[str]:
        async with env.database.transaction() as session:
            count, found = await env.requests.list_own(session, owner, page, filters)
        assert count == len(found)
        return {ids_by_value[item.id] for item in found}

    ids_by_value = {value: key for key, value in ids.items()}
    assert await listed() == set(operations)
    assert await listed(action="export") == {"dataset", "job"}
    assert await listed(subresource="dataset") == {"dataset"}
    assert await listed(subresource="task") == set()
    assert await listed(target="task") == {"dataset", "creation", "annotate"}
    assert await listed(task_id="3") == {"dataset", "job", "creation"}
    assert await listed(task_id="3", action="create") == {"creation"}
    assert await listed(job_id="7", format="YOLO 1.1") == {"job"}
    assert await listed(action="autoannotate") == {"annotate"}
    assert await listed(status="failed") == {"restore"}
    assert await listed(filter='{"in": [{"var": "action"}, ["create", "import"]]}') == {
        "creation", "restore",
    }  # fmt: skip
