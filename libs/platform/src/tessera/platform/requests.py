"""Long-running requests (`/api/requests/{rq_id}`) with status and progress, as CVAT's.

A service that starts background work (task creation, export, import, auto-annotation)
records it in its own `requests` table and answers `202 {"rq_id": ...}`; the client
polls `GET /api/requests/{rq_id}`. Request ids start with the name of the service that
owns them (`ingest-...`), which is how the router sends a poll to the right service.

Status moves `queued` -> `started` -> `finished` | `failed`; `progress` is a fraction in
[0, 1]. Every change of status, and progress in steps of at least `PROGRESS_STEP`, is
also published as a `<service>.requests.updated` event through the outbox, so nothing a
client could see in a poll is missing from the event stream. A service whose work runs
in its own process fails, at its next start, the requests a restart left `queued` or
`started` (`fail_interrupted`): their work died with the process, and the client must be
told rather than wait forever. A service that hands its work to a JetStream work queue
(ingest's task creation) does not: the queue gives unfinished work to another worker.

A request's end may also publish events of the service's own (`finish` and `fail` take
them, such as export's `export.finished`): they are written to the outbox in the
transaction that ends the request, and only when it did end it, so a request that had
already ended (cancelled by its owner, or finished by another attempt) publishes none.
"""

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.platform.auth import CurrentUser, Principal
from tessera.platform.bus import Outbox
from tessera.platform.db import Database, DbSession
from tessera.platform.errors import NotFound, Problem
from tessera.platform.listing import Field, ListSpec, parse_list_query
from tessera.platform.pagination import Page, PageParams, page_params
from tessera.platform.proxying import public_url

Status = Literal["queued", "started", "finished", "failed"]
STATUSES: tuple[Status, ...] = ("queued", "started", "finished", "failed")
OPEN: tuple[Status, ...] = ("queued", "started")
REQUEST_FILTERS = (
    "status", "action", "target", "subresource", "format", "project_id", "task_id", "job_id",
)  # fmt: skip
"""CVAT's simple filters of the request list (`?action=export&task_id=3`): exact values."""
PROGRESS_STEP = 0.01
RESULT_LIFETIME = timedelta(days=1)

OutboxEvents = Sequence[tuple[str, Mapping[str, Any]]]
"""Events (subject, payload) to publish through the outbox with a request's end."""


def requests_table(metadata: sa.MetaData, schema: str) -> sa.Table:
    """The `requests` table of a service's schema."""
    return sa.Table(
        "requests",
        metadata,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("organization_id", sa.BigInteger),
        sa.Column("operation", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="queued"),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("progress", sa.Float(53)),
        sa.Column("result_id", sa.BigInteger),
        sa.Column("result_url", sa.Text),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("started_date", sa.DateTime(timezone=True)),
        sa.Column("finished_date", sa.DateTime(timezone=True)),
        sa.Column("expiry_date", sa.DateTime(timezone=True)),
        sa.Index("requests_owner", "owner_id"),
        schema=schema,
    )


def create_requests_table(op: Any, schema: str) -> None:
    """Create `requests` in a service's migration (frozen, as migrations are)."""
    op.create_table(
        "requests",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("organization_id", sa.BigInteger),
        sa.Column("operation", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="queued"),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("progress", sa.Float(53)),
        sa.Column("result_id", sa.BigInteger),
        sa.Column("result_url", sa.Text),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("started_date", sa.DateTime(timezone=True)),
        sa.Column("finished_date", sa.DateTime(timezone=True)),
        sa.Column("expiry_date", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('queued', 'started', 'finished', 'failed')", name="requests_status"
        ),
        schema=schema,
    )
    op.create_index("requests_owner", "requests", ["owner_id"], schema=schema)


class Owner(BaseModel):
    """Who started the request."""

    id: int
    username: str | None = None


class Operation(BaseModel):
    """What the request does, in CVAT's terms (`type` such as `create:task`)."""

    type: str
    target: str
    project_id: int | None = None
    task_id: int | None = None
    job_id: int | None = None
    format: str | None = None
    function_id: str | None = None


class RequestStatus(BaseModel):
    """`GET /api/requests/{rq_id}`: CVAT's `Request`."""

    id: str
    status: Status
    message: str
    progress: float | None
    operation: Operation
    owner: Owner
    created_date: datetime
    started_date: datetime | None
    finished_date: datetime | None
    expiry_date: datetime | None
    result_url: str | None
    result_id: int | None


class RequestCreated(BaseModel):
    """The `202` answer to a request that starts background work."""

    rq_id: str


class RequestEnded(Exception):
    """The request is no longer running: cancelled by its owner, or ended elsewhere."""


class RequestStore:
    """A service's requests: recorded in the caller's transaction, advanced in short ones.

    Every change after `create` applies only to a request that is still queued or
    started: a request cancelled by its owner stays failed, and its worker learns of it
    at its next `progress` report (`RequestEnded`).
    """

    def __init__(self, database: Database, outbox: Outbox, service: str, schema: str) -> None:
        self.database = database
        self.outbox = outbox
        self.service = service
        self.table = requests_table(sa.MetaData(), schema)
        self.list_spec = _list_spec(self.table)
        self._reported: dict[str, float] = {}

    def new_id(self, operation: Operation) -> str:
        """A fresh request id that names this service, the operation and its target."""
        target = operation.task_id or operation.job_id or operation.project_id or ""
        kind = operation.type.replace(":", "-")
        return f"{self.service}-{kind}-{target}-{uuid.uuid4().hex[:12]}".replace("--", "-")

    async def create(
        self,
        session: AsyncSession,
        operation: Operation,
        *,
        owner_id: int,
        organization_id: int | None,
    ) -> str:
        """Record a queued request in `session`'s transaction; its id."""
        rq_id = self.new_id(operation)
        await session.execute(
            self.table.insert().values(
                id=rq_id,
                owner_id=owner_id,
                organization_id=organization_id,
                operation=operation.model_dump(exclude_none=True),
            )
        )
        await self._publish(session, rq_id, "queued", 0.0)
        return rq_id

    async def status(self, rq_id: str) -> Status | None:
        """The request's status (None if there is no such request), for the worker doing it."""
        async with self.database.transaction() as session:
            value = await session.scalar(
                sa.select(self.table.c.status).where(self.table.c.id == rq_id)
            )
        return value

    def _select(self) -> sa.Select[Any]:
        users = sa.table("users", sa.column("id"), sa.column("username"), schema="iam")
        return sa.select(self.table, users.c.username).join(
            users, users.c.id == self.table.c.owner_id, isouter=True
        )

    async def get(self, session: AsyncSession, rq_id: str, principal: Principal) -> RequestStatus:
        """The request as its owner (or an administrator) sees it; 404 for anyone else."""
        row = (await session.execute(self._select().where(self.table.c.id == rq_id))).first()
        if row is None or not (principal.is_superuser or row.owner_id == principal.user_id):
            raise NotFound(f"Request {rq_id} does not exist.")
        return _status_of(row)

    async def list_own(
        self,
        session: AsyncSession,
        principal: Principal,
        params: PageParams,
        filters: Mapping[str, str] | None = None,
    ) -> tuple[int, list[RequestStatus]]:
        """The caller's requests, newest first: how many there are, and the page asked for.

        `filters` are CVAT's list filters (`REQUEST_FILTERS`, and a JSON Logic `filter`
        over the same fields): only the requests that match them are counted and listed.
        """
        listed = parse_list_query(self.list_spec, filters or {})
        mine = sa.and_(self.table.c.owner_id == principal.user_id, listed.condition)
        count = await session.scalar(sa.select(sa.func.count()).select_from(self.table).where(mine))
        query = (
            self._select()
            .where(mine)
            .order_by(*listed.ordering)
            .offset(params.offset)
            .limit(params.limit)
        )
        rows = (await session.execute(query)).all()
        return count or 0, [_status_of(row) for row in rows]

    async def cancel(self, rq_id: str, principal: Principal) -> None:
        """End a queued or running request as failed, at its owner's (or an administrator's)
        demand. 404 for anyone else; 409 once the request has ended."""
        async with self.database.transaction() as session:
            found = await self.get(session, rq_id, principal)
        if found.status not in OPEN or not await self.fail(
            rq_id, f"Cancelled by {principal.username}."
        ):
            raise Problem(409, f"Request {rq_id} has already ended; it cannot be cancelled.")

    async def start(self, rq_id: str) -> None:
        """Mark the request started; `RequestEnded` if it was cancelled meanwhile."""
        if not await self._update(
            rq_id, "started", {"started_date": sa.func.now(), "progress": 0.0}
        ):
            raise RequestEnded(rq_id)

    async def progress(self, rq_id: str, fraction: float, message: str = "") -> None:
        """Record progress (a fraction in [0, 1]) when it moved by at least PROGRESS_STEP;
        `RequestEnded` if the request was cancelled meanwhile."""
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction - self._reported.get(rq_id, -1.0) < PROGRESS_STEP and fraction < 1.0:
            return
        # Claimed before the write, so concurrent workers of one request do not all write.
        self._reported[rq_id] = fraction
        values: dict[str, Any] = {"progress": fraction}
        if message:
            values["message"] = message
        if not await self._update(rq_id, "started", values):
            self._reported.pop(rq_id, None)
            raise RequestEnded(rq_id)

    async def finish(
        self,
        rq_id: str,
        *,
        result_id: int | None = None,
        result_url: str | None = None,
        message: str = "",
        events: OutboxEvents = (),
    ) -> bool:
        """Mark the request finished, with what it made; False if it had already ended.

        `result_url` is a path (`/api/...`): the answer puts it on the client's address.
        `message` says what came of it where that is more than done (an import's report).
        `events` are published with the change, in its transaction (none if it had ended).
        """
        self._reported.pop(rq_id, None)
        return await self._update(rq_id, "finished", {
            "progress": 1.0, "result_id": result_id, "result_url": result_url,
            "message": message,
            "finished_date": sa.func.now(),
            "expiry_date": datetime.now(UTC) + RESULT_LIFETIME,
        }, events)  # fmt: skip

    async def fail(self, rq_id: str, message: str, *, events: OutboxEvents = ()) -> bool:
        """Mark the request failed, saying why; False if it had already ended.

        `events` are published with the change, in its transaction (none if it had ended).
        """
        self._reported.pop(rq_id, None)
        return await self._update(
            rq_id, "failed", {"message": message, "finished_date": sa.func.now()}, events
        )

    async def fail_interrupted(self) -> int:
        """Fail the requests a previous process left unfinished; how many there were."""
        async with self.database.transaction() as session:
            rows = (
                await session.execute(
                    self.table.update()
                    .where(self.table.c.status.in_(OPEN))
                    .values(
                        status="failed",
                        message=f"The {self.service} service restarted while this request "
                        "was running; nothing of it was kept. Send it again.",
                        finished_date=sa.func.now(),
                    )
                    .returning(self.table.c.id)
                )
            ).all()
            for row in rows:
                await self._publish(session, row.id, "failed", None)
        return len(rows)

    async def _update(
        self, rq_id: str, status: Status, values: Mapping[str, Any], events: OutboxEvents = ()
    ) -> bool:
        async with self.database.transaction() as session:
            updated = await session.scalar(
                self.table.update()
                .where(self.table.c.id == rq_id, self.table.c.status.in_(OPEN))
                .values(status=status, **values)
                .returning(self.table.c.id)
            )
            if updated is None:
                return False
            progress = values.get("progress")
            await self._publish(session, rq_id, status, progress)
            for subject, data in events:
                await self.outbox.add(session, subject, data)
        if isinstance(progress, float) and status == "started":
            self._reported[rq_id] = progress
        return True

    async def _publish(
        self, session: AsyncSession, rq_id: str, status: Status, progress: float | None
    ) -> None:
        await self.outbox.add(
            session,
            f"{self.service}.requests.updated",
            {"rq_id": rq_id, "status": status, "progress": progress},
        )


def _list_spec(table: sa.Table) -> ListSpec:
    """The fields CVAT filters its request list on, over a service's `requests` table.

    An operation's `type` is CVAT's `<action>:<subresource>` (`export:dataset`) or, for
    work on a whole object, `<action>:<target>` (`create:task`, `autoannotate:task`): the
    action is its first part, and the subresource its second where that is not the
    target (none for task creation and auto-annotation, as in CVAT).
    """
    operation = table.c.operation
    kind = operation["type"].astext
    target = operation["target"].astext
    second = sa.func.split_part(kind, ":", 2)
    fields = {
        "id": Field(table.c.id),
        "created_date": Field(table.c.created_date, "datetime"),
        "status": Field(table.c.status, choices=STATUSES),
        "action": Field(sa.func.split_part(kind, ":", 1)),
        "target": Field(target),
        "subresource": Field(sa.case((sa.and_(second != "", second != target), second))),
        "format": Field(operation["format"].astext),
        **{
            name: Field(operation[name].as_integer(), "int")
            for name in ("project_id", "task_id", "job_id")
        },
    }
    return ListSpec(fields, simple=REQUEST_FILTERS, default_sort=("-created_date",))


def _status_of(row: sa.Row[Any]) -> RequestStatus:
    return RequestStatus(
        id=row.id,
        status=row.status,
        message=row.message,
        progress=row.progress,
        operation=Operation(**row.operation),
        owner=Owner(id=row.owner_id, username=row.username),
        created_date=row.created_date,
        started_date=row.started_date,
        finished_date=row.finished_date,
        expiry_date=row.expiry_date,
        result_url=row.result_url,
        result_id=row.result_id,
    )


def _list_filters(
    *,
    status: Annotated[Status | None, Query(description="Only requests in this status.")] = None,
    action: Annotated[
        str | None,
        Query(
            description="Only requests of this action: `create`, `import`, `export` or "
            "`autoannotate`."
        ),
    ] = None,
    target: Annotated[
        str | None, Query(description="Only requests about a `project`, `task` or `job`.")
    ] = None,
    subresource: Annotated[
        str | None,
        Query(
            description="Only requests about this part of their target: `annotations`, "
            "`dataset` or `backup`."
        ),
    ] = None,
    format: Annotated[str | None, Query(description="Only requests in this format.")] = None,
    project_id: Annotated[
        int | None, Query(description="Only requests about this project.")
    ] = None,
    task_id: Annotated[int | None, Query(description="Only requests about this task.")] = None,
    job_id: Annotated[int | None, Query(description="Only requests about this job.")] = None,
    filter: Annotated[
        str | None,
        Query(description="A JSON Logic rule over `id`, `created_date` and the filters' fields."),
    ] = None,
) -> dict[str, str]:
    """CVAT's filters of the request list, as given (FastAPI dependency)."""
    given = {
        "status": status, "action": action, "target": target, "subresource": subresource,
        "format": format, "project_id": project_id, "task_id": task_id, "job_id": job_id,
        "filter": filter,
    }  # fmt: skip
    return {name: str(value) for name, value in given.items() if value is not None}


def requests_router(
    store_of: Callable[[Request], RequestStore], *, cancellable: bool = False
) -> APIRouter:
    """`GET /api/requests/{rq_id}` (and the caller's list, `GET /api/requests`) over the
    service's `RequestStore`, which the FastAPI dependency `store_of` gives; with
    `cancellable`, CVAT's `POST /api/requests/{rq_id}/cancel` and `DELETE` too."""
    router = APIRouter(prefix="/api/requests", tags=["requests"])
    # Evaluated here, with `store_of` (this module does not postpone annotations).
    from_store = Depends(store_of)

    def answered(request: Request, found: RequestStatus) -> RequestStatus:
        if found.result_url and found.result_url.startswith("/"):
            found.result_url = public_url(request, found.result_url)
        return found

    @router.get("", summary="List the caller's background requests")
    async def list_requests(
        *,
        request: Request,
        principal: CurrentUser,
        session: DbSession,
        store: Annotated[RequestStore, from_store],
        params: Annotated[PageParams, Depends(page_params)],
        filters: Annotated[dict[str, str], Depends(_list_filters)],
    ) -> Page[RequestStatus]:
        """The caller's requests, newest first, paginated as CVAT's lists, with CVAT's
        filters. Each service lists its own; the gateway merges their lists into one."""
        count, found = await store.list_own(session, principal, params, filters)
        return Page.build(request, params, count, [answered(request, item) for item in found])

    @router.get("/{rq_id}", summary="Get the status of a background request")
    async def get_request(
        rq_id: str,
        request: Request,
        principal: CurrentUser,
        session: DbSession,
        store: Annotated[RequestStore, from_store],
    ) -> RequestStatus:
        """Status, progress and result of one request the caller started.

        A `result_url` is stored as a path and answered on the address the client used.
        """
        return answered(request, await store.get(session, rq_id, principal))

    if cancellable:

        @router.post("/{rq_id}/cancel", summary="Cancel a background request")
        async def cancel_request(
            rq_id: str, principal: CurrentUser, store: Annotated[RequestStore, from_store]
        ) -> None:
            """Stop a queued or running request; it ends failed, saying who cancelled it."""
            await store.cancel(rq_id, principal)

        @router.delete("/{rq_id}", status_code=204, summary="Cancel a background request")
        async def delete_request(
            rq_id: str, principal: CurrentUser, store: Annotated[RequestStore, from_store]
        ) -> None:
            """The same as `POST /api/requests/{rq_id}/cancel`."""
            await store.cancel(rq_id, principal)

    return router
