"""A work queue of requests against real NATS JetStream and PostgreSQL: each request runs
once, a stopping or dead replica's request is redone by another, and a request fails once
its deliveries are spent."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tessera.devstack.testing import Stack
from tessera.platform.auth import actor_scope
from tessera.platform.bus import ACTOR_KEY, Bus, Outbox, outbox_table
from tessera.platform.db import Database
from tessera.platform.requests import Operation, OutboxEvents, RequestStore, requests_table
from tessera.platform.telemetry import Metrics
from tessera.platform.workqueue import FailureEvents, QueueMetrics, WorkerPool, WorkQueue

SCHEMA = "workqueue_test"
STREAMS = {"WORKQUEUE_TEST": ("workqueue.>",)}
QUEUE = WorkQueue(
    stream="WORKQUEUE_TEST", subject="workqueue.test.requested", durable="workqueue-test",
    ack_wait_s=1.0, heartbeat_s=0.25, max_deliveries=3, retry_delay_s=0.1,
)  # fmt: skip


class Handler:
    """Records what it is asked; finishes a request (`result_id` = the payload's `n`)
    after `work_s`, or raises (`fail`), or holds it until `release` is set."""

    def __init__(self, requests: RequestStore, *, work_s: float = 0.0, fail: bool = False):
        self.requests = requests
        self.work_s = work_s
        self.fail = fail
        self.hold = False
        self.release = asyncio.Event()
        self.calls: list[tuple[str, str]] = []
        self.running = 0
        self.most_running = 0

    async def run(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Record the run, then finish, raise or hold as told."""
        self.calls.append(("run", rq_id))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.work_s)
            if self.fail:
                raise RuntimeError("the work broke")
            if self.hold:
                await self.release.wait()
            await self.requests.finish(rq_id, result_id=payload["n"])
        except asyncio.CancelledError:
            self.calls.append(("cancelled", rq_id))
            raise
        finally:
            self.running -= 1

    async def clear(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Record the clearing."""
        self.calls.append(("clear", rq_id))


@dataclasses.dataclass
class Env:
    """A request store and outbox on a schema of their own, and replicas on demand."""

    stack: Stack
    database: Database
    bus: Bus
    outbox: Outbox
    requests: RequestStore

    async def submit(self, n: int, queue: WorkQueue = QUEUE) -> str:
        """Record a request and queue it in one transaction; its id."""
        async with self.database.transaction() as session:
            rq_id = await self.requests.create(
                session, Operation(type="test:work", target="task", task_id=n),
                owner_id=1, organization_id=None,
            )  # fmt: skip
            await queue.enqueue(session, self.outbox, rq_id, {"n": n})
        return rq_id

    @contextlib.asynccontextmanager
    async def replica(
        self,
        handler: Handler,
        queue: WorkQueue = QUEUE,
        workers: int = 2,
        failure_events: FailureEvents | None = None,
    ) -> AsyncIterator[WorkerPool]:
        """A replica's worker pool on a NATS connection of its own."""
        bus = Bus(self.stack.nats.url, token=self.stack.nats.token, name="replica")
        await bus.start(streams=STREAMS)
        pool = WorkerPool(
            queue, bus, self.requests, handler, workers=workers, failure_events=failure_events
        )
        pool.start()
        try:
            yield pool
        finally:
            await pool.stop()
            await bus.close()

    async def request(self, rq_id: str) -> sa.Row[Any]:
        """The request's row."""
        async with self.database.transaction() as session:
            table = self.requests.table
            return (await session.execute(sa.select(table).where(table.c.id == rq_id))).one()

    async def ended(self, *rq_ids: str) -> bool:
        """Whether the requests are finished or failed."""
        statuses = [await self.requests.status(rq_id) for rq_id in rq_ids]
        return all(status in ("finished", "failed") for status in statuses)

    async def drained(self, queue: WorkQueue = QUEUE) -> bool:
        """Whether every message queued was published, delivered and acknowledged."""
        async with self.database.transaction() as session:
            table = self.outbox.table
            unpublished = await session.scalar(
                sa.select(sa.func.count()).where(table.c.published_at.is_(None))
            )
        if unpublished:
            return False
        info = await self.bus.jetstream.consumer_info(queue.stream, queue.durable)
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)


@pytest.fixture
async def env(stack: Stack, database_url: str) -> AsyncIterator[Env]:
    """The tables of requests and the outbox in their own schema, and a bus to relay on."""
    database = Database(database_url, pool_size=5)
    metadata = sa.MetaData()
    requests_table(metadata, SCHEMA)
    outbox_table(metadata, SCHEMA)
    async with database.transaction() as session:
        await session.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
        await session.run_sync(lambda sync: metadata.create_all(sync.connection()))
    bus = Bus(stack.nats.url, token=stack.nats.token)
    await bus.start(streams=STREAMS)
    outbox = Outbox(database, bus, SCHEMA, poll_interval=0.1)
    outbox.start()
    try:
        yield Env(stack, database, bus, outbox, RequestStore(database, outbox, "workqueue", SCHEMA))
    finally:
        await outbox.stop()
        for stream in STREAMS:
            await bus.jetstream.delete_stream(stream)
        await bus.close()
        await database.dispose()


async def _eventually(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 20.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        met = condition()
        if met if isinstance(met, bool) else await met:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


async def test_a_request_runs_once_and_finishes_even_past_the_ack_wait(env: Env) -> None:
    """Heartbeats keep a request from a second replica while it runs longer than the ack
    wait; a message whose request has ended, or does not exist, is acknowledged unrun."""
    handler = Handler(env.requests, work_s=QUEUE.ack_wait_s * 2)
    async with env.replica(handler), env.replica(handler):
        rq_id = await env.submit(7)
        await _eventually(lambda: env.ended(rq_id))
        async with env.database.transaction() as session:
            await QUEUE.enqueue(session, env.outbox, rq_id, {"n": 7})
            await QUEUE.enqueue(session, env.outbox, "workqueue-no-such-request", {"n": 8})
        await _eventually(env.drained)
    request = await env.request(rq_id)
    assert (request.status, request.result_id, request.progress) == ("finished", 7, 1.0)
    assert handler.calls == [("run", rq_id)]


async def test_a_replica_runs_at_most_its_workers_at_once(env: Env) -> None:
    handler = Handler(env.requests)
    handler.hold = True
    async with env.replica(handler, workers=2):
        rq_ids = [await env.submit(n) for n in range(3)]
        await _eventually(lambda: handler.running == 2)
        await asyncio.sleep(QUEUE.ack_wait_s)
        assert handler.running == 2
        handler.release.set()
        await _eventually(lambda: env.ended(*rq_ids))
    assert handler.most_running == 2
    assert sorted(rq_id for _, rq_id in handler.calls) == sorted(rq_ids)
    assert [(await env.request(rq_id)).status for rq_id in rq_ids] == ["finished"] * 3


async def test_a_handler_that_raises_fails_the_request_after_max_deliveries(env: Env) -> None:
    handler = Handler(env.requests, fail=True)
    async with env.replica(handler):
        rq_id = await env.submit(1)
        await _eventually(lambda: env.ended(rq_id))
        await _eventually(env.drained)
    request = await env.request(rq_id)
    assert request.status == "failed"
    assert request.message == (
        "The request was interrupted 3 times (its workers stopped, died or failed); send it again."
    )
    assert handler.calls == [("run", rq_id), ("clear", rq_id)] * 3


async def test_a_request_failed_by_the_pool_publishes_the_service_s_failure_events(
    env: Env,
) -> None:
    """With the actor of the request that queued it, as the handler's own events."""

    def failure_events(rq_id: str, payload: dict[str, Any], message: str) -> OutboxEvents:
        return [("workqueue.test.ended", {"rq_id": rq_id, "n": payload["n"], "why": message})]

    async with env.replica(Handler(env.requests, fail=True), failure_events=failure_events):
        with actor_scope(42):
            rq_id = await env.submit(6)
        await _eventually(lambda: env.ended(rq_id))
        await _eventually(env.drained)
    async with env.database.transaction() as session:
        table = env.outbox.table
        rows = (await session.execute(sa.select(table.c.subject, table.c.payload))).all()
    ended = [payload for subject, payload in rows if subject == "workqueue.test.ended"]
    message = (await env.request(rq_id)).message
    assert ended == [{"rq_id": rq_id, "n": 6, "why": message, ACTOR_KEY: 42}]
    updated = [payload for subject, payload in rows if subject == "workqueue.requests.updated"]
    assert [(payload["status"], payload.get(ACTOR_KEY)) for payload in updated][-1] == (
        "failed",
        42,
    )  # the pool's own update, by the request's actor too


async def test_a_stopping_replica_hands_its_request_to_another(env: Env) -> None:
    """Handed back at once (nak), long before the ack wait would give it away."""
    queue = dataclasses.replace(QUEUE, ack_wait_s=60.0)
    first, second = Handler(env.requests), Handler(env.requests)
    first.hold = True
    async with env.replica(first, queue):
        rq_id = await env.submit(3, queue)
        await _eventually(lambda: first.running == 1)
    async with env.replica(second, queue):
        await _eventually(lambda: env.ended(rq_id), timeout=queue.ack_wait_s / 2)
        await _eventually(lambda: env.drained(queue))
    assert (await env.request(rq_id)).status == "finished"
    assert first.calls == [("run", rq_id), ("cancelled", rq_id)]
    assert second.calls == [("clear", rq_id), ("run", rq_id)]


async def test_a_dead_replica_s_request_is_redone_after_the_ack_wait(env: Env) -> None:
    first, second = Handler(env.requests), Handler(env.requests)
    first.hold = True
    async with env.replica(first) as dying:
        rq_id = await env.submit(4)
        await _eventually(lambda: first.running == 1)
        await dying.bus.client.close()  # no nak, no more heartbeats: as if it died
        async with env.replica(second):
            await _eventually(lambda: env.ended(rq_id))
            await _eventually(env.drained)
        assert first.calls == [("run", rq_id)]
    assert second.calls == [("clear", rq_id), ("run", rq_id)]
    assert (await env.request(rq_id)).result_id == 4


async def test_a_request_interrupted_max_deliveries_times_fails_without_another_run(
    env: Env,
) -> None:
    queue = dataclasses.replace(QUEUE, max_deliveries=2)
    first, second, third = Handler(env.requests), Handler(env.requests), Handler(env.requests)
    rq_id = await env.submit(5, queue)

    async def interrupt(handler: Handler) -> None:
        handler.hold = True
        async with env.replica(handler, queue):
            await _eventually(lambda: handler.running == 1)

    await interrupt(first)
    await interrupt(second)
    async with env.replica(third, queue):
        await _eventually(lambda: env.ended(rq_id))
        await _eventually(lambda: env.drained(queue))
    request = await env.request(rq_id)
    assert request.status == "failed"
    assert request.message.startswith("The request was interrupted 2 times")
    assert second.calls == [("clear", rq_id), ("run", rq_id), ("cancelled", rq_id)]
    assert third.calls == [("clear", rq_id)]


def _gauges(metrics: Metrics, queue: WorkQueue = QUEUE) -> dict[str, float]:
    """The queue's `tessera_workqueue_*` samples by name, as `/metrics` exposes them."""
    labels = f'{{consumer="{queue.durable}",stream="{queue.stream}"}} '
    text = bytes(metrics.render().body).decode()
    return {
        line.split("{", 1)[0].removeprefix("tessera_workqueue_"): float(line.split(" ")[-1])
        for line in text.splitlines()
        if line.startswith("tessera_workqueue_") and labels in line
    }


async def test_queue_metrics_report_the_depth_and_the_running_requests(env: Env) -> None:
    """Requests queued with no worker anywhere are pending on the consumer (made by the
    metrics if no worker made it yet); a replica's workers take them and report them."""
    metrics = Metrics("workqueue")
    bus = Bus(env.stack.nats.url, token=env.stack.nats.token, name="metrics")
    await bus.start(streams=STREAMS)
    queue_metrics = QueueMetrics(metrics, bus)
    queue_metrics.watch(QUEUE)
    rq_ids = [await env.submit(n) for n in range(3)]

    async def pending(wanted: dict[str, float]) -> bool:
        await metrics.refresh()
        return _gauges(metrics) == wanted

    await _eventually(lambda: pending({"pending_messages": 3, "ack_pending_messages": 0}))

    handler = Handler(env.requests)
    handler.hold = True
    async with env.replica(handler, workers=2) as pool:
        queue_metrics.watch(QUEUE, pool)
        await _eventually(lambda: handler.running == 2)
        await _eventually(lambda: pending({
            "pending_messages": 1, "ack_pending_messages": 2,
            "running_requests": 2, "workers": 2,
        }))  # fmt: skip
        handler.release.set()
        await _eventually(lambda: env.ended(*rq_ids))
        await _eventually(lambda: pending({
            "pending_messages": 0, "ack_pending_messages": 0,
            "running_requests": 0, "workers": 2,
        }))  # fmt: skip

    # NATS gone: the depth is left out rather than reported stale.
    await bus.close()
    await metrics.refresh()
    assert "pending_messages" not in _gauges(metrics)
