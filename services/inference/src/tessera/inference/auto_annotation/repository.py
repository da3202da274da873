"""The `auto_annotations` table: what each auto-annotation request asked for, and how far
its worker got. Each row belongs to a row of the platform's `requests` table (status,
progress, owner), which `RequestStore` keeps.

- `params`: the request's threshold, mapping, cleanup, mask conversion and shape type.
- `done_through`: every frame of the request up to this one has its shapes written
  (None: none yet).
- `pending`: the batch being written, `{"last": frame, "document": {...}}`, recorded
  before the write and cleared with `done_through` after it (see `runner`).
- `cleaned`: the task's (job's) annotations were deleted, for `cleanup`.
- `attempts`: how many times a worker has started the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.platform.db import Database
from tessera.platform.requests import OPEN, RequestStore, Status

# The first key of the advisory lock that makes one request per task at a time.
_LOCK_SPACE = 0x7E55A0


def auto_annotations_table(metadata: sa.MetaData, schema: str) -> sa.Table:
    """The `auto_annotations` table of the inference schema."""
    return sa.Table(
        "auto_annotations",
        metadata,
        sa.Column("rq_id", sa.Text, primary_key=True),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("function_id", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("done_through", sa.BigInteger),
        sa.Column("pending", JSONB(none_as_null=True)),
        sa.Column("cleaned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("shapes_written", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        schema=schema,
    )


@dataclass(frozen=True)
class AutoAnnotationRow:
    """A request's `auto_annotations` row with its request's status, owner and dates."""

    rq_id: str
    task_id: int
    job_id: int | None
    function_id: str
    params: dict[str, Any]
    done_through: int | None
    pending: dict[str, Any] | None
    cleaned: bool
    shapes_written: int
    attempts: int
    owner_id: int
    status: Status
    message: str
    progress: float | None
    created_date: datetime
    started_date: datetime | None
    finished_date: datetime | None


class AutoAnnotationRepository:
    """Reads and writes of `auto_annotations`, joined with the requests they belong to."""

    def __init__(self, database: Database, requests: RequestStore, schema: str) -> None:
        self.database = database
        self.table = auto_annotations_table(sa.MetaData(), schema)
        self.requests = requests.table

    def _select(self) -> sa.Select[Any]:
        r = self.requests.c
        return sa.select(
            self.table, r.owner_id, r.status, r.message, r.progress, r.created_date,
            r.started_date, r.finished_date,
        ).join(self.requests, r.id == self.table.c.rq_id)  # fmt: skip

    async def lock_task(self, session: AsyncSession, task_id: int) -> None:
        """Hold the task's lock until `session`'s transaction ends, so that two requests
        for one task are not both found to be the only one."""
        await session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(_LOCK_SPACE, task_id % 2**31))
        )

    async def running_on_task(self, session: AsyncSession, task_id: int) -> str | None:
        """The id of a queued or running request on the task (of the task or of one of
        its jobs), if there is one."""
        query = (
            sa.select(self.table.c.rq_id)
            .join(self.requests, self.requests.c.id == self.table.c.rq_id)
            .where(self.table.c.task_id == task_id, self.requests.c.status.in_(OPEN))
            .limit(1)
        )
        found: str | None = await session.scalar(query)
        return found

    async def insert(
        self,
        session: AsyncSession,
        rq_id: str,
        *,
        task_id: int,
        job_id: int | None,
        function_id: str,
        params: dict[str, Any],
    ) -> None:
        """Record what a new request asked for, in the transaction that records it."""
        values = {"rq_id": rq_id, "task_id": task_id, "job_id": job_id,
                  "function_id": function_id, "params": params}  # fmt: skip
        await session.execute(self.table.insert().values(**values))

    async def get(
        self, rq_id: str, session: AsyncSession | None = None
    ) -> AutoAnnotationRow | None:
        """The request's row (None if there is none)."""
        query = self._select().where(self.table.c.rq_id == rq_id)
        if session is not None:
            row = (await session.execute(query)).first()
        else:
            async with self.database.transaction() as own:
                row = (await own.execute(query)).first()
        return None if row is None else _row(row)

    async def listed(
        self, session: AsyncSession, owner_id: int | None, finished_since: datetime
    ) -> list[AutoAnnotationRow]:
        """The requests CVAT's list shows, newest first: queued and running ones, and those
        finished since `finished_since` (not failed ones), of `owner_id` (None: anyone's)."""
        r = self.requests.c
        shown = sa.or_(
            r.status.in_(OPEN), sa.and_(r.status == "finished", r.finished_date >= finished_since)
        )
        query = self._select().where(shown)
        if owner_id is not None:
            query = query.where(r.owner_id == owner_id)
        query = query.order_by(r.created_date.desc(), r.id)
        return [_row(row) for row in (await session.execute(query)).all()]

    async def begin_attempt(self, rq_id: str) -> AutoAnnotationRow | None:
        """Count a worker's start of the request; its row (None if there is none)."""
        async with self.database.transaction() as session:
            await session.execute(
                self.table.update()
                .where(self.table.c.rq_id == rq_id)
                .values(attempts=self.table.c.attempts + 1)
            )
            return await self.get(rq_id, session)

    async def set_pending(self, rq_id: str, pending: dict[str, Any]) -> None:
        """Record the batch about to be written."""
        await self._update(rq_id, pending=pending)

    async def set_done(self, rq_id: str, last_frame: int, shapes: int) -> None:
        """Record that the request's frames up to `last_frame` have their shapes written,
        `shapes` more of them, and that no batch is being written."""
        await self._update(
            rq_id, done_through=last_frame, pending=None,
            shapes_written=self.table.c.shapes_written + shapes,
        )  # fmt: skip

    async def set_cleaned(self, rq_id: str) -> None:
        """Record that the annotations the request was to replace are deleted."""
        await self._update(rq_id, cleaned=True)

    async def _update(self, rq_id: str, **values: Any) -> None:
        async with self.database.transaction() as session:
            await session.execute(
                self.table.update().where(self.table.c.rq_id == rq_id).values(**values)
            )


def _row(row: sa.Row[Any]) -> AutoAnnotationRow:
    return AutoAnnotationRow(
        rq_id=row.rq_id,
        task_id=row.task_id,
        job_id=row.job_id,
        function_id=row.function_id,
        params=dict(row.params),
        done_through=row.done_through,
        pending=row.pending,
        cleaned=row.cleaned,
        shapes_written=row.shapes_written,
        attempts=row.attempts,
        owner_id=row.owner_id,
        status=row.status,
        message=row.message,
        progress=row.progress,
        created_date=row.created_date,
        started_date=row.started_date,
        finished_date=row.finished_date,
    )
