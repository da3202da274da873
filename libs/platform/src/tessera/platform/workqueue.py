"""Durable work queues of background requests, shared by every replica of a service.

A request that starts background work commits its row (`RequestStore.create`) and its
message (`WorkQueue.enqueue`, through the outbox) in one transaction, so no accepted
request is lost. Each replica runs a `WorkerPool` on the queue's durable JetStream
consumer: at most `workers` requests at once, each message kept in progress (heartbeats)
while the service's `RequestHandler` runs it, and acknowledged once the request is
finished or failed. A pool that stops hands the requests it was running back (nak); a
replica that dies stops confirming them and JetStream redelivers them after the ack
wait. Either way another worker takes the request, has the handler clear what the
earlier attempt left, and runs it again; after `max_deliveries` attempts the request
fails (with the events the service's `failure_events` gives for it). A message whose
request is no longer queued or started (or does not exist) is acknowledged without
running anything, so a redelivery never redoes finished work.

The work runs with the message's request id and actor (the caller who asked for it), so
the events it publishes carry them as the asking request's own events do.

`QueueMetrics` reports the queues' depth (read from the consumers at each scrape) and the
requests each replica runs, in the service's Prometheus registry: the signal an
autoscaler scales the workers on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.platform.auth import actor_scope
from tessera.platform.bus import ACTOR_HEADER, Bus, Outbox, PullLoop
from tessera.platform.requests import OutboxEvents, RequestStore
from tessera.platform.telemetry import REQUEST_ID_HEADER, Metrics, request_id_scope

logger = logging.getLogger(__name__)


class RequestHandler(Protocol):
    """The work behind a queue's requests, implemented by the service."""

    async def run(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Do the request, ending it finished or failed in its `RequestStore`.

        Raising leaves the request to a later attempt; cancelled, the pool is stopping and
        the request goes to another worker.
        """

    async def clear(self, rq_id: str, payload: dict[str, Any]) -> None:
        """Remove what an interrupted attempt left, before the request is run again or
        failed; finish the request instead if that attempt had in fact completed it."""


@dataclass(frozen=True)
class WorkQueue:
    """A queue's JetStream subject, stream and durable consumer, and its timing."""

    stream: str
    subject: str
    durable: str
    ack_wait_s: float = 60.0
    heartbeat_s: float = 15.0
    max_deliveries: int = 3
    retry_delay_s: float = 5.0

    async def enqueue(
        self, session: AsyncSession, outbox: Outbox, rq_id: str, payload: Mapping[str, Any]
    ) -> None:
        """Queue request `rq_id` in `session`'s transaction, the one that records its row.

        The message (published after the commit) is the JSON object `payload` with `rq_id`
        added; the handler gets `payload` back.
        """
        await outbox.add(session, self.subject, {**payload, "rq_id": rq_id})

    def consumer_config(self) -> ConsumerConfig:
        """The durable consumer's settings, as every replica (and `QueueMetrics`) makes it."""
        return ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliveries + 1,
            filter_subject=self.subject,
        )


FailureEvents = Callable[[str, dict[str, Any], str], OutboxEvents]
"""`(rq_id, payload, message)`: the events to publish with a request the pool fails."""


class WorkerPool(PullLoop):
    """This replica's workers of a `WorkQueue`: at most `workers` requests at once.

    A request whose deliveries are spent is failed with the events `failure_events` gives
    for it (none without it).
    """

    def __init__(
        self,
        queue: WorkQueue,
        bus: Bus,
        requests: RequestStore,
        handler: RequestHandler,
        *,
        workers: int,
        failure_events: FailureEvents | None = None,
    ) -> None:
        super().__init__()
        self.queue = queue
        self.bus = bus
        self.requests = requests
        self.handler = handler
        self.workers = workers
        self.failure_events = failure_events
        self.stream, self.subject, self.durable = queue.stream, queue.subject, queue.durable
        self.task_name = f"workers-{queue.durable}"
        self.consumer_config = queue.consumer_config()
        self._working: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> int:
        """Requests this pool is running now."""
        return len(self._working)

    async def stop(self) -> None:
        """Stop pulling, and hand the requests still running back to the queue."""
        await super().stop()
        for task in list(self._working):
            task.cancel()
        if self._working:
            await asyncio.wait(set(self._working))

    async def _pull(self, subscription: JetStreamContext.PullSubscription) -> None:
        while self.running:
            free = self.workers - len(self._working)
            if free <= 0:
                await asyncio.wait(set(self._working), return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = await subscription.fetch(free, timeout=1.0)
            except TimeoutError:
                continue
            for msg in messages:
                task = asyncio.create_task(self._work(msg), name=f"{self.task_name}-work")
                self._working.add(task)
                task.add_done_callback(self._working.discard)

    async def _work(self, msg: Msg) -> None:
        payload = orjson.loads(msg.data)
        rq_id = str(payload.pop("rq_id"))
        headers = msg.headers or {}
        actor = headers.get(ACTOR_HEADER, "")
        heartbeat = asyncio.create_task(self._keep_in_progress(msg))
        try:
            with (
                request_id_scope(headers.get(REQUEST_ID_HEADER)),
                actor_scope(int(actor) if actor.isdigit() else None),
            ):
                await self._attempt(rq_id, payload, msg.metadata.num_delivered)
            await msg.ack()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nak())
            raise
        except Exception:
            logger.exception("request %s could not be run; it goes back to the queue", rq_id)
            with contextlib.suppress(Exception):
                await msg.nak(delay=self.queue.retry_delay_s)
        finally:
            heartbeat.cancel()

    async def _attempt(self, rq_id: str, payload: dict[str, Any], attempt: int) -> None:
        """Run the request unless it has ended, clearing first what earlier attempts left."""
        if attempt > 1 and await self._open(rq_id):
            logger.warning("request %s was interrupted; attempt %d", rq_id, attempt)
            await self.handler.clear(rq_id, payload)
        if not await self._open(rq_id):
            return
        if attempt > self.queue.max_deliveries:
            message = (
                f"The request was interrupted {attempt - 1} times (its workers stopped, died "
                "or failed); send it again."
            )
            events = self.failure_events(rq_id, payload, message) if self.failure_events else ()
            await self.requests.fail(rq_id, message, events=events)
            return
        await self.handler.run(rq_id, payload)
        if await self._open(rq_id):
            raise RuntimeError(f"the handler of {self.durable} left request {rq_id} unfinished")

    async def _open(self, rq_id: str) -> bool:
        return await self.requests.status(rq_id) in ("queued", "started")

    async def _keep_in_progress(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(self.queue.heartbeat_s)
            with contextlib.suppress(Exception):
                await msg.in_progress()


class QueueMetrics:
    """Prometheus gauges of a service's work queues, the scaling signal of its workers.

    Read from each queue's durable consumer at every scrape (`Metrics.on_scrape`), so every
    replica reports the same fleet-wide values (take their `max`, not their `sum`):

    - `tessera_workqueue_pending_messages{stream, consumer}`: requests queued that no
      worker has taken yet (the consumer's `num_pending`);
    - `tessera_workqueue_ack_pending_messages{stream, consumer}`: requests a worker took
      and has not acknowledged yet: running, or handed back and waiting for their retry
      (`num_ack_pending`);

    and per replica, for the pools it runs (sum them over the replicas):

    - `tessera_workqueue_running_requests{stream, consumer}`: requests its workers run now;
    - `tessera_workqueue_workers{stream, consumer}`: how many it may run at once.

    A consumer that does not exist yet (no worker has started since the stream was made)
    is created, with the queue's own settings, so that the depth is there to read (here
    and for an autoscaler that reads the consumer) before any worker runs; its messages
    are all delivered once workers start. When NATS does not answer, the two depth series
    are left out of the scrape rather than reported stale.
    """

    def __init__(self, metrics: Metrics, bus: Bus, *, timeout_s: float = 1.0) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self.queues: dict[tuple[str, str], WorkQueue] = {}
        labels = ["stream", "consumer"]
        registry = metrics.registry
        self.pending = Gauge(
            "tessera_workqueue_pending_messages",
            "Requests queued that no worker has taken yet (the consumer's num_pending)",
            labels,
            registry=registry,
        )
        self.ack_pending = Gauge(
            "tessera_workqueue_ack_pending_messages",
            "Requests taken by a worker and not acknowledged yet (num_ack_pending)",
            labels,
            registry=registry,
        )
        self.running = Gauge(
            "tessera_workqueue_running_requests",
            "Requests this replica's workers run now",
            labels,
            registry=registry,
        )
        self.workers = Gauge(
            "tessera_workqueue_workers",
            "Requests this replica's workers may run at once",
            labels,
            registry=registry,
        )
        metrics.on_scrape(self.refresh)

    def watch(self, queue: WorkQueue, pool: WorkerPool | None = None) -> None:
        """Report `queue`'s depth, and `pool`'s running requests when this replica runs one."""
        key = (queue.stream, queue.durable)
        self.queues[key] = queue
        if pool is not None:
            self.running.labels(*key).set_function(lambda: pool.busy)
            self.workers.labels(*key).set(pool.workers)

    async def refresh(self) -> None:
        """Read every watched queue's consumer."""
        await asyncio.gather(*(self._read(queue) for queue in self.queues.values()))

    async def _read(self, queue: WorkQueue) -> None:
        key = (queue.stream, queue.durable)
        try:
            js = self.bus.jetstream
            try:
                info = await js.consumer_info(queue.stream, queue.durable, timeout=self.timeout_s)
            except NotFoundError:
                info = await js.add_consumer(
                    queue.stream, queue.consumer_config(), timeout=self.timeout_s
                )
        except Exception as exc:
            logger.warning("queue %s/%s: no consumer info (%s)", *key, exc)
            for gauge in (self.pending, self.ack_pending):
                with contextlib.suppress(KeyError):
                    gauge.remove(*key)
            return
        self.pending.labels(*key).set(info.num_pending or 0)
        self.ack_pending.labels(*key).set(info.num_ack_pending or 0)
