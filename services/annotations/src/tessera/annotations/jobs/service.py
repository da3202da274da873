"""Jobs: made from a task's segments by the ingest service, read, listed, reassigned, moved
through stages and states."""

from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations import events
from tessera.annotations.access import Context
from tessera.annotations.jobs import repository
from tessera.annotations.jobs.schemas import Job, JobUpdate
from tessera.annotations.links import api_url
from tessera.annotations.projects.schemas import CountLink, Link, Storage
from tessera.annotations.status import combined_status, job_status
from tessera.annotations.tasks import repository as task_repository
from tessera.annotations.users.service import basic_user, check_users
from tessera.annotations.visibility import visible_jobs
from tessera.platform.auth import Principal
from tessera.platform.bus import Outbox
from tessera.platform.contracts.annotations import CreatedJob, SegmentsCreate, SegmentsCreated
from tessera.platform.errors import NotFound, Problem, unprocessable
from tessera.platform.listing import ListQuery, list_query

list_query_of_jobs = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the job list's parameters (CVAT's)."""


def _frame_count(start: int, stop: int, frames: list[int] | None) -> int:
    return len(frames) if frames else stop - start + 1


def _to_schema(request: Request, row: dict[str, Any]) -> Job:
    job_id = row["id"]
    return Job(
        url=api_url(request, f"jobs/{job_id}"),
        id=job_id,
        task_id=row["task_id"],
        task_name=row["task_name"],
        project_id=row["project_id"],
        project_name=row["project_name"],
        assignee=basic_user(request, row, "assignee"),
        assignee_updated_date=row["assignee_updated_date"],
        dimension=row["dimension"],
        mode=row["mode"],
        media_type=row["media_type"],
        bug_tracker=row["task_bug_tracker"] or row["project_bug_tracker"] or None,
        status=job_status(row["stage"], row["state"]),
        stage=row["stage"],
        state=row["state"],
        type=row["type"],
        frame_count=_frame_count(row["start_frame"], row["stop_frame"], row["frames"]),
        start_frame=row["start_frame"],
        stop_frame=row["stop_frame"],
        data_chunk_size=row["data_chunk_size"],
        data_compressed_chunk_type=row["compressed_chunk_type"],
        data_original_chunk_type=row["original_chunk_type"],
        created_date=row["created_date"],
        updated_date=row["updated_date"],
        organization=row["organization_id"],
        target_storage=None if row["target_storage"] is None else Storage(**row["target_storage"]),
        source_storage=None if row["source_storage"] is None else Storage(**row["source_storage"]),
        issues=CountLink(count=row["issue_count"], url=api_url(request, "issues", job_id=job_id)),
        labels=Link(url=api_url(request, "labels", job_id=job_id)),
    )


async def _job_row(session: AsyncSession, ctx: Context, job_id: int) -> dict[str, Any]:
    row = await repository.get_job(session, job_id, visible_jobs(ctx))
    if row is None:
        raise NotFound(f"Job {job_id} does not exist.")
    return row


async def get_job(session: AsyncSession, ctx: Context, request: Request, job_id: int) -> Job:
    """One job the caller sees."""
    return _to_schema(request, await _job_row(session, ctx, job_id))


async def list_jobs(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    query: ListQuery,
) -> tuple[int, list[Job]]:
    """The jobs the caller sees in this context that match the list query."""
    count, rows = await repository.list_jobs(session, visible_jobs(ctx), query)
    return count, [_to_schema(request, row) for row in rows]


def is_task_staff(ctx: Context, job: dict[str, Any]) -> bool:
    """Organization managers and the owners and assignees of the job's task or project."""
    staff = (
        job["task_owner_id"],
        job["task_assignee_id"],
        job["project_owner_id"],
        job["project_assignee_id"],
    )
    return ctx.manages_organization or ctx.user_id in staff


async def refresh_task_status(session: AsyncSession, task_id: int) -> None:
    """Store the task's status as its jobs make it."""
    pairs = await repository.stage_states(session, task_id)
    status = combined_status(job_status(stage, state) for stage, state in pairs)
    await task_repository.update_task(session, task_id, {"status": status})


async def update_job(
    session: AsyncSession,
    ctx: Context,
    request: Request,
    job_id: int,
    body: JobUpdate,
    *,
    outbox: Outbox,
) -> Job:
    """Change a job's stage, state or assignee, and publish `jobs.updated` with the changes.

    The task's staff change anything; the job's assignee changes its state. Moving to
    another stage without a state starts it afresh (`new`), as CVAT does.
    """
    job = await _job_row(session, ctx, job_id)
    fields = body.model_fields_set
    wanted: dict[str, Any] = {}
    if "stage" in fields and body.stage is not None and body.stage != job["stage"]:
        wanted["stage"] = body.stage
        if "state" not in fields:
            wanted["state"] = "new"
    if "state" in fields and body.state is not None:
        wanted["state"] = body.state
    if "assignee" in fields:
        wanted["assignee_id"] = body.assignee
    changes = {name: (job[name], value) for name, value in wanted.items() if job[name] != value}
    staff = is_task_staff(ctx, job)
    may_state = staff or (job["assignee_id"] == ctx.user_id and ctx.user_id is not None)
    ctx.require(
        staff or (may_state and set(changes) <= {"state"}), f"make these changes to job {job_id}"
    )
    if not changes:
        return _to_schema(request, job)
    if "assignee_id" in changes:
        await check_users(session, {"body.assignee": body.assignee}, job["organization_id"])
    values = {name: new for name, (_, new) in changes.items()}
    if "assignee_id" in changes:
        values["assignee_updated_date"] = sa.func.now()
    await repository.update_job(session, job_id, values)
    await refresh_task_status(session, job["task_id"])
    await events.job_updated(outbox, session, job, changes)
    return await get_job(session, ctx, request, job_id)


# What a segments request records on the task: its field -> the task's column.
_MEDIA_FACTS = {
    "size": "size",
    "media_type": "media_type",
    "dimension": "dimension",
    "chunk_size": "data_chunk_size",
    "compressed_chunk_type": "compressed_chunk_type",
    "original_chunk_type": "original_chunk_type",
    "image_quality": "image_quality",
    "start_frame": "start_frame",
    "stop_frame": "stop_frame",
    "frame_filter": "frame_filter",
    "segment_size": "segment_size",
    "overlap": "overlap",
}


def _created(task_id: int, rows: list[dict[str, Any]]) -> SegmentsCreated:
    return SegmentsCreated(
        task_id=task_id,
        jobs=[
            CreatedJob(
                id=row["id"],
                start_frame=row["start_frame"],
                stop_frame=row["stop_frame"],
                frame_count=_frame_count(row["start_frame"], row["stop_frame"], row["frames"]),
            )
            for row in rows
        ],
    )


def _differences(
    task: dict[str, Any], rows: list[dict[str, Any]], body: SegmentsCreate
) -> list[dict[str, str]]:
    """How a segments request differs from what the task got from an earlier one."""
    given = body.model_dump(include=set(_MEDIA_FACTS), exclude_none=True)
    errors = [
        {"field": f"body.{name}", "message": f"the task has {task[_MEDIA_FACTS[name]]!r}"}
        for name, value in given.items()
        if task[_MEDIA_FACTS[name]] != value
    ]
    existing = [(row["start_frame"], row["stop_frame"], row["frames"] or None) for row in rows]
    asked = [(s.start_frame, s.stop_frame, s.frames or None) for s in body.segments]
    if asked != existing:
        ranges = ", ".join(f"{start}-{stop}" for start, stop, _ in existing)
        errors.append(
            {"field": "body.segments", "message": f"the task's jobs cover frames {ranges}"}
        )
    return errors


async def create_segment_jobs(
    session: AsyncSession, principal: Principal, task_id: int, body: SegmentsCreate
) -> tuple[SegmentsCreated, bool]:
    """Make one job per segment of a task whose media ingest has prepared (admins only);
    the jobs, and whether they were made now.

    The call is idempotent, so that ingest can redo a creation that a stopped replica
    left unfinished: asked again with the same media facts and segments, it answers the
    jobs it made the first time and changes nothing. Other segments or facts for a task
    that has jobs get 409 naming what differs. The task's media facts, its data options
    and the `segment_size` and `overlap` actually used are stored with the jobs, in one
    transaction.
    """
    if not principal.is_superuser:
        raise Problem(403, "Only the ingest service (an administrator) makes jobs from segments.")
    task = await task_repository.lock_task(session, task_id)
    if task is None:
        raise NotFound(f"Task {task_id} does not exist.")
    existing = await repository.task_jobs(session, task_id)
    if existing:
        if differences := _differences(task, existing, body):
            raise Problem(
                409,
                f"Task {task_id} already has jobs, made from other segments or media; "
                "a repeated request must give the same ones.",
                errors=differences,
            )
        return _created(task_id, existing), False
    errors = [
        (f"body.segments[{index}].stop_frame", f"must be less than the task size {body.size}")
        for index, segment in enumerate(body.segments)
        if segment.stop_frame >= body.size
    ]
    if body.segment_size is not None and body.segment_size > body.size:
        errors.append(("body.segment_size", f"must not exceed the task size {body.size}"))
    if (
        body.segment_size is not None
        and body.overlap is not None
        and body.overlap > body.segment_size // 2
    ):
        errors.append(("body.overlap", "must not exceed half the segment size"))
    if task["project_id"] is not None:
        dimension = await task_repository.project_dimension(session, task["project_id"])
        if dimension is None:
            await task_repository.set_project_dimension(session, task["project_id"], body.dimension)
        elif dimension != body.dimension:
            errors.append(("body.dimension", f"the tasks of this project are {dimension}"))
    if errors:
        raise unprocessable(errors)
    options = body.model_dump(
        include={"image_quality", "start_frame", "stop_frame", "frame_filter", "segment_size",
                 "overlap"},
        exclude_none=True,
    )  # fmt: skip
    await task_repository.update_task(
        session,
        task_id,
        {
            **options,
            "size": body.size,
            "media_type": body.media_type,
            "dimension": body.dimension,
            "mode": "interpolation" if body.media_type == "video" else "annotation",
            "data_chunk_size": body.chunk_size,
            "compressed_chunk_type": body.compressed_chunk_type,
            "original_chunk_type": body.original_chunk_type,
            "status": "annotation",
        },
    )
    rows = await repository.insert_jobs(session, task_id, body.segments)
    return _created(task_id, rows), True
