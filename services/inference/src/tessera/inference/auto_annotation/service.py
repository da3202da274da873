"""CVAT's auto-annotation requests, and requests beyond CVAT's scope: accepting, listing,
showing and cancelling them.

As CVAT 2.80's `RequestViewSet` and `LambdaQueue` (cvat/apps/lambda_manager/views.py):

- `POST /api/lambda/requests`: the caller must be allowed to change the annotations of
  the task (of the job, when one is given; it must be a job of the task). Everything is
  checked before the request is queued: the function (404; only detectors annotate
  tasks, 400 otherwise), the task or job (404 naming the field for one the caller does
  not see; their 403 from the annotations service), a 2D task with data, the threshold
  (422), the mapping (400 naming the entry at fault, or saying that no label of the
  function goes to the task), the shape type. Only one request per task may be queued
  or running at a time (of the task or of any of its jobs, as CVAT keys requests by
  task): a second is a 409 naming the task, with the `rq_id` of the one there. The
  request's row, its parts, its parameters and its queue message are committed
  together; the answer (200, as CVAT) is the request as `GET` shows it.
- `GET /api/lambda/requests`: the caller's requests (an administrator's: everyone's)
  that are queued or running, or finished within the last 30 minutes (CVAT's list: its
  queue's registries without the failed one; finished jobs expire after 30 minutes).
  CVAT lists the requests of every task the caller sees; see the report.
- `GET /api/lambda/requests/{id}`: for its owner, an administrator, or anyone who sees
  its task (its project, for a project's request; CVAT's rule); 404 for others.
- `DELETE /api/lambda/requests/{id}` (204): its owner or an administrator cancels it; a
  queued or running request ends failed ("Cancelled by ..."), its worker stops between
  two groups of frames (whichever task it is in) and what it wrote stays. One that has
  already ended is left as it is (CVAT deletes the job whatever its state, and answers
  204 too). Others who see the task get 403; the rest 404.

Beyond CVAT, in the same body (`schemas.FunctionCallRequest`), a request covers parts
(`repository.PartScope`), done one after the other:

- `project` instead of `task`: each task of the project that has data (one still
  without data is left out; a project with none is a 400). The caller must be allowed
  to change the annotations of each. The function's labels are mapped against the
  project's (its tasks share them).
- `jobs`: those jobs of the task (of the project's tasks), each a part of its own,
  annotated and (`cleanup`) cleaned as a CVAT request for that job would be. Jobs that
  overlap each hold their own copy of the frames they share, so such a frame is
  annotated in each. A job of another task (of no task of the project) is a 400 naming
  `body.jobs`; one the caller does not see, a 404 naming it.
- `frames`: task frames of `task` (with neither `job` nor `jobs`): one part, written to
  the task as a task's request writes. A frame outside the task or deleted is a 400
  naming `body.frames`. `cleanup` does not go with `frames` (400 naming `body.cleanup`):
  the annotations service deletes the annotations of a task or of a job, not of a frame,
  and deleting more than the frames asked for is not what was asked.
- Exactly one of `task` and `project`, `job` only with `task`, not both `job` and
  `jobs`: otherwise a 422 naming the field.

One request per task holds across scopes: a request covers the tasks of its parts, and
is refused (409) when a queued or running request covers one of them, a project's
request and a task's request alike. The check and the recording happen in one
transaction holding the advisory locks of those tasks (`repository.lock_tasks`), so two
requests sent together cannot both pass it.

A request's `id` is the platform's request id (`inference-autoannotate-task-<task>-...`,
`inference-autoannotate-project-<project>-...`), so `GET /api/requests/{id}` answers it
too, in the platform's `Request` form.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast

from fastapi import Request

from tessera.inference.auto_annotation.repository import (
    AutoAnnotationRepository,
    AutoAnnotationRow,
    PartScope,
)
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
from tessera.platform.clients.ingest import IngestClient
from tessera.platform.contracts.annotations import (
    JobAccess,
    ProjectAccess,
    SnapshotLabel,
    TaskAccess,
)
from tessera.platform.db import Database
from tessera.platform.errors import NotFound, Problem
from tessera.platform.requests import OPEN, Operation, RequestStore
from tessera.platform.workqueue import WorkQueue

# CVAT's `LambdaQueue.RESULT_TTL`: how long a finished request stays in the list.
FINISHED_LISTED = timedelta(minutes=30)
OPERATION_TYPE = "autoannotate:task"
PROJECT_OPERATION_TYPE = "autoannotate:project"

Answer = TypeVar("Answer")
# For the methods of `AutoAnnotations`, where `list` is its method.
Jobs = list[JobAccess]
Frames = list[int]


@dataclass(frozen=True)
class Scope:
    """What a request covers, once checked: its parts, the labels they share, and the
    organization and project it belongs to."""

    organization_id: int | None
    project_id: int | None
    parts: list[PartScope]
    labels: list[SnapshotLabel]


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
        ingest: IngestClient,
        queue: WorkQueue,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.requests = requests
        self.repository = repository
        self.registry = registry
        self.runners = runners
        self.annotations = annotations
        self.ingest = ingest
        self.queue = queue

    async def create(
        self, request: Request, principal: Principal, body: FunctionCallRequest
    ) -> FunctionCall:
        """Check and queue a request (see the module); the request as `GET` shows it."""
        spec = self.registry.get(body.function)
        if spec.kind != "detector":
            raise body_field(400, "function", f"function {spec.id!r} is a {spec.kind}; only "
                         "detectors annotate tasks")  # fmt: skip
        _check_form(body)
        if body.project is not None:
            scope = await self._project_scope(request, body.project, body.jobs)
        else:
            scope = await self._task_scope(request, body)
        targets = resolve_mapping(spec.labels, scope.labels, body.mapping)
        if not targets:
            names = ", ".join(repr(label.name) for label in spec.labels)
            where = "task" if body.project is None else "project"
            raise body_field(400, "mapping", f"none of the function's labels ({names}) goes to a "
                             f"label of the {where}; map them with `mapping`")  # fmt: skip
        detector = cast(Detector, self.runners[spec.id])
        shape_type_for(detector.shape_types, body.shape_type, targets)
        params = body.model_dump(
            mode="json", include={"threshold", "mapping", "cleanup", "conv_mask_to_poly",
                                  "shape_type"},
        )  # fmt: skip
        if body.jobs is not None:
            params["jobs"] = sorted(set(body.jobs))
        if body.frames is not None:
            params["frames"] = sorted(set(body.frames))
        operation = Operation(
            type=OPERATION_TYPE if body.project is None else PROJECT_OPERATION_TYPE,
            target="task" if body.project is None else "project",
            project_id=scope.project_id, task_id=body.task, job_id=body.job,
            function_id=spec.id,
        )  # fmt: skip
        task_ids = sorted({part.task_id for part in scope.parts})
        async with self.database.transaction() as session:
            await self.repository.lock_tasks(session, task_ids)
            running = await self.repository.running_on_tasks(session, task_ids)
            if running is not None:
                task_id, other = running
                raise Problem(
                    409, f"Only one running request is allowed for the same task "
                    f"#{task_id}: {other} is not finished.",
                    extensions={"rq_id": other, "task": task_id},
                )  # fmt: skip
            rq_id = await self.requests.create(
                session, operation, owner_id=principal.user_id,
                organization_id=scope.organization_id,
            )  # fmt: skip
            await self.repository.insert(
                session, rq_id, project_id=body.project, task_id=body.task, job_id=body.job,
                function_id=spec.id, params=params, parts=scope.parts,
            )  # fmt: skip
            await self.queue.enqueue(session, self.outbox, rq_id, {
                "project_id": body.project, "task_id": body.task, "job_id": body.job,
            })  # fmt: skip
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

    async def _task_scope(self, request: Request, body: FunctionCallRequest) -> Scope:
        """A task's request: the task, or its jobs (`job`, `jobs`), or its `frames`."""
        assert body.task is not None
        task = await _found(self.annotations.task_access(request, body.task), "task",
                            f"task {body.task}")  # fmt: skip
        field = "jobs" if body.jobs is not None else "job"
        asked = body.jobs if body.jobs is not None else [] if body.job is None else [body.job]
        jobs = await self._jobs(request, asked, field)
        for job in jobs:
            if job.task_id != task.task_id:
                raise body_field(400, field, f"job {job.job_id} is not a job of task {body.task}")
        if not jobs and not task.can_change:
            raise Problem(403, f"You may not change the annotations of task {body.task}.")
        if task.dimension != "2d":
            raise body_field(400, "task", f"function {body.function!r} runs on 2D frames, not "
                             "3D tasks")  # fmt: skip
        if not task.has_jobs:
            raise body_field(400, "task", f"task {body.task} has no data to annotate yet")
        frames = None if body.frames is None else await self._frames(task, body.frames)
        target = await self.annotations.import_target(task_id=task.task_id)
        parts = [PartScope(task.task_id, job.job_id) for job in jobs]
        return Scope(
            organization_id=task.organization_id,
            project_id=task.project_id,
            parts=parts or [PartScope(task.task_id, frames=frames)],
            labels=target.labels,
        )

    async def _project_scope(
        self, request: Request, project_id: int, job_ids: Iterable[int] | None
    ) -> Scope:
        """A project's request: its tasks that have data, or the jobs `job_ids` of its
        tasks; the labels are the project's."""
        project = await _found(self.annotations.project_access(request, project_id),
                               "project", f"project {project_id}")  # fmt: skip
        if project.dimension != "2d":
            raise body_field(400, "project", f"project {project_id} holds 3D tasks; detectors "
                             "run on 2D frames")  # fmt: skip
        jobs = await self._jobs(request, job_ids or [], "jobs")
        for job in jobs:
            if job.task_id not in project.task_ids:
                raise body_field(400, "jobs", f"job {job.job_id} is not a job of a task of "
                                 f"project {project_id}")  # fmt: skip
        if jobs:
            parts = [PartScope(job.task_id, job.job_id) for job in jobs]
        else:
            tasks = await asyncio.gather(
                *(self._project_task(request, project, task_id) for task_id in project.task_ids)
            )
            parts = [PartScope(task.task_id) for task in tasks if task.has_jobs]
            if not parts:
                raise body_field(400, "project", f"project {project_id} has no task with data "
                                 "to annotate yet")  # fmt: skip
        target = await self.annotations.import_target(task_id=parts[0].task_id)
        return Scope(
            organization_id=project.organization_id,
            project_id=project_id,
            parts=parts,
            labels=target.labels,
        )

    async def _project_task(
        self, request: Request, project: ProjectAccess, task_id: int
    ) -> TaskAccess:
        """A task of a project's request, which the caller must be allowed to change."""
        refused = Problem(403, f"You may not change the annotations of task {task_id} of "
                          f"project {project.project_id}.")  # fmt: skip
        try:
            task = await self.annotations.task_access(request, task_id)
        except Problem as exc:
            if exc.status in (403, 404):
                raise refused from None
            raise
        if not task.can_change:
            raise refused
        return task

    async def _jobs(self, request: Request, job_ids: Iterable[int], field: str) -> Jobs:
        """These jobs (each once), which the caller must be allowed to change, by task and
        first frame."""

        async def one(job_id: int) -> JobAccess:
            job = await _found(self.annotations.job_access(request, job_id), field,
                               f"job {job_id}")  # fmt: skip
            if not job.can_change:
                raise Problem(403, f"You may not change the annotations of job {job_id}.")
            return job

        jobs = await asyncio.gather(*(one(job_id) for job_id in sorted(set(job_ids))))
        return sorted(jobs, key=lambda job: (job.task_id, job.start_frame, job.job_id))

    async def _frames(self, task: TaskAccess, frames: Iterable[int]) -> Frames:
        """The frames asked for, in order, each once: frames of the task, not deleted."""
        wanted = sorted(set(frames))
        outside = [frame for frame in wanted if frame >= task.size]
        if outside:
            raise body_field(400, "frames", f"frame {outside[0]} is not a frame of task "
                             f"{task.task_id}, whose frames are 0 to {task.size - 1}")  # fmt: skip
        meta = await self.ingest.task_meta(task.task_id)
        deleted = sorted(set(wanted) & set(meta.deleted_frames))
        if deleted:
            named = ", ".join(str(frame) for frame in deleted)
            raise body_field(400, "frames", f"frames {named} of task {task.task_id} are "
                             "deleted")  # fmt: skip
        return wanted

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
            if row.task_id is not None:
                await self.annotations.task_access(request, row.task_id)
            else:
                assert row.project_id is not None
                await self.annotations.project_access(request, row.project_id)
        except Problem as exc:
            if exc.status in (403, 404):
                raise missing from None
            raise
        return row


def _check_form(body: FunctionCallRequest) -> None:
    """The fields that go together (see the module)."""
    if body.task is None and body.project is None:
        raise body_field(422, "task", "task (or, beyond CVAT, project) is required")
    if body.task is not None and body.project is not None:
        raise body_field(422, "project", "a request is for a task or for a project, not both")
    if body.job is not None and body.jobs is not None:
        raise body_field(422, "jobs", "give job or jobs, not both")
    if body.job is not None and body.project is not None:
        raise body_field(422, "job", "job goes with task; a project's request takes jobs")
    if body.frames is not None:
        if body.project is not None:
            raise body_field(422, "frames", "frames go with a task, not with a project")
        if body.job is not None or body.jobs is not None:
            raise body_field(422, "frames", "frames go with a whole task, not with jobs")
        if body.cleanup:
            raise body_field(400, "cleanup", "cleanup does not go with frames: annotations are "
                             "deleted by task or by job, not by frame")  # fmt: skip


async def _found(call: Awaitable[Answer], field: str, what: str) -> Answer:
    """The annotations service's answer; its 404 as a 404 naming the body's field."""
    try:
        return await call
    except Problem as exc:
        if exc.status == 404:
            raise body_field(404, field, f"{what} does not exist, or you may not see it") from None
        raise


def function_call(row: AutoAnnotationRow) -> FunctionCall:
    """A request as CVAT's `FunctionCall`: progress in whole percent, as CVAT counts it."""
    params = row.params
    return FunctionCall(
        id=row.rq_id,
        function=FunctionCallParams(
            id=row.function_id,
            threshold=params.get("threshold"),
            task=row.task_id,
            job=row.job_id,
            project=row.project_id,
            jobs=params.get("jobs"),
            frames=params.get("frames"),
        ),
        status=row.status,
        progress=math.floor((row.progress or 0.0) * 100 + 1e-9),
        enqueued=row.created_date,
        started=row.started_date,
        ended=row.finished_date,
        exc_info=row.message if row.status == "failed" else None,
    )
