"""Snapshots of a task's or a job's annotations, streamed as NDJSON (export's read).

The format is the contract's (`tessera.platform.contracts.annotations`): a header line,
one line per object in frame order, and an `end` line with the counts. The whole read
is one REPEATABLE READ, read-only transaction (`annotations.service.open_reader`), so
the header and every object come from one consistent state: a write committed while a
snapshot streams is either entirely in it or not at all.

Objects are read as the annotations GET reads them (`annotations.repository`'s
`TAGS_SQL`, `SHAPES_SQL` and `TRACKS_SQL`, completed by `codec.complete_all` and
`codec.TrackAssembler`): the stored JSON text of a tag or shape passes through untouched
unless the label has attributes the row lacks (then filled with their defaults, as the
GET does), tracks are assembled from their keyframe rows. Three server-side cursors
(one per kind) are open side by side and fetched a batch at a time, the next batch
ahead (`repository.Cursors`); `_merged` interleaves their batches by frame holding no
more than a batch or two per kind beyond the frame being emitted (and all objects of
one frame, when a frame has more than a batch of them).

A task's objects are those of its annotation jobs, unmerged (the contract says why).
Jobs are taken in runs that overlap (`annotations.service.job_clusters`): the runs
follow each other in frame order, a single job's rows come in index order, and only
the rows of overlapping jobs are sorted by PostgreSQL (by frame, then job order).
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, Literal

import orjson

from tessera.annotations.annotations import repository as annotations_repository
from tessera.annotations.annotations.codec import TrackAssembler, complete_all
from tessera.annotations.annotations.repository import Connection, JobRange, Record
from tessera.annotations.annotations.service import job_clusters, open_reader
from tessera.annotations.annotations.validation import LabelCatalog
from tessera.annotations.snapshots import repository as repo
from tessera.platform.contracts.annotations import (
    SnapshotEnd,
    SnapshotError,
    SnapshotHeader,
    SnapshotKind,
)
from tessera.platform.db import Database
from tessera.platform.errors import NotFound

logger = logging.getLogger(__name__)
Scope = Literal["task", "job"]
_SQL = (annotations_repository.TAGS_SQL, annotations_repository.SHAPES_SQL,
        annotations_repository.TRACKS_SQL)  # fmt: skip


async def header(
    conn: Connection, scope: Scope, id_: int, frame: int | None = None
) -> tuple[SnapshotHeader, list[JobRange]]:
    """The snapshot's header (the task, its labels, the jobs, the version) and the jobs'
    frame ranges; NotFound for a missing task or job. With a `frame`, only the jobs that
    hold that frame."""
    if scope == "task":
        task = await repo.task(conn, id_)
        if task is None:
            raise NotFound(f"Task {id_} does not exist.")
        jobs = await repo.task_jobs(conn, id_)
    else:
        found = await repo.one_job(conn, id_)
        if found is None:
            raise NotFound(f"Job {id_} does not exist.")
        jobs = found
        task = await repo.task(conn, jobs.task_id)
        assert task is not None  # a job's task is deleted with it
    if frame is not None:
        jobs = repo.SnapshotJobs(
            jobs.task_id,
            [job for job, at in zip(jobs.shown, jobs.ranges, strict=True) if at.covers(frame)],
            [at for at in jobs.ranges if at.covers(frame)],
        )
    head = SnapshotHeader(
        scope=scope,
        version=sum(job.version for job in jobs.shown),
        task=task,
        labels=await repo.labels(conn, task),
        jobs=jobs.shown,
    )
    return head, jobs.ranges


class _Counter:
    """Objects of each kind put in lines so far."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(("tag", "shape", "track"), 0)

    def end(self) -> SnapshotEnd:
        c = self.counts
        return SnapshotEnd(tags=c["tag"], shapes=c["shape"], tracks=c["track"])


def _text(item: str | dict[str, Any]) -> str:
    return item if isinstance(item, str) else orjson.dumps(item).decode()


class Lines:
    """Lines of objects in frame order (without their newlines), with their frames.

    Two parallel lists rather than a pair per object: the lines of a batch create no
    objects that the cyclic garbage collector tracks.
    """

    __slots__ = ("frames", "texts")

    def __init__(self, frames: list[int], texts: list[str]) -> None:
        self.frames = frames
        self.texts = texts

    def take_before(self, frame: int) -> Lines:
        """Remove and return the lines before `frame`."""
        cut = bisect_left(self.frames, frame)
        taken = Lines(self.frames[:cut], self.texts[:cut])
        del self.frames[:cut], self.texts[:cut]
        return taken

    def extend(self, other: Lines) -> None:
        """Append `other`'s lines (which come at or after these)."""
        self.frames += other.frames
        self.texts += other.texts


def _in_frame_order(parts: Sequence[Lines]) -> list[str]:
    """The texts of `parts` (each in frame order) merged by frame; on one frame, those of
    earlier parts first."""
    filled = [part for part in parts if part.texts]
    if len(filled) <= 1:
        return filled[0].texts if filled else []
    frames = [frame for part in filled for frame in part.frames]
    texts = [text for part in filled for text in part.texts]
    return [texts[i] for i in sorted(range(len(frames)), key=frames.__getitem__)]  # stable


async def _per_frame(
    kind: SnapshotKind, rows_of: AsyncIterator[list[Record]], catalog: LabelCatalog,
    counter: _Counter,
) -> AsyncIterator[Lines]:  # fmt: skip
    """Lines of tags or shapes, one `Lines` per fetched batch of rows, in frame order."""
    head = '{"%s":' % kind  # noqa: UP031 - the braces of JSON read better than {{
    async for rows in rows_of:
        items = complete_all(rows, catalog)
        counter.counts[kind] += len(rows)
        texts = [
            f'{head}{_text(item)},"job_id":{row[0]}}}'
            for row, item in zip(rows, items, strict=True)
        ]
        yield Lines([row[1] for row in rows], texts)


async def _tracks(
    rows_of: AsyncIterator[list[Record]], catalog: LabelCatalog, counter: _Counter
) -> AsyncIterator[Lines]:
    """Lines of tracks (keyframes and elements inside), in order of their first frame."""
    assembler = TrackAssembler(catalog)

    def lines(tracks: Sequence[tuple[int, dict[str, Any]]]) -> Lines:
        counter.counts["track"] += len(tracks)
        texts = [f'{{"track":{_text(track)},"job_id":{job_id}}}' for job_id, track in tracks]
        return Lines([track["frame"] for _, track in tracks], texts)

    async for rows in rows_of:
        yield lines(list(assembler.feed(rows)))
    yield lines(list(assembler.flush()))


async def _merged(sources: Sequence[AsyncIterator[Lines]]) -> AsyncIterator[list[str]]:
    """The lines of `sources` (each in frame order) in frame order; on one frame, those of
    earlier sources first.

    Every source that may still give lines holds at least one pending line, and its
    last pending frame bounds what it gives later; lines before the smallest such bound
    are final and go out; then each source whose last pending frame is that bound gets
    its next batch (so every round fetches, and the pending lines are the bound's frame
    and at most a batch of each source).
    """
    pending = [Lines([], []) for _ in sources]
    live = [True] * len(sources)

    async def pull(i: int) -> None:
        batch = await anext(sources[i], None)
        if batch is None:
            live[i] = False
        else:
            pending[i].extend(batch)

    while True:
        for i in range(len(sources)):
            while live[i] and not pending[i].frames:
                await pull(i)
        bounds = [pending[i].frames[-1] for i in range(len(sources)) if live[i]]
        if not bounds:
            rest = _in_frame_order(pending)
            if rest:
                yield rest
            return
        bound = min(bounds)
        ready = _in_frame_order([lines.take_before(bound) for lines in pending])
        if ready:
            yield ready
        for i in range(len(sources)):
            if live[i] and pending[i].frames[-1] == bound:
                await pull(i)


async def _objects(
    conn: Connection,
    jobs: list[JobRange],
    catalog: LabelCatalog,
    counter: _Counter,
    frame: int | None = None,
) -> AsyncIterator[bytes]:
    for cluster in job_clusters(jobs):
        job_ids = [job.id for job in cluster]
        if frame is None:
            cursors = await repo.Cursors.open(conn, _SQL, job_ids)
        else:
            cursors = await repo.Cursors.open(conn, repo.FRAME_SQL, job_ids, frame)
        sources = (
            _per_frame("tag", cursors.batches(0), catalog, counter),
            _per_frame("shape", cursors.batches(1), catalog, counter),
            _tracks(cursors.batches(2), catalog, counter),
        )
        async for lines in _merged(sources):
            lines.append("")
            yield "\n".join(lines).encode()


def _line(key: str, body: bytes) -> bytes:
    return b'{"%s":%s}\n' % (key.encode(), body)


async def snapshot(
    database: Database, scope: Scope, id_: int, frame: int | None = None
) -> AsyncGenerator[bytes]:
    """The NDJSON snapshot of a task or a job, in chunks (the header line is the first).

    With a `frame`, the snapshot of what may show on that frame: the jobs that hold it,
    its tags and shapes, and the tracks that may be visible there (whole, for the reader
    to interpolate), read through the (job_id, frame) indexes rather than the whole job.

    Raises NotFound before the first chunk when the task or job does not exist. A
    failure after the header is logged and ends the stream with an `error` line.
    """
    counter = _Counter()
    started = False
    try:
        async with open_reader(database) as reader:
            head, jobs = await header(reader.conn, scope, id_, frame)
            catalog = await annotations_repository.load_catalog(reader.conn, head.task.id)
            started = True
            yield _line("header", head.model_dump_json().encode())
            async for chunk in _objects(reader.conn, jobs, catalog, counter, frame):
                yield chunk
    except Exception as exc:
        if not started:
            raise
        logger.exception("the snapshot of %s %s failed", scope, id_)
        error = SnapshotError(detail=f"The snapshot failed: {type(exc).__name__}: {exc}")
        yield _line("error", error.model_dump_json().encode())
        return
    yield _line("end", counter.end().model_dump_json().encode())
