"""The `auto_annotations` and `auto_annotation_parts` tables: what each auto-annotation
request asked for, and how far its worker got in each part of it. Each request belongs
to a row of the platform's `requests` table (status, progress, owner), which
`RequestStore` keeps.

`auto_annotations`, a row per request:
- `project_id`, `task_id`, `job_id`: what the request names (a project's request has no
  task; `job_id` is CVAT's one job of the task).
- `params`: the request's threshold, mapping, cleanup, mask conversion, shape type, and
  the `jobs` and `frames` it was limited to.
- `attempts`: how many times a worker has started the request.

`auto_annotation_parts`, a row per part, done in `position` order: a task, one job of a
task, or some frames of a task, which the request's shapes are written to.
- `frames`: the task frames of a part limited to them (None: the task's or the job's).
- `done_through`: every frame of the part up to this one has its shapes written (None:
  none yet).
- `pending`: the batch being written, `{"last": frame, "document": {...}}`, recorded
  before the write and cleared with `done_through` after it (see `runner`).
- `cleaned`: the part's annotations were deleted, for `cleanup`.
- `shapes_written`: how many shapes were written to it.

At most one queued or running request covers a task (has a part on it): a request is
recorded while it holds the advisory lock of every task it covers (`lock_tasks`), after
finding none there (`running_on_tasks`). The lock, rather than a unique index, because
a request ends in the `requests` table, which the platform changes without this table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.platform.db import Database
from tessera.platform.requests import OPEN, RequestStore, Status

# The first key of the advisory locks that make one request per task at a time.
_LOCK_SPACE = 0x7E55A0


def auto_annotations_table(metadata: sa.MetaData, schema: str) -> sa.Table:
    """The `auto_annotations` table of the inference schema."""
    return sa.Table(
        "auto_annotations",
        metadata,
        sa.Column("rq_id", sa.Text, primary_key=True),
        sa.Column("project_id", sa.BigInteger),
        sa.Column("task_id", sa.BigInteger),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("function_id", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        schema=schema,
    )


def auto_annotation_parts_table(metadata: sa.MetaData, schema: str) -> sa.Table:
    """The `auto_annotation_parts` table of the inference schema."""
    return sa.Table(
        "auto_annotation_parts",
        metadata,
        sa.Column("rq_id", sa.Text, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("frames", ARRAY(sa.BigInteger)),
        sa.Column("done_through", sa.BigInteger),
        sa.Column("pending", JSONB(none_as_null=True)),
        sa.Column("cleaned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("shapes_written", sa.BigInteger, nullable=False, server_default="0"),
        schema=schema,
    )


@dataclass(frozen=True)
class PartScope:
    """Where a part of a request writes: a task, one of its jobs, or some of its frames."""

    task_id: int
    job_id: int | None = None
    frames: list[int] | None = None


@dataclass(frozen=True)
class AutoAnnotationPart:
    """A part's `auto_annotation_parts` row."""

    rq_id: str
    position: int
    task_id: int
    job_id: int | None
    frames: list[int] | None
    done_through: int | None
    pending: dict[str, Any] | None
    cleaned: bool
    shapes_written: int


@dataclass(frozen=True)
class AutoAnnotationRow:
    """A request's `auto_annotations` row with its request's status, owner and dates."""

    rq_id: str
    project_id: int | None
    task_id: int | None
    job_id: int | None
    function_id: str
    params: dict[str, Any]
    attempts: int
    owner_id: int
    status: Status
    message: str
    progress: float | None
    created_date: datetime
    started_date: datetime | None
    finished_date: datetime | None


class AutoAnnotationRepository:
    """Reads and writes of `auto_annotations` and `auto_annotation_parts`, joined with the
    requests they belong to."""

    def __init__(self, database: Database, requests: RequestStore, schema: str) -> None:
        self.database = database
        metadata = sa.MetaData()
        self.table = auto_annotations_table(metadata, schema)
        self.parts_table = auto_annotation_parts_table(metadata, schema)
        self.requests = requests.table

    def _select(self) -> sa.Select[Any]:
        r = self.requests.c
        return sa.select(
            self.table, r.owner_id, r.status, r.message, r.progress, r.created_date,
            r.started_date, r.finished_date,
        ).join(self.requests, r.id == self.table.c.rq_id)  # fmt: skip

    async def lock_tasks(self, session: AsyncSession, task_ids: Sequence[int]) -> None:
        """Hold the locks of these tasks until `session`'s transaction ends, so that two
        requests covering a task are not both found to be the only one. Taken in one
        order by every request, so that two requests never deadlock."""
        keys = sorted({task_id % 2**31 for task_id in task_ids})
        await session.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(:space, key) FROM unnest(:keys) AS key"
            ).bindparams(sa.bindparam("keys", type_=ARRAY(sa.Integer))),
            {"space": _LOCK_SPACE, "keys": keys},
        )

    async def running_on_tasks(
        self, session: AsyncSession, task_ids: Sequence[int]
    ) -> tuple[int, str] | None:
        """A task among these that a queued or running request covers, and that request's
        id, if there is one (the first such task)."""
        parts = self.parts_table.c
        query = (
            sa.select(parts.task_id, parts.rq_id)
            .join(self.requests, self.requests.c.id == parts.rq_id)
            .where(parts.task_id.in_(list(task_ids)), self.requests.c.status.in_(OPEN))
            .order_by(parts.task_id)
            .limit(1)
        )
        found = (await session.execute(query)).first()
        return None if found is None else (found.task_id, found.rq_id)

    async def insert(
        self,
        session: AsyncSession,
        rq_id: str,
        *,
        project_id: int | None,
        task_id: int | None,
        job_id: int | None,
        function_id: str,
        params: dict[str, Any],
        parts: Sequence[PartScope],
    ) -> None:
        """Record what a new request asked for and its parts (done in this order), in the
        transaction that records it."""
        values = {"rq_id": rq_id, "project_id": project_id, "task_id": task_id,
                  "job_id": job_id, "function_id": function_id, "params": params}  # fmt: skip
        await session.execute(self.table.insert().values(**values))
        await session.execute(
            self.parts_table.insert(),
            [{"rq_id": rq_id, "position": position, "task_id": part.task_id,
              "job_id": part.job_id, "frames": part.frames}
             for position, part in enumerate(parts)],
        )  # fmt: skip

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

    async def parts(self, rq_id: str) -> list[AutoAnnotationPart]:
        """The request's parts, in the order they are done."""
        query = (
            sa.select(self.parts_table)
            .where(self.parts_table.c.rq_id == rq_id)
            .order_by(self.parts_table.c.position)
        )
        async with self.database.transaction() as session:
            rows = (await session.execute(query)).all()
        return [_part(row) for row in rows]

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

    async def set_pending(self, rq_id: str, position: int, pending: dict[str, Any]) -> None:
        """Record the batch about to be written to a part."""
        await self._update(rq_id, position, pending=pending)

    async def set_done(self, rq_id: str, position: int, last_frame: int, shapes: int) -> None:
        """Record that the part's frames up to `last_frame` have their shapes written,
        `shapes` more of them, and that no batch is being written to it."""
        await self._update(
            rq_id, position, done_through=last_frame, pending=None,
            shapes_written=self.parts_table.c.shapes_written + shapes,
        )  # fmt: skip

    async def set_cleaned(self, rq_id: str, position: int) -> None:
        """Record that the annotations the part was to replace are deleted."""
        await self._update(rq_id, position, cleaned=True)

    async def _update(self, rq_id: str, position: int, **values: Any) -> None:
        parts = self.parts_table
        async with self.database.transaction() as session:
            await session.execute(
                parts.update()
                .where(parts.c.rq_id == rq_id, parts.c.position == position)
                .values(**values)
            )


def _row(row: sa.Row[Any]) -> AutoAnnotationRow:
    return AutoAnnotationRow(
        rq_id=row.rq_id,
        project_id=row.project_id,
        task_id=row.task_id,
        job_id=row.job_id,
        function_id=row.function_id,
        params=dict(row.params),
        attempts=row.attempts,
        owner_id=row.owner_id,
        status=row.status,
        message=row.message,
        progress=row.progress,
        created_date=row.created_date,
        started_date=row.started_date,
        finished_date=row.finished_date,
    )


def _part(row: sa.Row[Any]) -> AutoAnnotationPart:
    return AutoAnnotationPart(
        rq_id=row.rq_id,
        position=row.position,
        task_id=row.task_id,
        job_id=row.job_id,
        frames=None if row.frames is None else list(row.frames),
        done_through=row.done_through,
        pending=row.pending,
        cleaned=row.cleaned,
        shapes_written=row.shapes_written,
    )
