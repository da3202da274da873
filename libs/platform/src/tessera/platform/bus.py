"""NATS JetStream: streams, a transactional outbox, and idempotent consumers.

Events are never published from inside a request. `Outbox.add` writes the event into
the service's `outbox` table in the caller's transaction; after the commit the relay
publishes it to JetStream with `Nats-Msg-Id` set to the event id (so JetStream drops a
re-publish within its duplicate window) and marks it published once JetStream acks.
While NATS is unreachable the rows wait, and the relay retries with backoff.

Every event carries its actor: `Outbox.add` records `current_actor_id()` (the caller
of the request that queued it) under the reserved payload key `ACTOR_KEY`, and the relay
moves it into the `Tessera-Actor` header, so consumers see it as `Event.actor_id` and
never in `Event.data`.

`IdempotentConsumer` records every handled message id in the service's `inbox` table
in the same transaction as the handler's own writes, so a redelivered message is
acknowledged without being handled twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import nats
import orjson
import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StorageType, StreamConfig, StreamInfo
from nats.js.errors import APIError, NotFoundError
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.platform.auth import actor_scope, current_actor_id
from tessera.platform.db import Database
from tessera.platform.telemetry import REQUEST_ID_HEADER, current_request_id, request_id_scope

logger = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
ACTOR_HEADER = "Tessera-Actor"
# Where an outbox row keeps the actor until the relay moves it into ACTOR_HEADER.
ACTOR_KEY = "__actor_id"

# Every stream of the fleet, declared (idempotently) by every service at start, so no
# service depends on another having started first.
STREAMS: Mapping[str, tuple[str, ...]] = {
    "TASKS": ("tasks.>",),
    "JOBS": ("jobs.>",),
    "ANNOTATIONS": ("annotations.>",),
    "LABELS": ("labels.>",),
    "MEMBERSHIPS": ("memberships.>",),
    "INGEST": ("ingest.>",),
    "EXPORT": ("export.>",),
    "INFERENCE": ("inference.>",),
}
DUPLICATE_WINDOW_S = 600.0
# JetStream's answers when a stream cannot have the replicas asked for: more than one on a
# server that is not clustered (10074); fewer JetStream servers than replicas (10005).
REPLICAS_REFUSED = frozenset({10074, 10005})


class StreamReplicasError(RuntimeError):
    """JetStream cannot keep a stream on the configured number of replicas.

    A configuration error (`TESSERA_NATS_STREAM_REPLICAS` against the NATS cluster's size),
    not an outage: the bus does not retry it.
    """


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task and wait until it has stopped."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class BackgroundLoop(ABC):
    """A task that loops until `stop()`.

    Stopping sets a flag and wakes the loop as well as cancelling it: on Python 3.11,
    `asyncio.wait_for` (which nats-py uses inside its requests) can swallow a
    cancellation that arrives as its future completes, and a loop relying on the
    cancellation alone would then run on and make `stop()` wait forever.
    """

    task_name = "background-loop"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()

    @property
    def running(self) -> bool:
        """False once `stop()` was called."""
        return not self._stopping

    def start(self) -> None:
        """Start the loop in the background."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """Stop the loop and wait for it to end."""
        self._stopping = True
        self._wake.set()
        await cancel_and_wait(self._task)

    @abstractmethod
    async def _run(self) -> None:
        """The loop; it ends when `running` turns False."""


@dataclass(frozen=True)
class Event:
    """An event as consumers see it: `actor_id` is the user it was done for (if any),
    `timestamp` when JetStream stored it."""

    msg_id: str
    subject: str
    data: dict[str, Any]
    request_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    actor_id: int | None = None
    timestamp: datetime | None = None


class Bus:
    """One NATS connection per service process, reconnecting for as long as it lives.

    Its streams are declared with `stream_replicas` replicas each.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        name: str = "tessera",
        stream_replicas: int = 1,
    ) -> None:
        self.url = url
        self.token = token
        self.name = name
        self.stream_replicas = stream_replicas
        self._nc: NatsClient | None = None
        self._connected = asyncio.Event()
        self._connector: asyncio.Task[None] | None = None
        self._closing = False
        # Set once JetStream took the streams or refused their replicas (`_refused`).
        self._answered = asyncio.Event()
        self._refused: StreamReplicasError | None = None

    async def start(
        self, *, streams: Mapping[str, tuple[str, ...]] = STREAMS, wait: float = 5.0
    ) -> None:
        """Connect (in the background if NATS is not up yet) and declare `streams`.

        Raises `StreamReplicasError` when JetStream refuses the streams' replicas within
        `wait`. Refused later, the bus keeps trying (the cluster may be growing) and
        `ping` raises the refusal meanwhile.
        """
        self._connector = asyncio.create_task(self._connect_forever(streams), name="nats-connect")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._answered.wait()
        if self._refused is not None:
            raise self._refused

    async def _connect_forever(self, streams: Mapping[str, tuple[str, ...]]) -> None:
        delay = 0.2
        while True:
            try:
                self._nc = await nats.connect(
                    servers=[self.url],
                    token=self.token,
                    name=self.name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    allow_reconnect=True,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
                await declare_streams(self._nc.jetstream(), streams, replicas=self.stream_replicas)
                self._refused = None
                self._connected.set()
                self._answered.set()
                return
            except StreamReplicasError as exc:
                logger.error("%s", exc)
                self._refused = exc
                self._answered.set()
            except Exception as exc:
                logger.warning("NATS at %s not reachable yet (%s); retrying", self.url, exc)
            await self._drop_connection()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _drop_connection(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    async def _on_error(self, error: Exception) -> None:
        logger.warning("NATS connection error: %s", error or type(error).__name__)

    async def _on_disconnected(self) -> None:
        if self._closing:
            return
        logger.warning("disconnected from NATS at %s; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        logger.info("reconnected to NATS at %s", self.url)

    @property
    def client(self) -> NatsClient:
        """The live connection; raises until the first connect succeeded."""
        if self._nc is None or not self._connected.is_set():
            raise ConnectionError(f"NATS at {self.url} is not connected")
        return self._nc

    @property
    def jetstream(self) -> JetStreamContext:
        """JetStream context on the live connection."""
        return self.client.jetstream()

    async def ping(self) -> None:
        """Raise unless NATS and JetStream answer (and kept the streams' replicas)."""
        if self._refused is not None:
            raise self._refused
        if self._nc is None or not self._nc.is_connected:
            raise ConnectionError(f"NATS at {self.url} is not connected")
        await self._nc.flush(timeout=2)
        await self.jetstream.account_info()

    async def publish(
        self,
        subject: str,
        data: Mapping[str, Any],
        *,
        msg_id: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Publish one event to JetStream and wait for its ack (with the current request id
        and actor in its headers)."""
        headers = {MSG_ID_HEADER: msg_id or uuid.uuid4().hex}
        request_id = current_request_id()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        actor_id = current_actor_id()
        if actor_id is not None:
            headers[ACTOR_HEADER] = str(actor_id)
        await self.jetstream.publish(subject, orjson.dumps(data), headers=headers, timeout=timeout)

    async def close(self) -> None:
        """Stop reconnecting and close the connection."""
        self._closing = True
        await cancel_and_wait(self._connector)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None


async def declare_streams(
    js: JetStreamContext, streams: Mapping[str, tuple[str, ...]], *, replicas: int = 1
) -> None:
    """Create or update each stream with file storage, a duplicate window and `replicas`.

    An existing stream is updated to this configuration, its replica count included
    (JetStream moves a stream between 1 and N replicas in place). Raises
    `StreamReplicasError` when JetStream cannot keep `replicas` copies.
    """
    for name, subjects in streams.items():
        config = StreamConfig(
            name=name,
            subjects=list(subjects),
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
        )
        try:
            info = await _create_or_update(js, name, config)
        except APIError as exc:
            if exc.err_code not in REPLICAS_REFUSED:
                raise
            raise StreamReplicasError(
                f"JetStream refused stream {name} on {replicas} replicas ({exc.description}): "
                f"TESSERA_NATS_STREAM_REPLICAS={replicas} exceeds the JetStream servers of "
                "the NATS cluster"
            ) from exc
        # Never run on fewer copies than asked for without saying so.
        if info.config.num_replicas != replicas:
            raise StreamReplicasError(
                f"JetStream keeps stream {name} on {info.config.num_replicas} replicas, not "
                f"the {replicas} of TESSERA_NATS_STREAM_REPLICAS"
            )


async def _create_or_update(js: JetStreamContext, name: str, config: StreamConfig) -> StreamInfo:
    try:
        await js.stream_info(name)
    except NotFoundError:
        return await js.add_stream(config)
    return await js.update_stream(config)


def outbox_table(metadata: sa.MetaData, schema: str) -> sa.Table:
    """The `outbox` table of a service's schema."""
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("msg_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Index("outbox_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")),
        schema=schema,
    )


def inbox_table(metadata: sa.MetaData, schema: str) -> sa.Table:
    """The `inbox` table of a service's schema: message ids already handled per consumer."""
    return sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("msg_id", sa.Text, primary_key=True),
        sa.Column(
            "handled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=schema,
    )


def create_messaging_tables(op: Any, schema: str) -> None:
    """Create `outbox` and `inbox` in a service's first migration.

    This is a migration, so it is frozen: it spells out the tables as they were first
    created. A later change to `outbox_table` or `inbox_table` needs a migration of its
    own in every service.
    """
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("msg_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        schema=schema,
    )
    op.create_index(
        "outbox_unpublished",
        "outbox",
        ["id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("msg_id", sa.Text, primary_key=True),
        sa.Column(
            "handled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=schema,
    )


class Outbox(BackgroundLoop):
    """Writes events in the caller's transaction and relays them to JetStream after commit."""

    task_name = "outbox-relay"

    def __init__(
        self,
        database: Database,
        bus: Bus,
        schema: str,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.database = database
        self.bus = bus
        self.table = outbox_table(sa.MetaData(), schema)
        self.batch_size = batch_size
        self.poll_interval = poll_interval

    async def add(self, session: AsyncSession, subject: str, data: Mapping[str, Any]) -> uuid.UUID:
        """Queue an event in `session`'s transaction; it is published after the commit.

        The current actor (`current_actor_id`) is recorded with it.
        """
        msg_id = uuid.uuid4()
        payload = dict(data)
        actor_id = current_actor_id()
        if actor_id is not None:
            payload[ACTOR_KEY] = actor_id
        await session.execute(
            sa.insert(self.table).values(
                msg_id=msg_id, subject=subject, payload=payload, request_id=current_request_id()
            )
        )
        sync_session = session.sync_session
        if not sync_session.info.get("outbox_wakeup"):
            sync_session.info["outbox_wakeup"] = True

            def wake_relay(committed: Any) -> None:
                committed.info.pop("outbox_wakeup", None)
                self._wake.set()

            sa_event.listen(sync_session, "after_commit", wake_relay, once=True)
        return msg_id

    async def _run(self) -> None:
        backoff = self.poll_interval
        while self.running:
            try:
                published, remaining = await self.relay_once()
                backoff = self.poll_interval
                if remaining:
                    continue
                if published == 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_interval):
                            await self._wake.wait()
                self._wake.clear()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("outbox relay failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def relay_once(self) -> tuple[int, bool]:
        """Publish one batch of pending events; returns (published, more_waiting)."""
        table = self.table
        async with self.database.transaction() as session:
            rows = (
                await session.execute(
                    sa.select(
                        table.c.id,
                        table.c.msg_id,
                        table.c.subject,
                        table.c.payload,
                        table.c.request_id,
                    )
                    .where(table.c.published_at.is_(None))
                    .order_by(table.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            published: list[int] = []
            failure: Exception | None = None
            for row in rows:
                payload = dict(row.payload)
                actor_id = payload.pop(ACTOR_KEY, None)
                try:
                    with request_id_scope(row.request_id), actor_scope(actor_id):
                        await self.bus.publish(row.subject, payload, msg_id=str(row.msg_id))
                except Exception as exc:
                    failure = exc
                    await session.execute(
                        sa.update(table)
                        .where(table.c.id == row.id)
                        .values(attempts=table.c.attempts + 1, last_error=str(exc)[:500])
                    )
                    break
                published.append(row.id)
            if published:
                await session.execute(
                    sa.update(table)
                    .where(table.c.id.in_(published))
                    .values(published_at=sa.func.now(), attempts=table.c.attempts + 1)
                )
        if failure is not None:
            raise failure
        return len(published), len(rows) == self.batch_size


Handler = Callable[[AsyncSession, Event], Awaitable[None]]


class PullLoop(BackgroundLoop):
    """A loop over a durable JetStream pull subscription, subscribing again after a failure.

    Subclasses set `bus`, `subject`, `durable`, `stream` (and `consumer_config` to create
    the consumer with settings of its own) and implement `_pull`.
    """

    bus: Bus
    subject: str
    durable: str
    stream: str
    consumer_config: ConsumerConfig | None = None

    @abstractmethod
    async def _pull(self, subscription: JetStreamContext.PullSubscription) -> None:
        """Fetch and handle messages while `running`."""

    async def _run(self) -> None:
        while self.running:
            try:
                subscription = await self.bus.jetstream.pull_subscribe(
                    self.subject, durable=self.durable, stream=self.stream,
                    config=self.consumer_config,
                )  # fmt: skip
                try:
                    await self._pull(subscription)
                finally:
                    # A fetch cut short leaves replies in the subscription's queue, which
                    # would hold up draining the connection until its timeout.
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "consumer %s lost its subscription (%s); retrying", self.durable, exc
                )
                await asyncio.sleep(1.0)


class IdempotentConsumer(PullLoop):
    """A durable JetStream pull consumer whose handler runs once per message id."""

    def __init__(
        self,
        database: Database,
        bus: Bus,
        schema: str,
        *,
        stream: str,
        durable: str,
        subject: str,
        handler: Handler,
        batch: int = 50,
        redeliver_delay: float = 2.0,
    ) -> None:
        super().__init__()
        self.database = database
        self.bus = bus
        self.inbox = inbox_table(sa.MetaData(), schema)
        self.stream = stream
        self.durable = durable
        self.subject = subject
        self.handler = handler
        self.batch = batch
        self.redeliver_delay = redeliver_delay
        self.task_name = f"consumer-{durable}"

    async def handle(self, msg: Msg) -> bool:
        """Handle one message; returns False when it had been handled before."""
        headers = msg.headers or {}
        msg_id = (
            headers.get(MSG_ID_HEADER) or f"{msg.metadata.stream}:{msg.metadata.sequence.stream}"
        )
        actor = headers.get(ACTOR_HEADER, "")
        event = Event(
            msg_id=msg_id,
            subject=msg.subject,
            data=orjson.loads(msg.data) if msg.data else {},
            request_id=headers.get(REQUEST_ID_HEADER),
            headers=headers,
            actor_id=int(actor) if actor.isdigit() else None,
            timestamp=msg.metadata.timestamp,
        )
        with request_id_scope(event.request_id), actor_scope(event.actor_id):
            async with self.database.transaction() as session:
                first_time = (
                    await session.execute(
                        insert(self.inbox)
                        .values(consumer=self.durable, msg_id=msg_id)
                        .on_conflict_do_nothing()
                        .returning(self.inbox.c.msg_id)
                    )
                ).first() is not None
                if first_time:
                    await self.handler(session, event)
        return first_time

    async def _pull(self, subscription: JetStreamContext.PullSubscription) -> None:
        while self.running:
            try:
                messages = await subscription.fetch(self.batch, timeout=1.0)
            except TimeoutError:
                continue
            for msg in messages:
                try:
                    await self.handle(msg)
                except Exception:
                    logger.exception("handler of %s failed on %s", self.durable, msg.subject)
                    await msg.nak(delay=self.redeliver_delay)
                else:
                    await msg.ack()
