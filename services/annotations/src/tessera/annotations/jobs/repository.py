"""SQL over `jobs`."""

from typing import Any, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.jobs.schemas import Stage, State
from tessera.annotations.tables import issues, jobs, projects, tasks
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import username_of, users
from tessera.platform.contracts.annotations import Segment
from tessera.platform.listing import Field, ListQuery, ListSpec

_assignee = users.alias("assignee")
# Aliases keep visibility conditions (subqueries over `tasks`) uncorrelated.
_task = tasks.alias("task")
_project = projects.alias("project")


def _of_task(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """`column` of `tasks` for the job's task, as a correlated subquery."""
    return sa.select(column).where(tasks.c.id == jobs.c.task_id).scalar_subquery()


LIST_SPEC = ListSpec(
    fields={
        "id": Field(jobs.c.id, "int"),
        "assignee": Field(username_of(jobs.c.assignee_id)),
        "dimension": Field(_of_task(tasks.c.dimension), choices=("2d", "3d")),
        "media_type": Field(
            _of_task(tasks.c.media_type), choices=("image", "video", "point_cloud")
        ),
        "mode": Field(_of_task(tasks.c.mode), choices=("annotation", "interpolation")),
        # Tessera has no consensus replicas: no job has a parent job.
        "parent_job_id": Field(sa.null().cast(sa.BigInteger), "int"),
        "project_id": Field(_of_task(tasks.c.project_id), "int"),
        "project_name": Field(
            sa.select(projects.c.name)
            .join(tasks, tasks.c.project_id == projects.c.id)
            .where(tasks.c.id == jobs.c.task_id)
            .scalar_subquery()
        ),
        "stage": Field(jobs.c.stage, choices=get_args(Stage)),
        "state": Field(jobs.c.state, choices=get_args(State)),
        "task_id": Field(jobs.c.task_id, "int"),
        "task_name": Field(_of_task(tasks.c.name)),
        "type": Field(jobs.c.type, choices=("annotation", "ground_truth", "replica")),
        "updated_date": Field(jobs.c.updated_date, "datetime"),
    },
    search=("assignee", "project_name", "task_name"),
    simple=(
        "assignee",
        "dimension",
        "media_type",
        "mode",
        "parent_job_id",
        "project_id",
        "project_name",
        "stage",
        "state",
        "task_id",
        "task_name",
        "type",
    ),
)
"""CVAT's job list fields (cvat-sdk 2.80's `JobsApi.list`)."""


def _select() -> sa.Select[Any]:
    issue_count = sa.select(sa.func.count()).select_from(issues).where(issues.c.job_id == jobs.c.id)
    return sa.select(
        jobs,
        _task.c.name.label("task_name"),
        _task.c.project_id,
        _task.c.owner_id.label("task_owner_id"),
        _task.c.assignee_id.label("task_assignee_id"),
        _task.c.organization_id,
        _task.c.dimension,
        _task.c.mode,
        _task.c.media_type,
        _task.c.bug_tracker.label("task_bug_tracker"),
        _task.c.data_chunk_size,
        _task.c.compressed_chunk_type,
        _task.c.original_chunk_type,
        _task.c.target_storage,
        _task.c.source_storage,
        _project.c.name.label("project_name"),
        _project.c.bug_tracker.label("project_bug_tracker"),
        _project.c.owner_id.label("project_owner_id"),
        _project.c.assignee_id.label("project_assignee_id"),
        *basic_columns(_assignee, "assignee"),
        issue_count.scalar_subquery().label("issue_count"),
    ).select_from(
        jobs.join(_task, _task.c.id == jobs.c.task_id)
        .outerjoin(_project, _project.c.id == _task.c.project_id)
        .outerjoin(_assignee, _assignee.c.id == jobs.c.assignee_id)
    )


async def get_job(
    session: AsyncSession, job_id: int, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """One job with its task's and project's fields, if it matches `condition`."""
    row = (
        (await session.execute(_select().where(jobs.c.id == job_id, condition))).mappings().first()
    )
    return dict(row) if row else None


async def list_jobs(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The jobs matching `condition` and the list query, in its order, and their count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(sa.select(sa.func.count()).select_from(jobs).where(condition))
    statement = _select().where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def update_job(session: AsyncSession, job_id: int, values: dict[str, Any]) -> None:
    """Change a job's fields (and its `updated_date`)."""
    await session.execute(
        sa.update(jobs).where(jobs.c.id == job_id).values(**values, updated_date=sa.func.now())
    )


async def insert_jobs(
    session: AsyncSession, task_id: int, segments: list[Segment]
) -> list[dict[str, Any]]:
    """One job per segment, in one statement; returns their rows in segment (= id) order."""
    rows = (
        (
            await session.execute(
                sa.insert(jobs)
                .values(
                    [
                        {
                            "task_id": task_id,
                            "start_frame": segment.start_frame,
                            "stop_frame": segment.stop_frame,
                            "frames": segment.frames,
                        }
                        for segment in segments
                    ]
                )
                .returning(jobs.c.id, jobs.c.start_frame, jobs.c.stop_frame, jobs.c.frames)
            )
        )
        .mappings()
        .all()
    )
    return sorted((dict(row) for row in rows), key=lambda row: row["id"])


async def task_jobs(session: AsyncSession, task_id: int) -> list[dict[str, Any]]:
    """The ranges of a task's jobs (id, start_frame, stop_frame, frames) in id order."""
    rows = await session.execute(
        sa.select(jobs.c.id, jobs.c.start_frame, jobs.c.stop_frame, jobs.c.frames)
        .where(jobs.c.task_id == task_id)
        .order_by(jobs.c.id)
    )
    return [dict(row) for row in rows.mappings()]


async def stage_states(session: AsyncSession, task_id: int) -> list[tuple[str, str]]:
    """The distinct (stage, state) pairs of a task's jobs."""
    rows = await session.execute(
        sa.select(jobs.c.stage, jobs.c.state).where(jobs.c.task_id == task_id).distinct()
    )
    return [(row.stage, row.state) for row in rows]
