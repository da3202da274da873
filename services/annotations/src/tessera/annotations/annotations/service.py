"""Annotations of jobs and tasks: CVAT's semantics, built for millions of shapes.

Writes (`write_job`, `write_task`, `clear_job`, `clear_task`) validate the whole
request first, then lock the job rows (`SELECT ... FOR UPDATE`), compare `version`,
and apply everything in the request's transaction with bulk SQL (ids reserved in one
round trip, rows in with binary COPY). Each write bumps the version of every job it
changes and queues one `annotations.changed` event per job in the outbox. A request
is applied all or nothing.

`version` is optimistic concurrency: a write whose `version` differs from the current
one gets 409 and changes nothing. A job's version is `jobs.version`; a task's is the sum
of its annotation jobs' versions (it changes whenever any of them does). A body without
`version` writes unconditionally (as CVAT clients that never read a version do).

Ids, as CVAT: PUT keeps an object's id when it is one of the job's current objects
(so GET, edit, PUT round-trips), PATCH update keeps the ids of the objects it replaces,
and everything else gets a fresh id; the response carries the ids stored.

Reading: `open_reader(database)` gives an `AnnotationReader` on one connection in a
REPEATABLE READ, read-only snapshot. `AnnotationReader.job(job_id)` and
`AnnotationReader.task(task_id)` return an `AnnotationStream`: the version and three
async iterators (tags, shapes, tracks), each in frame order (tracks by start frame),
fetched through server-side cursors in batches, so memory stays flat however large
the job. A task's stream merges the overlaps of its jobs with
`tessera.geometry.merge.merge_segments`, frame by frame for tags and shapes (only the
overlapping frames are held) and all at once for tracks when jobs overlap:

    async with open_reader(database) as reader:
        stream = await reader.task(task_id)
        async for kind, obj in stream:      # "tag" | "shape" | "track", CVAT's JSON form
            ...

The REST GET serialises the same stream as chunked JSON (`json_stream`). The export
service reads the internal snapshot (`tessera.annotations.snapshots`): the same rows in
the same kind of transaction, unmerged, as NDJSON in frame order. Its imports write
through `apply_to_task` and `apply_to_job` (`tessera.annotations.imports`): the writes
of `write_task` and `write_job` without their response documents.

The review list (`review_job_shapes`, `review_task_shapes`) reads a page of a job's or
task's top-level shapes filtered by source, label, frames and score, ordered by score
(then id), with the SQL of `repository.review_shapes`; each comes as the GET gives it,
with its `job_id`.
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import itertools
import logging
import math
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tessera.annotations.access import Context
from tessera.annotations.annotations import repository as repo
from tessera.annotations.annotations.codec import (
    Item,
    TrackAssembler,
    as_object,
    attribute_arrays,
    complete_all,
    json_document,
)
from tessera.annotations.annotations.repository import Connection, JobRange
from tessera.annotations.annotations.validation import (
    SOURCES,
    Document,
    LabelCatalog,
    Validator,
)
from tessera.annotations.visibility import job_for, task_for
from tessera.platform.bus import Outbox
from tessera.platform.collector import gc_paused
from tessera.platform.db import Database
from tessera.platform.errors import Problem, bad_request, unprocessable
from tessera.platform.pagination import PageParams

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
Kind = Literal["tag", "shape", "track"]
EVENT_SUBJECT = "annotations.changed"
TABLE_OF = {"tags": "tags", "shapes": "shapes", "tracks": "tracks"}


class Action(StrEnum):
    """How a write applies its body: PUT replaces; PATCH creates, updates or deletes."""

    PUT = "put"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass
class Counts:
    """Top-level objects a write created, updated and deleted in one job."""

    created: int = 0
    updated: int = 0
    deleted: int = 0


@dataclass
class Written:
    """What a write did: the validated document it stored (ids assigned; empty for a
    delete), the new version (as the GET answers it), and the top-level objects deleted
    over all jobs."""

    doc: Document
    version: int
    deleted: int


# -- reading ----------------------------------------------------------------------------


class AnnotationStream:
    """A job's or task's annotations: the version and one async iterator per kind.

    Consume the iterators one after the other (`tags()`, `shapes()`, `tracks()`), or
    iterate the stream itself for `(kind, object)` pairs in that order: they share one
    connection. Objects are in CVAT's JSON form (dicts).
    """

    def __init__(self, version: int, batches: dict[str, AsyncIterator[list[Item]]]) -> None:
        self.version = version
        self._batches = batches

    def tags(self) -> AsyncIterator[Obj]:
        """Tags in frame order."""
        return _objects_of(self._batches["tags"])

    def shapes(self) -> AsyncIterator[Obj]:
        """Shapes in frame order, skeleton elements under their skeleton."""
        return _objects_of(self._batches["shapes"])

    def tracks(self) -> AsyncIterator[Obj]:
        """Tracks in order of their first frame, element tracks under their skeleton."""
        return _objects_of(self._batches["tracks"])

    async def __aiter__(self) -> AsyncIterator[tuple[Kind, Obj]]:
        for kind, objects in (("tag", self.tags()), ("shape", self.shapes()),
                              ("track", self.tracks())):  # fmt: skip
            async for obj in objects:
                yield kind, obj  # type: ignore[misc]

    def json(self) -> AsyncIterator[bytes]:
        """The whole stream as CVAT's `LabeledData` JSON document, in chunks."""
        b = self._batches
        return json_document(self.version, b["tags"], b["shapes"], b["tracks"])


async def _objects_of(batches: AsyncIterator[list[Item]]) -> AsyncIterator[Obj]:
    async for batch in batches:
        for item in batch:
            yield as_object(item)


class AnnotationReader:
    """Streams annotations from one connection inside a transaction (see module doc)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def job(self, job_id: int) -> AnnotationStream:
        """The job's annotations. Raises LookupError if the job does not exist."""
        job = await repo.job_range(self.conn, job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        catalog = await repo.load_catalog(self.conn, job.task_id)
        return self._stream(job.version, [job], catalog)

    async def task(self, task_id: int) -> AnnotationStream:
        """The task's annotations, overlaps of its jobs merged as CVAT does."""
        jobs = await repo.task_jobs(self.conn, task_id, lock=False)
        catalog = await repo.load_catalog(self.conn, task_id)
        return self._stream(sum(j.version for j in jobs), jobs, catalog)

    def _stream(
        self, version: int, jobs: list[JobRange], catalog: LabelCatalog
    ) -> AnnotationStream:
        return AnnotationStream(version, {
            "tags": self._per_frame(jobs, catalog, repo.TAGS_SQL, "tags"),
            "shapes": self._per_frame(jobs, catalog, repo.SHAPES_SQL, "shapes"),
            "tracks": self._tracks(jobs, catalog),
        })  # fmt: skip

    async def _per_frame(
        self, jobs: list[JobRange], catalog: LabelCatalog, sql: str, kind: str
    ) -> AsyncIterator[list[Item]]:
        """Tags or shapes in frame order, a batch per fetched batch of rows; on frames
        that jobs share, each frame's objects are merged once the frame is complete."""
        for cluster in job_clusters(jobs):
            overlaps = _overlaps(cluster)
            batches = repo.cursor(self.conn, sql, [j.id for j in cluster])
            if not overlaps:
                async for rows in batches:
                    yield complete_all(rows, catalog)
                continue
            current, group = -1, list[tuple[int, Obj]]()
            async for rows in batches:
                out: list[Item] = []
                for row, item in zip(rows, complete_all(rows, catalog), strict=True):
                    job_id, frame = row[0], row[1]
                    if frame != current and group:
                        out += _merge_frame(cluster, group, kind, catalog.dimension)
                        group = []
                    if _inside(overlaps, frame):
                        current = frame
                        group.append((job_id, as_object(item)))
                    else:
                        out.append(item)
                yield out
            yield list[Item](_merge_frame(cluster, group, kind, catalog.dimension))

    async def _tracks(
        self, jobs: list[JobRange], catalog: LabelCatalog
    ) -> AsyncIterator[list[Item]]:
        """Tracks in order of their first frame; those of overlapping jobs merged."""
        for cluster in job_clusters(jobs):
            assembler = TrackAssembler(catalog)
            batches = repo.cursor(self.conn, repo.TRACKS_SQL, [j.id for j in cluster])
            if len(cluster) == 1:
                async for rows in batches:
                    yield [track for _, track in assembler.feed(rows)]
                yield [track for _, track in assembler.flush()]
                continue
            per_job: dict[int, list[Obj]] = {j.id: [] for j in cluster}
            async for rows in batches:
                for job_id, track in assembler.feed(rows):
                    per_job[job_id].append(track)
            for job_id, track in assembler.flush():
                per_job[job_id].append(track)
            segments = [({"tracks": per_job[j.id]}, j.start_frame, j.stop_frame) for j in cluster]
            merged = _merge_segments()(segments, dimension=_dimension(catalog))["tracks"]
            merged.sort(key=lambda t: t["frame"])
            yield list[Item](merged)


def _merge_segments() -> Callable[..., dict[str, list[Obj]]]:
    """`tessera.geometry.merge.merge_segments`, imported on first use.

    The geometry library brings Numba and SciPy (about 80 MB of a process); only tasks
    with overlapping jobs need it, so a service that never merges never loads it.
    """
    from tessera.geometry.merge import merge_segments  # noqa: PLC0415 - see docstring

    merged: Callable[..., dict[str, list[Obj]]] = merge_segments
    return merged


def _dimension(catalog: LabelCatalog) -> Literal["2d", "3d"]:
    return "3d" if catalog.dimension == "3d" else "2d"


def job_clusters(jobs: list[JobRange]) -> list[list[JobRange]]:
    """Runs of jobs (in merge order) that overlap each other, directly or in a chain."""
    clusters: list[list[JobRange]] = []
    covered = -1
    for job in jobs:
        if clusters and job.start_frame <= covered:
            clusters[-1].append(job)
        else:
            clusters.append([job])
        covered = max(covered, job.stop_frame)
    return clusters


def _overlaps(cluster: list[JobRange]) -> list[tuple[int, int]]:
    """Frame ranges of the cluster covered by more than one job."""
    out: list[tuple[int, int]] = []
    covered = -1
    for job in cluster:
        if job.start_frame <= covered:
            out.append((job.start_frame, min(covered, job.stop_frame)))
        covered = max(covered, job.stop_frame)
    return out


def _inside(ranges: list[tuple[int, int]], frame: int) -> bool:
    return any(lo <= frame <= hi for lo, hi in ranges)


def _merge_frame(
    cluster: list[JobRange], group: list[tuple[int, Obj]], kind: str, dimension: str
) -> list[Obj]:
    if not group:
        return []
    frame = group[0][1]["frame"]
    by_job: dict[int, list[Obj]] = {}
    for job_id, obj in group:
        by_job.setdefault(job_id, []).append(obj)
    segments = [
        ({kind: by_job.get(j.id, [])}, j.start_frame, j.stop_frame)
        for j in cluster
        if j.start_frame <= frame <= j.stop_frame
    ]
    merged: list[Obj] = _merge_segments()(segments, dimension="3d" if dimension == "3d" else "2d")[
        kind
    ]
    return merged


@asynccontextmanager
async def open_reader(database: Database) -> AsyncIterator[AnnotationReader]:
    """A reader on its own pooled connection, in a REPEATABLE READ read-only snapshot.

    The snapshot ends in a task of its own that runs to completion however the reader
    ends. A streamed response whose client went away is cancelled at every await until
    it returns (Starlette's anyio cancel scopes); a ROLLBACK cut short there (asyncpg
    first waits for the fetch it was cancelled in to be cancelled on the server) would
    leave the connection inside the transaction, and the pool would hand it out so.
    A connection whose transaction cannot be ended is discarded.
    """
    async with database.engine.connect() as connection:
        conn = await repo.raw_connection(connection)
        transaction = conn.transaction(isolation="repeatable_read", readonly=True)
        await transaction.start()
        try:
            await conn.execute(f"SET LOCAL work_mem = '{repo.READ_WORK_MEM}'")
            yield AnnotationReader(conn)
        finally:
            await _to_completion(_end_reading(connection, conn, transaction))


async def _end_reading(connection: AsyncConnection, conn: Connection, transaction: Any) -> None:
    try:
        await repo.settle(conn)  # a stream left early may be fetching ahead
        await transaction.rollback()  # read only: nothing to commit
    except Exception:
        logger.warning("a read's transaction did not end; its connection is dropped", exc_info=True)
        await connection.invalidate()


async def _to_completion(cleanup: Coroutine[Any, Any, None]) -> None:
    """Run `cleanup` in a task of its own to its end, even when the caller is cancelled
    meanwhile (that cancellation is raised once the cleanup has ended)."""
    task = asyncio.ensure_future(cleanup)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancelled = exc
        else:
            break
    if cancelled is not None:
        raise cancelled


async def json_stream(database: Database, *, job_id: int | None = None,
                      task_id: int | None = None) -> AsyncIterator[bytes]:  # fmt: skip
    """The GET body (`LabeledData`) of a job or a task, as JSON chunks."""
    async with open_reader(database) as reader:
        if job_id is not None:
            stream = await reader.job(job_id)
        else:
            assert task_id is not None
            stream = await reader.task(task_id)
        async for chunk in stream.json():
            yield chunk


# -- the review list --------------------------------------------------------------------

REVIEW_SORTS = {"score": False, "-score": True}
BIGINT_MAX = 2**63 - 1
INTEGER_MAX = 2**31 - 1


def _integer(name: str, value: str | None, *, least: int, most: int) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        number = least - 1
    if not least <= number <= most:
        raise bad_request(f"{name}: {value!r} is not an integer from {least} to {most}", name)
    return number


def _score(name: str, value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 <= number <= 1:
        raise bad_request(f"{name}: {value!r} is not a number in [0, 1]", name)
    return number


def shape_filter(
    *,
    source: Sequence[str] = (),
    sort: str | None = None,
    label_id: str | None = None,
    min_frame: str | None = None,
    max_frame: str | None = None,
    min_score: str | None = None,
    max_score: str | None = None,
) -> repo.ShapeFilter:
    """The review list's query parameters, checked (400 naming the parameter at fault).

    `source` may repeat and may list several sources separated by commas.
    """
    sources = [part.strip() for value in source for part in value.split(",")]
    unknown = [name for name in sources if name not in SOURCES]
    if unknown or (source and not sources):
        raise bad_request(
            f"source: {', '.join(map(repr, unknown or ['']))} is not one of "
            f"{', '.join(sorted(SOURCES))}",
            "source",
        )
    key = (sort or "score").strip()
    if key not in REVIEW_SORTS:
        raise bad_request(f"sort: {sort!r} is not one of {', '.join(REVIEW_SORTS)}", "sort")
    return repo.ShapeFilter(
        sources=tuple(dict.fromkeys(sources)) if sources else None,
        label_id=_integer("label_id", label_id, least=1, most=BIGINT_MAX),
        frames=(
            _integer("min_frame", min_frame, least=0, most=INTEGER_MAX),
            _integer("max_frame", max_frame, least=0, most=INTEGER_MAX),
        ),
        scores=(_score("min_score", min_score), _score("max_score", max_score)),
        descending=REVIEW_SORTS[key],
    )


async def _review(
    session: AsyncSession, jobs: Sequence[JobRange], task_id: int, wanted: repo.ShapeFilter,
    page: PageParams,
) -> tuple[int, list[Obj]]:  # fmt: skip
    conn = await repo.driver_connection(session)
    count, rows = await repo.review_shapes(
        conn, [j.id for j in jobs], wanted, offset=page.offset, limit=page.limit
    )
    if not rows:
        return count, []
    catalog = await repo.load_catalog(conn, task_id)
    items = complete_all(rows, catalog)
    return count, [
        {**as_object(item), "job_id": row[0]} for row, item in zip(rows, items, strict=True)
    ]


async def review_job_shapes(
    session: AsyncSession, ctx: Context, job_id: int, wanted: repo.ShapeFilter, page: PageParams
) -> tuple[int, list[Obj]]:
    """The job's top-level shapes that `wanted` selects, by score then id: how many, and
    the page of them (each as GET annotations gives it, with its `job_id`)."""
    await job_for(session, ctx, job_id, change=False)
    job = await repo.job_range(await repo.driver_connection(session), job_id)
    assert job is not None
    return await _review(session, [job], job.task_id, wanted, page)


async def review_task_shapes(
    session: AsyncSession, ctx: Context, task_id: int, wanted: repo.ShapeFilter, page: PageParams
) -> tuple[int, list[Obj]]:
    """`review_job_shapes` over every annotation job of the task. A shape on a frame that
    two jobs share is stored in each, and listed once per job (unlike the task's GET,
    which merges them)."""
    await task_for(session, ctx, task_id, change=False)
    jobs = await repo.task_jobs(await repo.driver_connection(session), task_id, lock=False)
    return await _review(session, jobs, task_id, wanted, page)


# -- writing ----------------------------------------------------------------------------


def parse_body(raw: bytes) -> Any:
    """The request body as JSON; NaN and Infinity are read (validation refuses them)."""
    try:
        with gc_paused():
            return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return _json_with_constants(raw)
    except ValueError as exc:
        raise unprocessable([("body", f"malformed JSON: {exc}")], "annotations") from exc


def _json_with_constants(raw: bytes) -> Any:
    import json  # noqa: PLC0415 - only for bodies orjson refuses (NaN, Infinity)

    return json.loads(raw)


def _check_version(sent: int | None, current: int, what: str) -> None:
    if sent is not None and sent != current:
        raise Problem(
            409,
            f"The annotations of {what} are at version {current}, not {sent}: "
            "read them again and retry.",
            title="Version conflict",
        )


def _walk(doc: Document) -> Iterable[tuple[str, Obj]]:
    """Every stored object of `doc` with its table, parents before children."""
    for tag in doc.tags:
        yield "tags", tag
    for shape in doc.shapes:
        yield "shapes", shape
        for element in shape.get("elements") or ():
            yield "shapes", element
    for track in doc.tracks:
        yield "tracks", track
        for element in track.get("elements") or ():
            yield "tracks", element
    for track in doc.tracks:
        for part in (track, *(track.get("elements") or ())):
            for keyframe in part["shapes"]:
                yield "track_shapes", keyframe


async def _assign_ids(conn: Connection, doc: Document, keep: dict[str, set[int]]) -> None:
    fresh: dict[str, list[Obj]] = {t: [] for t in repo.COPY_COLUMNS}
    for table, obj in _walk(doc):
        if obj["id"] is None or obj["id"] not in keep.get(table, ()):
            fresh[table].append(obj)
    for table, objects in fresh.items():
        for obj, new_id in zip(
            objects, await repo.reserve_ids(conn, table, len(objects)), strict=True
        ):
            obj["id"] = new_id


def _text(obj: Obj) -> str:
    """The JSON text a read returns for a validated tag or shape (ids assigned)."""
    return orjson.dumps(obj).decode()


def _records(doc: Document, job_id: int) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in repo.COPY_COLUMNS}
    tags, shapes, tracks, keyframes = (out[t] for t in repo.COPY_COLUMNS)
    for t in doc.tags:
        ids, values = attribute_arrays(t["attributes"])
        tags.append((t["id"], job_id, t["label_id"], t["frame"], t["group"], t["source"], ids,
                     values, _text(t)))  # fmt: skip
    for s in doc.shapes:
        text = None if s["elements"] else _text(s)
        for part, parent in ((s, None), *((e, s["id"]) for e in s["elements"])):
            ids, values = attribute_arrays(part["attributes"])
            shapes.append((
                part["id"], job_id, part["label_id"], parent, part["frame"], part["type"],
                part["occluded"], part["outside"], part["z_order"], part["rotation"],
                part["points"], part["group"], part["source"], part["score"], ids, values,
                text if parent is None else None,
            ))  # fmt: skip
    for t in doc.tracks:
        for part, parent in ((t, None), *((e, t["id"]) for e in t["elements"])):
            ids, values = attribute_arrays(part["attributes"])
            tracks.append((part["id"], job_id, part["label_id"], parent, part["frame"],
                           part["group"], part["source"], ids, values))  # fmt: skip
            for k in part["shapes"]:
                ids, values = attribute_arrays(k["attributes"])
                keyframes.append((
                    k["id"], part["id"], job_id, k["frame"], k["type"], k["occluded"],
                    k["outside"], k["z_order"], k["rotation"], k["points"], ids, values,
                ))  # fmt: skip
    return out


async def _insert(conn: Connection, doc: Document, job_id: int, keep: dict[str, set[int]]) -> None:
    await _assign_ids(conn, doc, keep)
    with gc_paused():
        tables = _records(doc, job_id)
    for table, records in tables.items():
        await repo.copy_rows(conn, table, records)


def _requested_ids(objects: Sequence[Obj]) -> list[int]:
    return [obj["id"] for obj in objects if obj.get("id") is not None]


async def _apply(conn: Connection, job: JobRange, action: Action, doc: Document) -> Counts:
    """Apply one job's part of a write (validated, job locked)."""
    if action is Action.PUT:
        cleared = await repo.clear_jobs(conn, [job.id])
        await _insert(conn, doc, job.id, cleared.ids)
        return Counts(created=doc.counts(), deleted=cleared.top_level)
    if action is Action.CREATE:
        await _insert(conn, doc, job.id, {})
        return Counts(created=doc.counts())
    wanted = {key: _requested_ids(getattr(doc, key)) for key in TABLE_OF}
    cleared = await repo.delete_objects(conn, job.id, wanted)
    if action is Action.DELETE:
        return Counts(deleted=cleared.top_level)
    await _insert(conn, doc, job.id, cleared.ids)
    return Counts(updated=doc.counts())


async def _check_update_ids(
    conn: Connection, jobs: Sequence[JobRange], doc: Document
) -> dict[str, dict[int, int]]:
    """{kind: {object id: job id}} for an update; 422 for ids not in the jobs."""
    owners: dict[str, dict[int, int]] = {}
    errors: list[tuple[str, str]] = []
    for key, table in TABLE_OF.items():
        objects: list[Obj] = getattr(doc, key)
        owners[key] = await repo.existing_top_level(
            conn, [j.id for j in jobs], table, _requested_ids(objects)
        )
        for i, obj in enumerate(objects):
            if obj["id"] is None:
                errors.append((f"body.{key}[{i}].id", "an id is required"))
            elif obj["id"] not in owners[key]:
                errors.append((f"body.{key}[{i}].id", f"no {key[:-1]} {obj['id']} here"))
    if errors:
        raise unprocessable(errors, "annotations")
    return owners


async def _publish(outbox: Outbox, session: AsyncSession, job: JobRange, version: int,
                   counts: Counts) -> None:  # fmt: skip
    await outbox.add(
        session,
        EVENT_SUBJECT,
        {
            "job_id": job.id,
            "task_id": job.task_id,
            "version": version,
            "created": counts.created,
            "updated": counts.updated,
            "deleted": counts.deleted,
        },
    )


def _deleted_body(body: Obj, version: int) -> Obj:
    """The response of a PATCH delete: its body's objects, with the new version."""
    return {"version": version, **{k: body.get(k) or [] for k in TABLE_OF}, "intervals": []}


def _document_body(doc: Document, version: int) -> Obj:
    return {"version": version, "tags": doc.tags, "shapes": doc.shapes, "tracks": doc.tracks,
            "intervals": []}  # fmt: skip


async def write_job(
    session: AsyncSession, ctx: Context, outbox: Outbox, *, job_id: int, action: Action, body: Any
) -> Obj:
    """PUT or PATCH a job's annotations; the stored document with its new version."""
    written = await apply_to_job(session, ctx, outbox, job_id=job_id, action=action, body=body)
    if action is Action.DELETE:
        return _deleted_body(body, written.version)
    return _document_body(written.doc, written.version)


async def apply_to_job(
    session: AsyncSession, ctx: Context, outbox: Outbox, *, job_id: int, action: Action, body: Any
) -> Written:
    """Validate and apply a write to a job in the session's transaction (`write_job`
    without its response)."""
    await job_for(session, ctx, job_id, change=True)
    conn = await repo.driver_connection(session)
    job = await repo.job_range(conn, job_id)
    assert job is not None
    catalog = await repo.load_catalog(conn, job.task_id)
    validator = Validator(catalog, job.covers, f"job {job_id} (frames {job.start_frame}-"
                          f"{job.stop_frame})")  # fmt: skip
    with gc_paused():
        if action is Action.DELETE:
            version, ids = validator.ids_only(body)
            doc = Document(version)
        else:
            doc = validator.document(body)
    job = await repo.lock_job(conn, job_id)
    _check_version(doc.version, job.version, f"job {job_id}")
    if action is Action.DELETE:
        cleared = await repo.delete_objects(conn, job_id, ids)
        counts = Counts(deleted=cleared.top_level)
    else:
        if action is Action.UPDATE:
            await _check_update_ids(conn, [job], doc)
        counts = await _apply(conn, job, action, doc)
    version = await repo.bump_version(conn, job_id)
    await _publish(outbox, session, job, version, counts)
    return Written(doc, version, counts.deleted)


async def clear_job(session: AsyncSession, ctx: Context, outbox: Outbox, job_id: int) -> None:
    """DELETE: remove every annotation of the job."""
    await job_for(session, ctx, job_id, change=True)
    conn = await repo.driver_connection(session)
    job = await repo.lock_job(conn, job_id)
    cleared = await repo.clear_jobs(conn, [job_id])
    version = await repo.bump_version(conn, job_id)
    await _publish(outbox, session, job, version, Counts(deleted=cleared.top_level))


# -- task-level writes ----------------------------------------------------------------


class JobsByFrame:
    """Which of a task's jobs cover a frame, in the jobs' order, found by bisection over
    their start frames (a task-level write asks once per object: a linear scan of the
    jobs made 200,000 tags over 20 jobs spend seconds here)."""

    def __init__(self, jobs: Sequence[JobRange]) -> None:
        self._jobs = sorted(enumerate(jobs), key=lambda pair: pair[1].start_frame)
        self._starts = [job.start_frame for _, job in self._jobs]
        self._span = max((job.stop_frame - job.start_frame for job in jobs), default=0)

    def __call__(self, frame: int) -> list[JobRange]:
        """The jobs that hold `frame`."""
        found = list(self._candidates(frame))
        if len(found) == 1:
            return [found[0][1]]
        found.sort(key=lambda pair: pair[0])
        return [job for _, job in found]

    def holds(self, frame: int) -> bool:
        """Whether any job holds `frame`."""
        return next(self._candidates(frame), None) is not None

    def _candidates(self, frame: int) -> Iterator[tuple[int, JobRange]]:
        k = bisect.bisect_right(self._starts, frame) - 1
        lowest = frame - self._span
        while k >= 0 and self._starts[k] >= lowest:
            pair = self._jobs[k]
            if pair[1].covers(frame):
                yield pair
            k -= 1


def _split_by_frame(doc: Document, jobs: Sequence[JobRange]) -> dict[int, Document]:
    """Each job's share of `doc`, as CVAT slices task annotations into segments."""
    parts = {j.id: Document(None) for j in jobs}
    covering = JobsByFrame(jobs)
    for key in ("tags", "shapes"):
        for obj in getattr(doc, key):
            for n, job in enumerate(covering(obj["frame"])):
                getattr(parts[job.id], key).append(obj if n == 0 else copy.deepcopy(obj))
    for track in doc.tracks:
        for job in jobs:
            sliced = slice_track(track, job.start_frame, job.stop_frame)
            if sliced is not None:
                parts[job.id].tracks.append(sliced)
    return parts


def _visible_in(track: Obj, start: int, stop: int) -> bool:
    shapes = track["shapes"]
    for prev, shape in itertools.pairwise(shapes):
        if not prev["outside"] and min(shape["frame"], stop) >= max(prev["frame"], start):
            return True
    return not shapes[-1]["outside"] and shapes[-1]["frame"] <= stop


def slice_track(track: Obj, start: int, stop: int) -> Obj | None:
    """The part of a track on frames [start, stop] (a copy), or None if it is not there.

    As CVAT's `AnnotationIR._slice_track`: keyframes inside the range are kept (leading
    outside ones dropped); a track that enters the range between keyframes gets an
    interpolated keyframe at its first visible frame, and one that goes on after the
    range gets one at `stop`; skeleton elements are sliced the same way.
    """
    shapes = track["shapes"]
    inside = [s for s in shapes if start <= s["frame"] <= stop]
    if len(inside) == len(shapes):
        return copy.deepcopy(track)
    if not _visible_in(track, start, stop):
        return None
    while inside and inside[0]["outside"]:
        inside.pop(0)
    out = {k: v for k, v in track.items() if k not in ("shapes", "elements")}
    out["id"] = None
    out["shapes"] = [dict(s, id=None) for s in copy.deepcopy(inside)]
    scoped = [s for s in _interpolated(track, start, stop) if start <= s["frame"] <= stop]
    while scoped and scoped[0]["outside"]:
        scoped.pop(0)
    if scoped:
        if not scoped[0]["keyframe"]:
            out["shapes"].insert(0, _as_keyframe(track, scoped[0]))
        last_key = shapes[-1]["frame"]
        last = scoped[-1]
        if last_key > stop and not last["keyframe"] and out["shapes"][-1]["frame"] < last["frame"]:
            out["shapes"].append(_as_keyframe(track, last))
    if not out["shapes"]:
        return None
    out["frame"] = out["shapes"][0]["frame"]
    if "elements" in track:
        elements = [slice_track(e, start, stop) for e in track["elements"]]
        out["elements"] = [e for e in elements if e is not None]
    return out


def _interpolated(track: Obj, start: int, stop: int) -> list[Obj]:
    plain = {k: v for k, v in track.items() if k != "attributes"}
    plain["attributes"] = []
    if "elements" in plain:
        plain["elements"] = [dict(e, attributes=[]) for e in plain["elements"]]
    from tessera.geometry.interpolation import interpolate_track  # noqa: PLC0415 - as merge

    shapes: list[Obj] = interpolate_track(plain, stop, start_frame=min(start, stop))
    return shapes


def _as_keyframe(track: Obj, shape: Obj) -> Obj:
    left = [s for s in track["shapes"] if s["frame"] <= shape["frame"]]
    attributes = copy.deepcopy(left[-1]["attributes"]) if left else []
    return {
        "type": shape["type"],
        "occluded": shape["occluded"],
        "outside": shape["outside"],
        "z_order": shape["z_order"],
        "rotation": float(shape["rotation"]),
        "points": [float(v) for v in shape["points"]],
        "id": None,
        "frame": shape["frame"],
        "attributes": attributes,
    }


def _split_by_owner(
    doc: Document, jobs: Sequence[JobRange], owners: dict[str, dict[int, int]]
) -> dict[int, Document]:
    parts = {j.id: Document(None) for j in jobs}
    by_id = {j.id: j for j in jobs}
    errors: list[tuple[str, str]] = []
    for key in TABLE_OF:
        for i, obj in enumerate(getattr(doc, key)):
            job = by_id[owners[key][obj["id"]]]
            frames = [obj["frame"]]
            if key == "tracks":
                frames = [s["frame"] for part in (obj, *obj["elements"]) for s in part["shapes"]]
            if not all(job.covers(f) for f in frames):
                message = f"outside job {job.id}, which holds this object"
                errors.append((f"body.{key}[{i}].frame", message))
            getattr(parts[job.id], key).append(obj)
    if errors:
        raise unprocessable(errors, "annotations")
    return parts


async def write_task(
    session: AsyncSession, ctx: Context, outbox: Outbox, *, task_id: int, action: Action, body: Any
) -> Obj:
    """PUT or PATCH a task's annotations, split across its jobs; the merged result."""
    written = await apply_to_task(session, ctx, outbox, task_id=task_id, action=action, body=body)
    if action is Action.DELETE:
        return _deleted_body(body, written.version)
    stream = await AnnotationReader(await repo.driver_connection(session)).task(task_id)
    return {
        "version": stream.version,
        "tags": [t async for t in stream.tags()],
        "shapes": [s async for s in stream.shapes()],
        "tracks": [t async for t in stream.tracks()],
        "intervals": [],
    }


async def apply_to_task(
    session: AsyncSession, ctx: Context, outbox: Outbox, *, task_id: int, action: Action, body: Any
) -> Written:
    """Validate and apply a write to a task's jobs in the session's transaction
    (`write_task` without reading the result back).

    PUT and create split objects by frame (an object in an overlap goes to every job
    that covers it, tracks are sliced per job); update and delete go to the job that
    holds each object.
    """
    await task_for(session, ctx, task_id, change=True)
    conn = await repo.driver_connection(session)
    jobs = await repo.task_jobs(conn, task_id, lock=False)
    catalog = await repo.load_catalog(conn, task_id)
    covering = JobsByFrame(jobs)
    validator = Validator(catalog, covering.holds, f"the jobs of task {task_id}")
    with gc_paused():
        if action is Action.DELETE:
            version, ids = validator.ids_only(body)
            doc = Document(version)
        else:
            doc = validator.document(body)
    jobs = await repo.task_jobs(conn, task_id, lock=True)
    _check_version(doc.version, sum(j.version for j in jobs), f"task {task_id}")
    job_ids = [j.id for j in jobs]
    if action is Action.DELETE:
        owners = {k: await repo.existing_top_level(conn, job_ids, t, ids[k])
                  for k, t in TABLE_OF.items()}  # fmt: skip
        parts: dict[int, Document] = {j.id: Document(None) for j in jobs}
        for key, found in owners.items():
            for object_id, job_id in found.items():
                getattr(parts[job_id], key).append({"id": object_id})
    elif action is Action.UPDATE:
        parts = _split_by_owner(doc, jobs, await _check_update_ids(conn, jobs, doc))
    else:
        parts = _split_by_frame(doc, jobs)
    versions = {job.id: job.version for job in jobs}
    deleted = 0
    for job in jobs:
        part = parts[job.id]
        if action is not Action.PUT and not part.counts():
            continue
        counts = await _apply(conn, job, action, part)
        versions[job.id] = await repo.bump_version(conn, job.id)
        deleted += counts.deleted
        await _publish(outbox, session, job, versions[job.id], counts)
    return Written(doc, sum(versions.values()), deleted)


async def clear_task(session: AsyncSession, ctx: Context, outbox: Outbox, task_id: int) -> None:
    """DELETE: remove every annotation of every job of the task."""
    await task_for(session, ctx, task_id, change=True)
    conn = await repo.driver_connection(session)
    for job in await repo.task_jobs(conn, task_id, lock=True):
        cleared = await repo.clear_jobs(conn, [job.id])
        version = await repo.bump_version(conn, job.id)
        await _publish(outbox, session, job, version, Counts(deleted=cleared.top_level))
