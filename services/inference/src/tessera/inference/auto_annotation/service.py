"""CVAT's auto-annotation requests: accepting, listing, showing and cancelling them.

As CVAT 2.80's `RequestViewSet` and `LambdaQueue` (cvat/apps/lambda_manager/views.py):

- `POST /api/lambda/requests`: the caller must be allowed to change the annotations of
  the task (of the job, when one is given; it must be a job of the task). Everything is
  checked before the request is queued: the function (404; only detectors annotate
  tasks, 400 otherwise), the task or job (the caller's 403/404 from the annotations
  service), a 2D task with data, the threshold (422), the mapping (400 naming the entry
  at fault, or saying that no label of the function goes to the task), the shape type.
  Only one request per task may be queued or running at a time (of the task or of any of
  its jobs, as CVAT keys requests by task): a second is a 409. The request's row, its
  parameters and its queue message are committed together; the answer (200, as CVAT)
  is the request as `GET` shows it.
- `GET /api/lambda/requests`: the caller's requests (an administrator's: everyone's)
  that are queued or running, or finished within the last 30 minutes (CVAT's list: its
  queue's registries without the failed one; finished jobs expire after 30 minutes).
  CVAT lists the requests of every task the caller sees; see the report.
- `GET /api/lambda/requests/{id}`: for its owner, an administrator, or anyone who sees
  its task (CVAT's rule); 404 for others.
- `DELETE /api/lambda/requests/{id}` (204): its owner or an administrator cancels it; a
  queued or running request ends failed ("Cancelled by ..."), its worker stops between
  two groups of frames and what it wrote stays. One that has already ended is left as
  it is (CVAT deletes the job whatever its state, and answers 204 too). Others who see
  the task get 403; the rest 404.

A request's `id` is the platform's request id (`inference-autoannotate-task-<task>-...`),
so `GET /api/requests/{id}` answers it too, in the platform's `Request` form.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import cast

from fastapi import Request

from tessera.inference.auto_annotation.repository import AutoAnnotationRepository, AutoAnnotationRow
from tessera.inference.auto_annotation.schemas import (
    FunctionCall,
    FunctionCallParams,
    FunctionCallRequest,
)
from tessera.inference.detectors.detection import Detector
from tessera.inference.functions.mapping import resolve_mapping, shape_type_for
from tessera.inference.functions.registry import FunctionRegistry
from tessera.inference.problems import body_field
from tessera.platform.auth import Principal
from tessera.platform.bus import Outbox
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.db import Database
from tessera.platform.errors import NotFound, Problem
from tessera.platform.requests import OPEN, Operation, RequestStore
from tessera.platform.workqueue import WorkQueue

# CVAT's `LambdaQueue.RESULT_TTL`: how long a finished request stays in the list.
FINISHED_LISTED = timedelta(minutes=30)
OPERATION_TYPE = "autoannotate:task"


class AutoAnnotations:
    """The auto-annotation requests of CVAT's lambda API (see the module)."""

    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        requests: RequestStore,
        repository: AutoAnnotationRepository,
        *,
        registry: FunctionRegistry,
        runners: dict[str, object],
        annotations: AnnotationsClient,
        queue: WorkQueue,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.requests = requests
        self.repository = repository
        self.registry = registry
        self.runners = runners
        self.annotations = annotations
        self.queue = queue

    async def create(
        self, request: Request, principal: Principal, body: FunctionCallRequest
    ) -> FunctionCall:
        """Check and queue a request (see the module); the request as `GET` shows it."""
        spec = self.registry.get(body.function)
        if spec.kind != "detector":
            raise body_field(400, "function", f"function {spec.id!r} is a {spec.kind}; only "
                         "detectors annotate tasks")  # fmt: skip
        task = await self.annotations.task_access(request, body.task)
        if body.job is not None:
            job = await self.annotations.job_access(request, body.job)
            if job.task_id != task.task_id:
                raise body_field(400, "job", f"job {body.job} is not a job of task {body.task}")
            if not job.can_change:
                raise Problem(403, f"You may not change the annotations of job {body.job}.")
        elif not task.can_change:
            raise Problem(403, f"You may not change the annotations of task {body.task}.")
        if task.dimension != "2d":
            raise body_field(400, "task", f"function {spec.id!r} runs on 2D frames, not 3D tasks")
        if not task.has_jobs:
            raise body_field(400, "task", f"task {body.task} has no data to annotate yet")
        target = await self.annotations.import_target(task_id=task.task_id)
        targets = resolve_mapping(spec.labels, target.labels, body.mapping)
        if not targets:
            names = ", ".join(repr(label.name) for label in spec.labels)
            raise body_field(400, "mapping", f"none of the function's labels ({names}) goes to a "
                         "label of the task; map them with `mapping`")  # fmt: skip
        detector = cast(Detector, self.runners[spec.id])
        shape_type_for(detector.shape_types, body.shape_type, targets)
        params = body.model_dump(
            mode="json", include={"threshold", "mapping", "cleanup", "conv_mask_to_poly",
                                  "shape_type"},
        )  # fmt: skip
        operation = Operation(
            type=OPERATION_TYPE, target="task", project_id=task.project_id,
            task_id=task.task_id, job_id=body.job, function_id=spec.id,
        )  # fmt: skip
        async with self.database.transaction() as session:
            await self.repository.lock_task(session, task.task_id)
            running = await self.repository.running_on_task(session, task.task_id)
            if running is not None:
                raise Problem(
                    409, f"Only one running request is allowed for the same task "
                    f"#{task.task_id}: {running} is not finished.",
                    extensions={"rq_id": running},
                )  # fmt: skip
            rq_id = await self.requests.create(
                session, operation, owner_id=principal.user_id,
                organization_id=task.organization_id,
            )  # fmt: skip
            await self.repository.insert(
                session, rq_id, task_id=task.task_id, job_id=body.job, function_id=spec.id,
                params=params,
            )  # fmt: skip
            await self.queue.enqueue(
                session, self.outbox, rq_id, {"task_id": task.task_id, "job_id": body.job}
            )
            row = await self.repository.get(rq_id, session)
        assert row is not None
        return function_call(row)

    async def list(self, principal: Principal) -> list[FunctionCall]:
        """The requests CVAT's list shows (see the module)."""
        since = datetime.now(UTC) - FINISHED_LISTED
        owner = None if principal.is_superuser else principal.user_id
        async with self.database.transaction() as session:
            rows = await self.repository.listed(session, owner, since)
        return [function_call(row) for row in rows]

    async def get(self, request: Request, principal: Principal, rq_id: str) -> FunctionCall:
        """One request, for those who may see it (see the module)."""
        return function_call(await self._visible(request, principal, rq_id))

    async def cancel(self, request: Request, principal: Principal, rq_id: str) -> None:
        """Cancel a request (see the module)."""
        row = await self._visible(request, principal, rq_id)
        if not (principal.is_superuser or row.owner_id == principal.user_id):
            raise Problem(403, f"Only the owner of request {rq_id} may cancel it.")
        if row.status in OPEN:
            await self.requests.fail(rq_id, f"Cancelled by {principal.username}.")

    async def _visible(
        self, request: Request, principal: Principal, rq_id: str
    ) -> AutoAnnotationRow:
        row = await self.repository.get(rq_id)
        missing = NotFound(f"{rq_id} lambda request is not found.")
        if row is None:
            raise missing
        if principal.is_superuser or row.owner_id == principal.user_id:
            return row
        try:
            await self.annotations.task_access(request, row.task_id)
        except Problem as exc:
            if exc.status in (403, 404):
                raise missing from None
            raise
        return row


def function_call(row: AutoAnnotationRow) -> FunctionCall:
    """A request as CVAT's `FunctionCall`: progress in whole percent, as CVAT counts it."""
    threshold = row.params.get("threshold")
    return FunctionCall(
        id=row.rq_id,
        function=FunctionCallParams(
            id=row.function_id, threshold=threshold, task=row.task_id, job=row.job_id
        ),
        status=row.status,
        progress=math.floor((row.progress or 0.0) * 100 + 1e-9),
        enqueued=row.created_date,
        started=row.started_date,
        ended=row.finished_date,
        exc_info=row.message if row.status == "failed" else None,
    )
