"""SQL over `tasks`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import jobs, projects, tasks
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import username_of, users
from tessera.platform.listing import Field, ListQuery, ListSpec

_owner = users.alias("owner")
_assignee = users.alias("assignee")
# Aliases keep visibility conditions (subqueries over `projects`) uncorrelated.
_project = projects.alias("project")


LIST_SPEC = ListSpec(
    fields={
        "id": Field(tasks.c.id, "int"),
        "name": Field(tasks.c.name),
        "owner": Field(username_of(tasks.c.owner_id)),
        "assignee": Field(username_of(tasks.c.assignee_id)),
        "project_id": Field(tasks.c.project_id, "int"),
        "project_name": Field(
            sa.select(projects.c.name).where(projects.c.id == tasks.c.project_id).scalar_subquery()
        ),
        "status": Field(tasks.c.status, choices=("annotation", "validation", "completed")),
        "subset": Field(tasks.c.subset),
        "mode": Field(tasks.c.mode, choices=("annotation", "interpolation")),
        "dimension": Field(tasks.c.dimension, choices=("2d", "3d")),
        "media_type": Field(tasks.c.media_type, choices=("image", "video", "point_cloud")),
        "tracker_link": Field(tasks.c.bug_tracker),
        # Tessera has no validation layouts (honeypots) yet: no task has a mode.
        "validation_mode": Field(sa.null().cast(sa.Text), choices=("gt", "gt_pool")),
        "created_date": Field(tasks.c.created_date, "datetime"),
        "updated_date": Field(tasks.c.updated_date, "datetime"),
    },
    search=("name", "owner", "assignee", "project_name", "subset", "tracker_link"),
    simple=(
        "name",
        "owner",
        "assignee",
        "project_id",
        "project_name",
        "status",
        "subset",
        "mode",
        "dimension",
        "media_type",
        "tracker_link",
        "validation_mode",
    ),
)
"""CVAT's task list fields (cvat-sdk 2.80's `TasksApi.list`)."""


def _select() -> sa.Select[Any]:
    of_task = jobs.c.task_id == tasks.c.id

    def count_jobs(*conditions: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
        return (
            sa.select(sa.func.count()).select_from(jobs).where(of_task, *conditions)
        ).scalar_subquery()

    return sa.select(
        tasks,
        _project.c.name.label("project_name"),
        *basic_columns(_owner, "owner"),
        *basic_columns(_assignee, "assignee"),
        count_jobs().label("job_count"),
        count_jobs(jobs.c.stage == "acceptance", jobs.c.state == "completed").label(
            "completed_jobs"
        ),
        count_jobs(jobs.c.stage == "validation").label("validation_jobs"),
    ).select_from(
        tasks.outerjoin(_project, _project.c.id == tasks.c.project_id)
        .outerjoin(_owner, _owner.c.id == tasks.c.owner_id)
        .outerjoin(_assignee, _assignee.c.id == tasks.c.assignee_id)
    )


async def get_task(
    session: AsyncSession, task_id: int, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """One task with its owner, assignee, project name and job counts, if it matches."""
    row = (
        (await session.execute(_select().where(tasks.c.id == task_id, condition)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_tasks(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The tasks matching `condition` and the list query, in its order, and their count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(sa.select(sa.func.count()).select_from(tasks).where(condition))
    statement = _select().where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def insert_task(session: AsyncSession, values: dict[str, Any]) -> dict[str, Any]:
    """Store a task; returns its row."""
    row = (
        (await session.execute(sa.insert(tasks).values(**values).returning(tasks))).mappings().one()
    )
    return dict(row)


async def update_task(session: AsyncSession, task_id: int, values: dict[str, Any]) -> None:
    """Change a task's fields (and its `updated_date`)."""
    await session.execute(
        sa.update(tasks).where(tasks.c.id == task_id).values(**values, updated_date=sa.func.now())
    )


async def has_jobs(session: AsyncSession, task_id: int) -> bool:
    """Whether the task's media has been cut into jobs already."""
    found = await session.scalar(sa.select(sa.exists().where(jobs.c.task_id == task_id)))
    return bool(found)


async def project_task_ids(session: AsyncSession, project_id: int) -> list[int]:
    """The ids of a project's tasks, in order."""
    found = await session.scalars(
        sa.select(tasks.c.id).where(tasks.c.project_id == project_id).order_by(tasks.c.id)
    )
    return list(found)


async def delete_task(session: AsyncSession, task_id: int) -> None:
    """Delete a task with its labels, jobs and annotations."""
    await session.execute(sa.delete(tasks).where(tasks.c.id == task_id))


async def lock_task(session: AsyncSession, task_id: int) -> dict[str, Any] | None:
    """The task's row, locked until the transaction ends; None when there is no such task."""
    row = (
        (await session.execute(sa.select(tasks).where(tasks.c.id == task_id).with_for_update()))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def set_project_dimension(session: AsyncSession, project_id: int, dimension: str) -> None:
    """Record the dimension of a project's media (set by its first task with media)."""
    await session.execute(
        sa.update(projects).where(projects.c.id == project_id).values(dimension=dimension)
    )


async def project_dimension(session: AsyncSession, project_id: int) -> str | None:
    """The dimension of a project's media, once known; the project stays locked."""
    dimension = await session.scalar(
        sa.select(projects.c.dimension).where(projects.c.id == project_id).with_for_update()
    )
    return None if dimension is None else str(dimension)
