"""SQL of the annotations data path, on the asyncpg connection under SQLAlchemy.

Bulk paths bypass SQLAlchemy: ids are reserved from the tables' identity sequences in
one round trip (`nextval` over `generate_series`, returned as one array), rows go in
with binary COPY (`copy_records_to_table`), and reads run through server-side cursors
(`Connection.cursor`, fetched in batches, one batch ahead) so memory does not grow
with the job. Everything runs inside the caller's transaction.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tessera.annotations.annotations.validation import (
    SOURCES,
    AttributeSpec,
    LabelCatalog,
    LabelSpec,
)

S = "annotations"
Connection = asyncpg.Connection
Record = asyncpg.Record
FETCH_BATCH = 5000
READ_WORK_MEM = "64MB"
_JOB_ORDER = re.compile(r"/\*jobs\*/.*?/\*end\*/", re.DOTALL)

TAG_COLUMNS = (
    "id", "job_id", "label_id", "frame", "group", "source", "attr_ids", "attr_values", "doc",
)  # fmt: skip
SHAPE_COLUMNS = (
    "id", "job_id", "label_id", "parent_id", "frame", "type", "occluded", "outside",
    "z_order", "rotation", "points", "group", "source", "score", "attr_ids", "attr_values",
    "doc",
)  # fmt: skip
TRACK_COLUMNS = (
    "id", "job_id", "label_id", "parent_id", "frame", "group", "source", "attr_ids",
    "attr_values",
)  # fmt: skip
TRACK_SHAPE_COLUMNS = (
    "id", "track_id", "job_id", "frame", "type", "occluded", "outside", "z_order",
    "rotation", "points", "attr_ids", "attr_values",
)  # fmt: skip
COPY_COLUMNS = {
    "tags": TAG_COLUMNS,
    "shapes": SHAPE_COLUMNS,
    "tracks": TRACK_COLUMNS,
    "track_shapes": TRACK_SHAPE_COLUMNS,
}


# Reads select job_id first so that task-level readers can tell jobs apart; `$1` is an
# array of job ids in merge order (one id for a job-level read). Tags and shapes come
# as JSON text, with the frame, the label and the number of stored attributes beside
# it, so that the service only passes text on: the text stored with the row when it was
# written (`doc`), or for rows without one (skeletons, whose text includes their
# elements, and rows older than the column) built by PostgreSQL in CVAT's field order,
# in the layout of PostgreSQL's `json_build_object`. That text is concatenated from the
# columns' text forms (explicit casts, so that each output function is looked up once)
# rather than built with `json_build_object`, which costs several times more per row:
# numbers and arrays of float8 print as in JSON, booleans are spelt out, attribute values
# go through `to_json`; `type` and `source` are quoted as they are (their CHECK
# constraints allow only plain words). One or two attributes need no subquery.
def _attributes(t: str) -> str:
    def attribute(n: int) -> str:
        return (
            f"""'{{"spec_id" : ' || {t}.attr_ids[{n}]::text || ', "value" : ' || """
            f"to_json({t}.attr_values[{n}])::text || '}}'"
        )

    return f"""(CASE cardinality({t}.attr_ids) WHEN 0 THEN '[]'
    WHEN 1 THEN '[' || {attribute(1)} || ']'
    WHEN 2 THEN '[' || {attribute(1)} || ',' || {attribute(2)} || ']'
    ELSE '[' || (SELECT string_agg('{{"spec_id" : ' || a.i::text || ', "value" : '
                                   || to_json(a.v)::text || '}}', ',' ORDER BY a.n)
                 FROM unnest({t}.attr_ids, {t}.attr_values) WITH ORDINALITY AS a(i, v, n))
         || ']' END)"""


def _flag(column: str) -> str:
    return f"CASE WHEN {column} THEN 'true' ELSE 'false' END"


def _shape_text(t: str, elements: str) -> str:
    """SQL text of a shape row `t` as a `LabeledShape` JSON object."""
    return (
        f"""'{{"type" : "' || {t}.type || '"' || ', "occluded" : ' || {_flag(f"{t}.occluded")}
    || ', "outside" : ' || {_flag(f"{t}.outside")} || ', "z_order" : ' || {t}.z_order::text
    || ', "rotation" : ' || {t}.rotation::text
    || ', "points" : [' || array_to_string({t}.points, ',') || '], "id" : ' || {t}.id::text
    || ', "frame" : ' || {t}.frame::text || ', "label_id" : ' || {t}.label_id::text
    || ', "group" : ' || {t}."group"::text || ', "source" : "' || {t}.source || '"'
    || ', "attributes" : ' || {_attributes(t)}"""
        + elements
        + f"""
    || ', "score" : ' || {t}.score::text || '}}'"""
    )


_ELEMENTS = f"""
    || ', "elements" : ' || CASE WHEN s.type = 'skeleton' THEN '[' || coalesce((
        SELECT string_agg({_shape_text("e", "")}, ',' ORDER BY e.id)
        FROM {S}.shapes e WHERE e.parent_id = s.id), '') || ']' ELSE '[]' END"""
TAGS_SQL = f"""
SELECT t.job_id, t.frame, t.label_id, cardinality(t.attr_ids),
    coalesce(t.doc, '{{"id" : ' || t.id::text || ', "frame" : ' || t.frame::text
    || ', "label_id" : ' || t.label_id::text || ', "group" : ' || t."group"::text
    || ', "source" : "' || t.source || '"'
    || ', "attributes" : ' || {_attributes("t")} || '}}')
FROM {S}.tags t WHERE t.job_id = ANY($1::bigint[])
ORDER BY t.frame, /*jobs*/ array_position($1::bigint[], t.job_id), /*end*/ t.id
"""
SHAPES_SQL = f"""
SELECT s.job_id, s.frame, s.label_id,
       CASE WHEN s.type = 'skeleton' THEN -1 ELSE cardinality(s.attr_ids) END,
       coalesce(s.doc, {_shape_text("s", _ELEMENTS)})
FROM {S}.shapes s WHERE s.job_id = ANY($1::bigint[]) AND s.parent_id IS NULL
ORDER BY s.frame, /*jobs*/ array_position($1::bigint[], s.job_id), /*end*/ s.id
"""
TRACKS_SQL = f"""
SELECT t.job_id, t.id, t.parent_id, t.label_id, t.frame, t."group", t.source,
       t.attr_ids, t.attr_values,
       s.id, s.frame, s.type, s.occluded, s.outside, s.z_order, s.rotation, s.points,
       s.attr_ids, s.attr_values
FROM {S}.tracks t
JOIN {S}.track_shapes s ON s.track_id = t.id
LEFT JOIN {S}.tracks p ON p.id = t.parent_id
WHERE t.job_id = ANY($1::bigint[])
ORDER BY coalesce(p.frame, t.frame), array_position($1::bigint[], t.job_id),
         coalesce(t.parent_id, t.id), t.parent_id IS NOT NULL, t.id, s.frame
"""

# The review list (`review_shapes`): top-level shapes with the columns SHAPES_SQL reads,
# filtered and ordered by score; ties go by id in the same direction, so that `-score`
# is exactly the reverse of `score`. `$1` holds the job ids, `$2` the sources, `$3` how
# many rows a page needs (offset + limit; null for every row), `$4` and `$5` the page;
# `/*where*/` the other conditions and `/*order*/` the direction. Each (job, source) pair is
# read off the (job_id, source, score, id) index in order, at most `$3` rows of it, and
# only the page's rows are turned into text: a page of the least certain shapes of a
# task costs about the same whatever the number of its shapes (one ordered scan over all
# the task's jobs and sources would sort every matching shape first).
REVIEW_SQL = f"""
WITH page AS (
    SELECT c.id, c.score
    FROM unnest($1::bigint[]) AS j(id) CROSS JOIN unnest($2::text[]) AS src(name)
    CROSS JOIN LATERAL (
        SELECT s.id, s.score FROM {S}.shapes s
        WHERE s.job_id = j.id AND s.source = src.name AND s.parent_id IS NULL /*where*/
        ORDER BY s.score /*order*/, s.id /*order*/ LIMIT $3::bigint
    ) AS c
    ORDER BY c.score /*order*/, c.id /*order*/ LIMIT $4::bigint OFFSET $5::bigint
)
SELECT s.job_id, s.frame, s.label_id,
       CASE WHEN s.type = 'skeleton' THEN -1 ELSE cardinality(s.attr_ids) END,
       coalesce(s.doc, {_shape_text("s", _ELEMENTS)})
FROM page JOIN {S}.shapes s ON s.id = page.id
ORDER BY page.score /*order*/, page.id /*order*/
"""
REVIEW_COUNT_SQL = f"""
SELECT count(*) FROM {S}.shapes s
WHERE s.job_id = ANY($1::bigint[]) AND s.source = ANY($2::text[]) AND s.parent_id IS NULL
      /*where*/
"""


@dataclass(frozen=True)
class JobRange:
    """The frames an annotation job covers, and its version."""

    id: int
    task_id: int
    start_frame: int
    stop_frame: int
    frames: frozenset[int] | None
    version: int

    def covers(self, frame: int) -> bool:
        """Whether `frame` belongs to this job."""
        if not self.start_frame <= frame <= self.stop_frame:
            return False
        return self.frames is None or frame in self.frames


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, inside the session's transaction."""
    connection = await session.connection()
    return await raw_connection(connection)


async def raw_connection(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy async connection."""
    fairy = await connection.get_raw_connection()
    driver: asyncpg.Connection = fairy.driver_connection
    return driver


def _job(row: asyncpg.Record) -> JobRange:
    frames = frozenset(row["frames"]) if row["frames"] is not None else None
    return JobRange(
        row["id"], row["task_id"], row["start_frame"], row["stop_frame"], frames, row["version"]
    )


_JOB_FIELDS = "id, task_id, start_frame, stop_frame, frames, version"


async def lock_job(conn: asyncpg.Connection, job_id: int) -> JobRange:
    """Lock the job row until the transaction ends (writers of one job queue here)."""
    row = await conn.fetchrow(
        f"SELECT {_JOB_FIELDS} FROM {S}.jobs WHERE id = $1 FOR UPDATE", job_id
    )
    assert row is not None
    return _job(row)


async def task_jobs(conn: asyncpg.Connection, task_id: int, *, lock: bool) -> list[JobRange]:
    """The task's annotation jobs in merge order (start frame, then id); locked if asked."""
    rows = await conn.fetch(
        f"SELECT {_JOB_FIELDS} FROM {S}.jobs WHERE task_id = $1 AND type = 'annotation' "
        f"ORDER BY id {'FOR UPDATE' if lock else ''}",
        task_id,
    )
    return sorted((_job(row) for row in rows), key=lambda j: (j.start_frame, j.id))


async def job_range(conn: asyncpg.Connection, job_id: int) -> JobRange | None:
    """The job's frame range and version, unlocked; None if it does not exist."""
    row = await conn.fetchrow(f"SELECT {_JOB_FIELDS} FROM {S}.jobs WHERE id = $1", job_id)
    return _job(row) if row is not None else None


async def bump_version(conn: asyncpg.Connection, job_id: int) -> int:
    """Increment the job's version (and touch it); the new version."""
    version: int = await conn.fetchval(
        f"UPDATE {S}.jobs SET version = version + 1, updated_date = now() "
        "WHERE id = $1 RETURNING version",
        job_id,
    )
    return version


async def load_catalog(conn: asyncpg.Connection, task_id: int) -> LabelCatalog:
    """The labels the task's annotations may use (the project's when it has one)."""
    task = await conn.fetchrow(
        f"SELECT project_id, dimension FROM {S}.tasks WHERE id = $1", task_id
    )
    assert task is not None
    if task["project_id"] is not None:
        owner, owner_id = "project_id", task["project_id"]
    else:
        owner, owner_id = "task_id", task_id
    rows = await conn.fetch(
        f"SELECT id, name, type, parent_id FROM {S}.labels WHERE {owner} = $1", owner_id
    )
    specs = await conn.fetch(
        f"SELECT a.id, a.label_id, a.input_type, a.mutable, a.default_value, a.values "
        f"FROM {S}.attribute_specs a JOIN {S}.labels l ON l.id = a.label_id "
        f"WHERE l.{owner} = $1 ORDER BY a.id",
        owner_id,
    )
    attributes: dict[int, dict[int, AttributeSpec]] = {row["id"]: {} for row in rows}
    for spec in specs:
        attributes[spec["label_id"]][spec["id"]] = AttributeSpec(
            spec["id"], spec["input_type"], spec["mutable"], spec["default_value"],
            tuple(spec["values"]),
        )  # fmt: skip
    children: dict[int, set[int]] = {}
    for row in rows:
        if row["parent_id"] is not None:
            children.setdefault(row["parent_id"], set()).add(row["id"])
    labels = {
        row["id"]: LabelSpec(
            row["id"],
            row["name"],
            row["type"],
            row["parent_id"],
            attributes[row["id"]],
            frozenset(children.get(row["id"], ())),
        )
        for row in rows
    }
    return LabelCatalog(labels, task["dimension"])


async def reserve_ids(conn: asyncpg.Connection, table: str, count: int) -> list[int]:
    """`count` fresh ids from `table`'s identity sequence, in one round trip."""
    if count == 0:
        return []
    ids: list[int] = await conn.fetchval(
        "SELECT array_agg(nextval(pg_get_serial_sequence($1, 'id')) ORDER BY g) "
        "FROM generate_series(1, $2) AS g",
        f"{S}.{table}",
        count,
    )
    return ids


async def copy_rows(
    conn: asyncpg.Connection, table: str, records: Sequence[tuple[Any, ...]]
) -> None:
    """Binary COPY of `records` (in COPY_COLUMNS order) into `table`."""
    if records:
        await conn.copy_records_to_table(
            table, records=records, columns=COPY_COLUMNS[table], schema_name=S
        )


@dataclass
class Cleared:
    """What a delete removed: top-level counts, and every removed id per table."""

    top_level: int
    ids: dict[str, set[int]]


async def clear_jobs(conn: asyncpg.Connection, job_ids: Sequence[int]) -> Cleared:
    """Delete every annotation of the jobs."""
    ids: dict[str, set[int]] = {}
    top = 0
    ids["track_shapes"] = await _delete_ids(
        conn, f"DELETE FROM {S}.track_shapes WHERE job_id = ANY($1) RETURNING id", job_ids
    )
    for table in ("tracks", "shapes"):
        rows = await conn.fetch(
            f"DELETE FROM {S}.{table} WHERE job_id = ANY($1) RETURNING id, parent_id", job_ids
        )
        ids[table] = {row[0] for row in rows}
        top += sum(1 for row in rows if row[1] is None)
    ids["tags"] = await _delete_ids(
        conn, f"DELETE FROM {S}.tags WHERE job_id = ANY($1) RETURNING id", job_ids
    )
    return Cleared(top + len(ids["tags"]), ids)


async def delete_objects(
    conn: asyncpg.Connection, job_id: int, wanted: Mapping[str, Sequence[int]]
) -> Cleared:
    """Delete the given top-level tags, shapes and tracks of the job with their parts.

    Ids that are not top-level objects of this job are ignored.
    """
    ids: dict[str, set[int]] = {}
    top = 0
    ids["tags"] = await _delete_ids(
        conn,
        f"DELETE FROM {S}.tags WHERE job_id = $1 AND id = ANY($2) RETURNING id",
        job_id,
        wanted["tags"],
    )
    top += len(ids["tags"])
    roots = await _top_level(conn, "shapes", job_id, wanted["shapes"])
    ids["shapes"] = await _delete_ids(
        conn,
        f"DELETE FROM {S}.shapes WHERE job_id = $1 AND (id = ANY($2) OR parent_id = ANY($2)) "
        "RETURNING id",
        job_id,
        roots,
    )
    top += len(roots)
    roots = await _top_level(conn, "tracks", job_id, wanted["tracks"])
    subtree = (
        f"SELECT id FROM {S}.tracks WHERE job_id = $1 AND (id = ANY($2) OR parent_id = ANY($2))"
    )
    ids["track_shapes"] = await _delete_ids(
        conn,
        f"DELETE FROM {S}.track_shapes WHERE track_id IN ({subtree}) RETURNING id",
        job_id,
        roots,
    )
    ids["tracks"] = await _delete_ids(
        conn, f"DELETE FROM {S}.tracks WHERE id IN ({subtree}) RETURNING id", job_id, roots
    )
    top += len(roots)
    return Cleared(top, ids)


async def _top_level(
    conn: asyncpg.Connection, table: str, job_id: int, wanted: Sequence[int]
) -> list[int]:
    if not wanted:
        return []
    rows = await conn.fetch(
        f"SELECT id FROM {S}.{table} WHERE job_id = $1 AND parent_id IS NULL AND id = ANY($2)",
        job_id,
        wanted,
    )
    return [row[0] for row in rows]


async def existing_top_level(
    conn: asyncpg.Connection, job_ids: Sequence[int], table: str, wanted: Sequence[int]
) -> dict[int, int]:
    """Which of `wanted` are top-level objects of the jobs: {object id: job id}."""
    if not wanted:
        return {}
    parent = "" if table == "tags" else "AND parent_id IS NULL"
    rows = await conn.fetch(
        f"SELECT id, job_id FROM {S}.{table} WHERE job_id = ANY($1) {parent} AND id = ANY($2)",
        job_ids,
        wanted,
    )
    return {row[0]: row[1] for row in rows}


async def _delete_ids(conn: asyncpg.Connection, sql: str, *args: Any) -> set[int]:
    return {row[0] for row in await conn.fetch(sql, *args)}


# The batch `cursor` is fetching ahead on a connection, by `id(connection)`.
_fetching_ahead: dict[int, asyncio.Future[list[asyncpg.Record]]] = {}


async def cursor(
    conn: asyncpg.Connection, sql: str, job_ids: Sequence[int]
) -> AsyncIterator[list[asyncpg.Record]]:
    """Rows of `sql` for the jobs, in batches, through a server-side cursor.

    Rows of several jobs on one frame come in the jobs' order; for one job the order
    needs no job key, and the cursor is planned with sorting priced out, so that
    PostgreSQL follows the (job_id, frame, id) index and streams rows as they are
    fetched rather than sorting the whole job first (a sort of 100,000 shapes' text took
    longer than reading them; right after a large write the statistics that would show
    it are stale). Must run inside a transaction. The next batch is fetched while the
    caller works on the current one (PostgreSQL and the service overlap), so the
    connection is busy until the iterator ends: consume one cursor at a time, and call
    `settle` before using the connection for anything else when an iterator is left
    early.
    """
    if len(job_ids) == 1:
        await conn.execute("SET LOCAL enable_sort = off")
        cur = await conn.cursor(one_job_sql(sql), list(job_ids))
        await conn.execute("SET LOCAL enable_sort = on")
    else:
        cur = await conn.cursor(sql, list(job_ids))
    batch = await cur.fetch(FETCH_BATCH)
    while len(batch) == FETCH_BATCH:
        _fetching_ahead[id(conn)] = asyncio.ensure_future(cur.fetch(FETCH_BATCH))
        yield batch
        batch = await _fetching_ahead.pop(id(conn))
    if batch:
        yield batch


def fetch_ahead(conn: asyncpg.Connection, fetch: Coroutine[Any, Any, list[asyncpg.Record]]) -> None:
    """Run `fetch` (a batch of a cursor on `conn`) while the caller goes on: one at a
    time per connection. `fetched_ahead` gives its rows; `settle` waits for it when it
    is left."""
    _fetching_ahead[id(conn)] = asyncio.ensure_future(fetch)


async def fetched_ahead(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The rows of the batch `fetch_ahead` started on `conn` (it stays registered for
    `settle` until it has landed, should the caller be cancelled meanwhile)."""
    rows: list[asyncpg.Record] = await _fetching_ahead[id(conn)]
    del _fetching_ahead[id(conn)]
    return rows


def one_job_sql(sql: str) -> str:
    """`sql` for a single job: an equality on job_id (which an index can deliver in
    order, unlike `= ANY`) and no job key in the order."""
    return _JOB_ORDER.sub("", sql).replace("= ANY($1::bigint[])", "= ($1::bigint[])[1]", 1)


async def settle(conn: asyncpg.Connection) -> None:
    """Wait for the batch a `cursor` left early is still fetching on `conn`, if any."""
    pending = _fetching_ahead.pop(id(conn), None)
    if pending is not None:
        await asyncio.wait({pending})
        if not pending.cancelled():
            pending.exception()  # retrieved: the reader is gone, and so is its error


@dataclass(frozen=True)
class ShapeFilter:
    """Which top-level shapes the review list holds, and in which order.

    `sources` None: every source; `frames` and `scores` are inclusive (low, high) bounds,
    None where open.
    """

    sources: tuple[str, ...] | None = None
    label_id: int | None = None
    frames: tuple[int | None, int | None] = (None, None)
    scores: tuple[float | None, float | None] = (None, None)
    descending: bool = False


def _review_where(wanted: ShapeFilter, first: int) -> tuple[str, list[Any]]:
    """`AND ...` for the label, frames and scores `wanted` bounds, with its arguments
    numbered from `$first`."""
    conditions: list[str] = []
    args: list[Any] = []
    if wanted.label_id is not None:
        args.append(wanted.label_id)
        conditions.append(f"s.label_id = ${first + len(args) - 1}::bigint")
    for column, (low, high), cast in (("frame", wanted.frames, "integer"),
                                      ("score", wanted.scores, "float8")):  # fmt: skip
        for bound, operator in ((low, ">="), (high, "<=")):
            if bound is not None:
                args.append(bound)
                conditions.append(f"s.{column} {operator} ${first + len(args) - 1}::{cast}")
    return "".join(f" AND {c}" for c in conditions), args


async def review_shapes(
    conn: asyncpg.Connection,
    job_ids: Sequence[int],
    wanted: ShapeFilter,
    *,
    offset: int,
    limit: int | None,
) -> tuple[int, list[asyncpg.Record]]:
    """How many top-level shapes of the jobs `wanted` holds, and the page of them from
    `offset` (at most `limit`; every one when None) by score, then id, as rows of
    (job_id, frame, label_id, stored attribute count, JSON text) like SHAPES_SQL's."""
    if not job_ids:
        return 0, []
    sources = list(wanted.sources) if wanted.sources is not None else sorted(SOURCES)
    where, args = _review_where(wanted, 3)
    count: int = await conn.fetchval(
        REVIEW_COUNT_SQL.replace("/*where*/", where), list(job_ids), sources, *args
    )
    if count <= offset:
        return count, []
    where, args = _review_where(wanted, 6)
    order = "DESC" if wanted.descending else "ASC"
    sql = REVIEW_SQL.replace("/*where*/", where).replace("/*order*/", order)
    needed = None if limit is None else offset + limit
    rows = await conn.fetch(sql, list(job_ids), sources, needed, limit, offset, *args)
    return count, rows
