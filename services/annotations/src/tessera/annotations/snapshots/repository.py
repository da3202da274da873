"""SQL of snapshots, on the asyncpg connection of a REPEATABLE READ read-only transaction.

The header (task, labels, jobs) is read with plain queries; the objects through three
server-side cursors (tags, shapes and tracks) that stay open side by side on the one
connection and are fetched in turn, a batch at a time (`Cursors`), so that the three
kinds can be merged in frame order without holding more than a batch or two of each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from tessera.annotations.annotations import repository as annotations_repository
from tessera.annotations.annotations.repository import JobRange
from tessera.annotations.status import job_status
from tessera.platform.auth import IAM_SCHEMA
from tessera.platform.contracts.annotations import (
    SnapshotAttribute,
    SnapshotJob,
    SnapshotLabel,
    SnapshotTask,
)

S = annotations_repository.S
FETCH_BATCH = annotations_repository.FETCH_BATCH


def _narrowed(sql: str, anchor: str, condition: str) -> str:
    """`sql` (a read of `annotations.repository`) with `condition` added after `anchor`,
    the end of its WHERE clause."""
    if sql.count(anchor) != 1:
        raise AssertionError(f"the read no longer ends its WHERE clause with {anchor!r}")
    return sql.replace(anchor, anchor + condition)


# The top-level tracks that may show on frame $2: begun by then, and not ended before it
# (a track, or one of a skeleton's element tracks, whose last keyframe is at or after
# $2, or is not outside). A track whose last keyframe is outside and before $2 shows
# nothing there; the others are read whole and interpolated by the reader.
_LIVE_TRACKS = f"""
    SELECT f.id FROM {S}.tracks f
    WHERE f.job_id = ANY($1::bigint[]) AND f.parent_id IS NULL AND f.frame <= $2
      AND EXISTS (
        SELECT 1 FROM {S}.tracks m
        CROSS JOIN LATERAL (SELECT k.frame, k.outside FROM {S}.track_shapes k
                            WHERE k.track_id = m.id ORDER BY k.frame DESC LIMIT 1) AS last
        WHERE (m.id = f.id OR m.parent_id = f.id) AND (last.frame >= $2 OR NOT last.outside))
"""
FRAME_SQL = (
    _narrowed(annotations_repository.TAGS_SQL, "WHERE t.job_id = ANY($1::bigint[])",
              " AND t.frame = $2"),
    _narrowed(annotations_repository.SHAPES_SQL, "AND s.parent_id IS NULL", " AND s.frame = $2"),
    _narrowed(annotations_repository.TRACKS_SQL, "WHERE t.job_id = ANY($1::bigint[])",
              f" AND coalesce(t.parent_id, t.id) IN ({_LIVE_TRACKS})"),
)  # fmt: skip
"""The reads of tags, shapes and tracks (`$1` the job ids, as theirs) narrowed to what
may show on one frame (`$2`): the frame's tags and shapes, and the tracks that may be
visible there, each whole (keyframes and elements)."""

TASK_SQL = f"""
SELECT t.id, t.name, t.status, t.mode, t.dimension, t.media_type, t.size, t.subset,
       t.bug_tracker, t.project_id, p.name AS project_name, t.organization_id,
       o.username AS owner, a.username AS assignee, t.segment_size, t.overlap,
       t.image_quality, t.start_frame, t.stop_frame, t.frame_filter, t.data_chunk_size,
       t.compressed_chunk_type, t.original_chunk_type, t.created_date, t.updated_date
FROM {S}.tasks t
LEFT JOIN {S}.projects p ON p.id = t.project_id
LEFT JOIN {IAM_SCHEMA}.users o ON o.id = t.owner_id
LEFT JOIN {IAM_SCHEMA}.users a ON a.id = t.assignee_id
WHERE t.id = $1
"""
_JOB_FIELDS = "id, task_id, type, start_frame, stop_frame, frames, version, stage, state"


@dataclass(frozen=True)
class SnapshotJobs:
    """The jobs of a snapshot: as the header shows them, and as the readers use them."""

    task_id: int
    shown: list[SnapshotJob]
    ranges: list[JobRange]


def _jobs(task_id: int, rows: Sequence[asyncpg.Record]) -> SnapshotJobs:
    shown = [
        SnapshotJob(
            id=row["id"], type=row["type"], start_frame=row["start_frame"],
            stop_frame=row["stop_frame"], frames=row["frames"], version=row["version"],
            status=job_status(row["stage"], row["state"]),
        )
        for row in rows
    ]  # fmt: skip
    ranges = [
        JobRange(
            row["id"], row["task_id"], row["start_frame"], row["stop_frame"],
            frozenset(row["frames"]) if row["frames"] is not None else None, row["version"],
        )
        for row in rows
    ]  # fmt: skip
    return SnapshotJobs(task_id, shown, ranges)


async def task_jobs(conn: asyncpg.Connection, task_id: int) -> SnapshotJobs:
    """The task's annotation jobs in merge order (start frame, then id)."""
    rows = await conn.fetch(
        f"SELECT {_JOB_FIELDS} FROM {S}.jobs WHERE task_id = $1 AND type = 'annotation' "
        "ORDER BY start_frame, id",
        task_id,
    )
    return _jobs(task_id, rows)


async def one_job(conn: asyncpg.Connection, job_id: int) -> SnapshotJobs | None:
    """The job (of any type); None if it does not exist."""
    row = await conn.fetchrow(f"SELECT {_JOB_FIELDS} FROM {S}.jobs WHERE id = $1", job_id)
    return None if row is None else _jobs(row["task_id"], [row])


async def task(conn: asyncpg.Connection, task_id: int) -> SnapshotTask | None:
    """The task with its project's name and its owner's and assignee's usernames."""
    row = await conn.fetchrow(TASK_SQL, task_id)
    return None if row is None else SnapshotTask.model_validate(dict(row))


async def labels(conn: asyncpg.Connection, task: SnapshotTask) -> list[SnapshotLabel]:
    """The labels the task's annotations use (the project's for a task in a project), in
    id order, each skeleton's points as its sublabels."""
    owner, owner_id = (
        ("project_id", task.project_id) if task.project_id is not None else ("task_id", task.id)
    )
    rows = await conn.fetch(
        f"SELECT id, name, color, type, svg, parent_id FROM {S}.labels WHERE {owner} = $1 "
        "ORDER BY id",
        owner_id,
    )
    specs = await conn.fetch(
        f"SELECT a.id, a.label_id, a.name, a.input_type, a.mutable, a.values, a.default_value "
        f"FROM {S}.attribute_specs a JOIN {S}.labels l ON l.id = a.label_id "
        f"WHERE l.{owner} = $1 ORDER BY a.id",
        owner_id,
    )
    attributes: dict[int, list[SnapshotAttribute]] = {row["id"]: [] for row in rows}
    for spec in specs:
        attributes[spec["label_id"]].append(
            SnapshotAttribute(
                id=spec["id"], name=spec["name"], input_type=spec["input_type"],
                mutable=spec["mutable"], values=list(spec["values"]),
                default_value=spec["default_value"],
            )
        )  # fmt: skip
    by_id = {
        row["id"]: SnapshotLabel(
            id=row["id"], name=row["name"], color=row["color"], type=row["type"],
            attributes=attributes[row["id"]], svg=row["svg"], parent_id=row["parent_id"],
        )
        for row in rows
    }  # fmt: skip
    top: list[SnapshotLabel] = []
    for label in by_id.values():
        parent = by_id.get(label.parent_id) if label.parent_id is not None else None
        if parent is not None:
            parent.sublabels.append(label)
        elif label.parent_id is None:
            top.append(label)
    return top


class Cursors:
    """Server-side cursors open side by side on one connection, read a batch at a time.

    The next batch of the cursor read last is fetched ahead while the caller works on
    the current one (PostgreSQL and the service overlap, as `annotations.repository.
    cursor` does); the connection runs one fetch at a time, so a batch asked of another
    cursor first waits for the fetch in flight, whose batch is kept for later. At most
    one batch per cursor is held ahead. The fetch in flight is registered with
    `annotations.repository.settle`, which the reader's end waits for.
    """

    def __init__(self, conn: asyncpg.Connection, cursors: Sequence[Any]) -> None:
        self.conn = conn
        self.cursors = list(cursors)
        self.ahead: dict[int, list[asyncpg.Record]] = {}
        self.in_flight: int | None = None

    @classmethod
    async def open(
        cls,
        conn: asyncpg.Connection,
        sqls: Sequence[str],
        job_ids: Sequence[int],
        *args: Any,
    ) -> Cursors:
        """Cursors of `sqls` (the reads of `annotations.repository`, or `FRAME_SQL` with
        the frame in `args`) for the jobs.

        As `annotations.repository.cursor` does, a single job's cursors are planned with
        sorting priced out, so that they follow the (job_id, frame, id) indexes and
        stream rather than sort the whole job first; the rows of several (overlapping)
        jobs are sorted by frame and job order.
        """
        if len(job_ids) != 1:
            return cls(conn, [await conn.cursor(sql, list(job_ids), *args) for sql in sqls])
        await conn.execute("SET LOCAL enable_sort = off")
        one = annotations_repository.one_job_sql
        cursors = [await conn.cursor(one(sql), list(job_ids), *args) for sql in sqls]
        await conn.execute("SET LOCAL enable_sort = on")
        return cls(conn, cursors)

    async def fetch(self, index: int) -> list[asyncpg.Record]:
        """The next batch of cursor `index` (fewer than FETCH_BATCH rows: its last)."""
        if index not in self.ahead and self.in_flight is not None:
            self.ahead[self.in_flight] = await annotations_repository.fetched_ahead(self.conn)
            self.in_flight = None
        batch = self.ahead.pop(index, None)
        if batch is None:
            batch = await self.cursors[index].fetch(FETCH_BATCH)
        if len(batch) == FETCH_BATCH and self.in_flight is None:
            annotations_repository.fetch_ahead(self.conn, self.cursors[index].fetch(FETCH_BATCH))
            self.in_flight = index
        return batch

    async def batches(self, index: int) -> AsyncIterator[list[asyncpg.Record]]:
        """The rows of cursor `index`, FETCH_BATCH at a time (no empty batches)."""
        while True:
            rows = await self.fetch(index)
            if rows:
                yield rows
            if len(rows) < FETCH_BATCH:
                return
