"""SQL over `projects`."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import projects, tasks
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import username_of, users
from tessera.platform.listing import Field, ListQuery, ListSpec

_owner = users.alias("owner")
_assignee = users.alias("assignee")


def _status() -> sa.ColumnElement[str]:
    """A project's status as `combined_status` makes it: its least advanced task's."""
    of_project = tasks.c.project_id == projects.c.id

    def any_task(status: str) -> sa.ColumnElement[bool]:
        return sa.exists().where(of_project, tasks.c.status == status)

    return sa.case(
        (~sa.exists().where(of_project), "annotation"),
        (any_task("annotation"), "annotation"),
        (any_task("validation"), "validation"),
        else_="completed",
    )


LIST_SPEC = ListSpec(
    fields={
        "id": Field(projects.c.id, "int"),
        "name": Field(projects.c.name),
        "owner": Field(username_of(projects.c.owner_id)),
        "assignee": Field(username_of(projects.c.assignee_id)),
        "status": Field(_status(), choices=("annotation", "validation", "completed")),
        "updated_date": Field(projects.c.updated_date, "datetime"),
    },
    search=("assignee", "name", "owner"),
    simple=("assignee", "name", "owner", "status"),
)
"""CVAT's project list fields (cvat-sdk 2.80's `ProjectsApi.list`)."""


def _select() -> sa.Select[Any]:
    of_project = tasks.c.project_id == projects.c.id
    task_count = sa.select(sa.func.count()).select_from(tasks).where(of_project)
    subsets = sa.select(sa.func.array_agg(sa.distinct(tasks.c.subset))).where(
        of_project, tasks.c.subset != ""
    )
    statuses = sa.select(sa.func.array_agg(sa.distinct(tasks.c.status))).where(of_project)
    return sa.select(
        projects,
        *basic_columns(_owner, "owner"),
        *basic_columns(_assignee, "assignee"),
        task_count.scalar_subquery().label("task_count"),
        subsets.scalar_subquery().label("task_subsets"),
        statuses.scalar_subquery().label("task_statuses"),
    ).select_from(
        projects.outerjoin(_owner, _owner.c.id == projects.c.owner_id).outerjoin(
            _assignee, _assignee.c.id == projects.c.assignee_id
        )
    )


async def get_project(
    session: AsyncSession, project_id: int, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """One project with its owner, assignee and task summary, if it matches `condition`."""
    row = (
        (await session.execute(_select().where(projects.c.id == project_id, condition)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_projects(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The projects matching `condition` and the list query, in its order, and their count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(sa.select(sa.func.count()).select_from(projects).where(condition))
    statement = _select().where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def insert_project(session: AsyncSession, values: dict[str, Any]) -> int:
    """Store a project; returns its id."""
    project_id = await session.scalar(sa.insert(projects).values(**values).returning(projects.c.id))
    return int(project_id)


async def update_project(session: AsyncSession, project_id: int, values: dict[str, Any]) -> None:
    """Change a project's fields (and its `updated_date`)."""
    await session.execute(
        sa.update(projects)
        .where(projects.c.id == project_id)
        .values(**values, updated_date=sa.func.now())
    )


async def delete_project(session: AsyncSession, project_id: int) -> list[dict[str, Any]]:
    """Delete a project with its tasks; returns the deleted tasks (id, project, organization)."""
    deleted = (
        (
            await session.execute(
                sa.delete(tasks)
                .where(tasks.c.project_id == project_id)
                .returning(tasks.c.id, tasks.c.project_id, tasks.c.organization_id)
            )
        )
        .mappings()
        .all()
    )
    await session.execute(sa.delete(projects).where(projects.c.id == project_id))
    return [dict(row) for row in deleted]
