"""Outbox and idempotent consumers against real NATS JetStream and PostgreSQL."""

import asyncio
import json
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import nats
import pytest
import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.devstack.servers import Nats, free_port
from tessera.devstack.testing import OpenService, Stack
from tessera.platform.auth import actor_scope
from tessera.platform.bus import ACTOR_HEADER, MSG_ID_HEADER, Event, IdempotentConsumer
from tessera.platform.service import Platform
from tessera.platform.telemetry import REQUEST_ID_HEADER, request_id_scope


async def _wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


async def _unpublished(platform: Platform) -> int:
    table = platform.outbox.table
    async with platform.database.transaction() as session:
        count = await session.scalar(
            sa.select(sa.func.count()).where(table.c.published_at.is_(None))
        )
    return int(count or 0)


async def _read_stream(url: str, token: str, stream: str, subject: str, expected: int) -> list[Msg]:
    connection = await nats.connect(url, token=token)
    try:
        js = connection.jetstream()
        subscription = await js.pull_subscribe(
            subject, stream=stream, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        messages: list[Msg] = []
        while len(messages) < expected:
            messages += await subscription.fetch(expected - len(messages), timeout=10)
        with pytest.raises(nats.errors.TimeoutError):
            await subscription.fetch(1, timeout=0.3)
        return messages
    finally:
        await connection.close()


async def test_event_is_published_after_commit_and_not_on_rollback(
    open_service: OpenService, stack: Stack
) -> None:
    async with open_service("annotations") as svc:
        platform = svc.platform
        with request_id_scope("req-123"):
            async with platform.database.transaction() as session:
                msg_id = await platform.outbox.add(session, "tasks.created", {"task_id": 7})
        with pytest.raises(RuntimeError):
            async with platform.database.transaction() as session:
                await platform.outbox.add(session, "tasks.created", {"task_id": 8})
                raise RuntimeError("the request failed after writing its event")
        await _wait_for(lambda: _is_zero(platform))
        messages = await _read_stream(stack.nats.url, stack.nats.token, "TASKS", "tasks.created", 1)
    assert json.loads(messages[0].data) == {"task_id": 7}
    headers = messages[0].headers or {}
    assert headers[MSG_ID_HEADER] == str(msg_id)
    assert headers[REQUEST_ID_HEADER] == "req-123"


async def test_event_carries_its_actor_in_a_header_not_in_its_data(
    open_service: OpenService, stack: Stack
) -> None:
    """The caller of a request is its events' actor; consumers get it as `Event.actor_id`."""
    async with open_service("annotations") as svc:
        platform = svc.platform
        handled: list[Event] = []

        async def handler(session: AsyncSession, event: Event) -> None:
            handled.append(event)

        consumer = IdempotentConsumer(
            platform.database,
            platform.bus,
            platform.schema,
            stream="TASKS",
            durable="actor-test",
            subject="tasks.>",
            handler=handler,
        )
        consumer.start()
        try:
            async with platform.database.transaction() as session:
                with actor_scope(42):
                    await platform.outbox.add(session, "tasks.created", {"task_id": 7})
                await platform.outbox.add(session, "tasks.deleted", {"task_id": 7})
            # A request's caller becomes the actor of what the request queues.
            response = await svc.client.post(
                "/api/tasks", json={"name": "t", "labels": [{"name": "car"}]}
            )
            assert response.status_code == 201, response.text
            await _wait_for(lambda: _length_is(handled, 3))
        finally:
            await consumer.stop()
        messages = await _read_stream(stack.nats.url, stack.nats.token, "TASKS", "tasks.>", 3)
    assert [(event.subject, event.data, event.actor_id) for event in handled[:2]] == [
        ("tasks.created", {"task_id": 7}, 42),
        ("tasks.deleted", {"task_id": 7}, None),
    ]
    admin_id = 1
    assert (handled[2].data["task_id"], handled[2].actor_id) == (response.json()["id"], admin_id)
    assert all(event.timestamp is not None for event in handled)
    assert (messages[0].headers or {})[ACTOR_HEADER] == "42"
    assert ACTOR_HEADER not in (messages[1].headers or {})


async def _is_zero(platform: Platform) -> bool:
    return await _unpublished(platform) == 0


async def test_event_written_while_nats_is_down_is_published_when_it_is_back(
    open_service: OpenService, tmp_path: Path
) -> None:
    """The outbox keeps the event and the relay publishes it once NATS answers again."""
    state = Path(tmp_path) / "nats"
    server = Nats(state, port=free_port(), token="outage-test").start()
    try:
        async with open_service("annotations", nats_url=server.url, nats_token=server.token) as svc:
            platform = svc.platform
            assert (await svc.anonymous.get("/readyz")).status_code == 200
            server.stop()
            ready = await svc.anonymous.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["nats"] != "ok"

            async with platform.database.transaction() as session:
                await platform.outbox.add(
                    session, "annotations.changed", {"job_id": 1, "version": 2}
                )
            await asyncio.sleep(2.0)
            assert await _unpublished(platform) == 1, "nothing can be published while NATS is down"

            server.start()
            await _wait_for(lambda: _is_zero(platform), timeout=30)
            messages = await _read_stream(
                server.url, server.token, "ANNOTATIONS", "annotations.changed", 1
            )
            assert json.loads(messages[0].data) == {"job_id": 1, "version": 2}
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)


async def test_consumer_handles_each_message_id_once(open_service: OpenService) -> None:
    async with open_service("export") as svc:
        platform = svc.platform
        handled: list[tuple[str, dict[str, object], str | None]] = []

        async def handler(session: AsyncSession, event: Event) -> None:
            handled.append((event.subject, event.data, event.request_id))

        consumer = IdempotentConsumer(
            platform.database,
            platform.bus,
            platform.schema,
            stream="TASKS",
            durable="export-test",
            subject="tasks.>",
            handler=handler,
        )
        consumer.start()
        try:
            js = platform.bus.jetstream
            headers = {MSG_ID_HEADER: "event-1", REQUEST_ID_HEADER: "req-9"}
            await js.publish("tasks.deleted", b'{"task_id": 3}', headers=headers)
            await _wait_for(lambda: _length_is(handled, 1))
            # A redelivery of the same event (same id) after JetStream's duplicate window,
            # or from another stream, must not be handled again.
            await js.publish(
                "tasks.deleted", b'{"task_id": 3}', headers={MSG_ID_HEADER: "event-1", "x": "again"}
            )
            await js.publish("tasks.deleted", b'{"task_id": 4}', headers={MSG_ID_HEADER: "event-2"})
            await _wait_for(lambda: _length_is(handled, 2))
            await asyncio.sleep(0.5)
        finally:
            await consumer.stop()
    assert handled == [
        ("tasks.deleted", {"task_id": 3}, "req-9"),
        ("tasks.deleted", {"task_id": 4}, None),
    ]


async def _length_is(items: Sequence[object], length: int) -> bool:
    return len(items) == length


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.002, 0.003, 0.005, 0.01])
async def test_service_stops_promptly_right_after_writing_an_event(
    open_service: OpenService, delay: float
) -> None:
    """Stopping while the relay publishes must not hang (a swallowed cancellation once did)."""
    async with open_service("annotations") as svc:
        async with svc.platform.database.transaction() as session:
            await svc.platform.outbox.add(session, "tasks.deleted", {"task_id": 1})
        await asyncio.sleep(delay)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5.0
