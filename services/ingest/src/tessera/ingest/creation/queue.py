"""Task creation as a JetStream work queue shared by every ingest replica.

A data request commits its request row and a `ingest.creation.requested` message in one
transaction (the outbox relays the message after the commit), so no accepted request is
lost. Each replica pulls from one durable consumer and runs at most `creation_workers`
creations at once; while one runs, its message is kept in progress, and it is
acknowledged when the request has finished or failed. A replica that stops hands its
unfinished creations back (nak), and one that dies stops confirming them: either way
JetStream gives them to another replica, which clears what the first left and starts
again. After MAX_DELIVERIES tries the request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.creation.runner import CreationRunner
from tessera.ingest.task_data.service import CreationPlan
from tessera.platform.bus import Bus, Outbox, PullLoop

logger = logging.getLogger(__name__)

STREAM = "INGEST"
SUBJECT = "ingest.creation.requested"
DURABLE = "ingest-creation"
ACK_WAIT_S = 60.0
HEARTBEAT_S = 15.0
MAX_DELIVERIES = 3


async def enqueue(session: AsyncSession, outbox: Outbox, rq_id: str, plan: CreationPlan) -> None:
    """Queue a creation in `session`'s transaction (published after the commit)."""
    await outbox.add(session, SUBJECT, {"rq_id": rq_id, "plan": plan.to_json()})


class CreationQueue(PullLoop):
    """This replica's workers of the creation queue."""

    task_name = "creation-queue"
    subject = SUBJECT
    durable = DURABLE
    stream = STREAM
    consumer_config = ConsumerConfig(
        durable_name=DURABLE,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_deliver=MAX_DELIVERIES + 1,
        filter_subject=SUBJECT,
    )

    def __init__(self, bus: Bus, runner: CreationRunner, *, workers: int) -> None:
        super().__init__()
        self.bus = bus
        self.runner = runner
        self.workers = workers
        self._working: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        """Stop pulling, and hand the creations still running back to the queue."""
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
                task = asyncio.create_task(self._work(msg), name=f"creation-{msg.subject}")
                self._working.add(task)
                task.add_done_callback(self._working.discard)

    async def _work(self, msg: Msg) -> None:
        body = orjson.loads(msg.data)
        rq_id = str(body["rq_id"])
        heartbeat = asyncio.create_task(self._keep_in_progress(msg))
        try:
            status = await self.runner.requests.status(rq_id)
            if status in (None, "finished", "failed"):
                await msg.ack()
                return
            plan = CreationPlan.from_json(body["plan"])
            tries = msg.metadata.num_delivered
            if tries > MAX_DELIVERIES:
                await self.runner.give_up(rq_id, plan, tries - 1)
            elif tries > 1:
                await self.runner.resume(rq_id, plan)
            else:
                await self.runner.run(rq_id, plan)
            await msg.ack()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nak())
            raise
        except Exception:
            logger.exception("creation %s could not be run; it goes back to the queue", rq_id)
            with contextlib.suppress(Exception):
                await msg.nak(delay=5.0)
        finally:
            heartbeat.cancel()

    async def _keep_in_progress(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            with contextlib.suppress(Exception):
                await msg.in_progress()
