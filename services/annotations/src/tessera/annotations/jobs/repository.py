"""SQL over `jobs`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.jobs.schemas import Segment
from tessera.annotations.tables import issues, jobs, projects, tasks
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import users

_assignee = users.alias("assignee")
# Aliases keep visibility conditions (subqueries over `tasks`) uncorrelated.
_task = tasks.alias("task")
_project = projects.alias("project")


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
    session: AsyncSession, condition: sa.ColumnElement[bool], *, offset: int, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """The jobs matching `condition`, newest first, and their total count."""
    count = await session.scalar(sa.select(sa.func.count()).select_from(jobs).where(condition))
    rows = (
        (
            await session.execute(
                _select().where(condition).order_by(jobs.c.id.desc()).offset(offset).limit(limit)
            )
        )
        .mappings()
        .all()
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


async def stage_states(session: AsyncSession, task_id: int) -> list[tuple[str, str]]:
    """The distinct (stage, state) pairs of a task's jobs."""
    rows = await session.execute(
        sa.select(jobs.c.stage, jobs.c.state).where(jobs.c.task_id == task_id).distinct()
    )
    return [(row.stage, row.state) for row in rows]
