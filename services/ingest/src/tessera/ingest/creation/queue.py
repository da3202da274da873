"""Task creation's work queue, shared by every ingest replica (`tessera.platform.workqueue`).

A data request commits its request row and an `ingest.creation.requested` message in
one transaction. Each replica's `WorkerPool` on `CREATION` hands the creations to
`CreationRunner`; a creation that a stopped or dead replica left is cleared and redone
by another, and fails after `CREATION.max_deliveries` tries.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.task_data.service import CreationPlan
from tessera.platform.bus import Outbox
from tessera.platform.workqueue import WorkQueue

CREATION = WorkQueue(
    stream="INGEST", subject="ingest.creation.requested", durable="ingest-creation"
)


async def enqueue(session: AsyncSession, outbox: Outbox, rq_id: str, plan: CreationPlan) -> None:
    """Queue a creation in `session`'s transaction (published after the commit)."""
    await CREATION.enqueue(session, outbox, rq_id, {"plan": plan.to_json()})
