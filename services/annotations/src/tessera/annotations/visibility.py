"""Which projects, tasks and jobs a caller sees, and which they may change.

In an organization, owners, maintainers and supervisors see everything of it; workers
see what they own or are assigned (a project, a task, or one of the task's jobs).
Outside organizations (a personal workspace) the same ownership rule applies to objects
with no organization. Server administrators see everything in the context they act in.
Supervisors see but do not change; workers change annotations only in jobs they see.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.access import Context
from tessera.annotations.tables import jobs, projects, tasks
from tessera.platform.contracts.annotations import Role
from tessera.platform.errors import NotFound


def _in_context(column: sa.ColumnElement[Any], ctx: Context) -> sa.ColumnElement[bool]:
    if ctx.organization_id is None:
        return sa.true() if ctx.is_admin else column.is_(None)
    return column == ctx.organization_id


def visible_projects(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `projects` selecting what the caller sees."""
    condition = _in_context(projects.c.organization_id, ctx)
    if ctx.sees_whole_organization:
        return condition
    me = ctx.user_id
    assigned_task = sa.exists().where(
        tasks.c.project_id == projects.c.id,
        sa.or_(tasks.c.owner_id == me, tasks.c.assignee_id == me),
    )
    return sa.and_(
        condition, sa.or_(projects.c.owner_id == me, projects.c.assignee_id == me, assigned_task)
    )


def visible_tasks(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `tasks` selecting what the caller sees."""
    condition = _in_context(tasks.c.organization_id, ctx)
    if ctx.sees_whole_organization:
        return condition
    me = ctx.user_id
    project_role = sa.exists().where(
        projects.c.id == tasks.c.project_id,
        sa.or_(projects.c.owner_id == me, projects.c.assignee_id == me),
    )
    assigned_job = sa.exists().where(jobs.c.task_id == tasks.c.id, jobs.c.assignee_id == me)
    return sa.and_(
        condition,
        sa.or_(tasks.c.owner_id == me, tasks.c.assignee_id == me, project_role, assigned_job),
    )


def visible_jobs(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `jobs` (the task is looked up) selecting what the caller sees.

    Outside the organization-wide roles, a job is seen by its assignee and by the owners
    and assignees of its task or project, not by the assignees of the task's other jobs.
    """
    if ctx.sees_whole_organization:
        return sa.exists().where(tasks.c.id == jobs.c.task_id, visible_tasks(ctx))
    me = ctx.user_id
    project_role = sa.exists().where(
        projects.c.id == tasks.c.project_id,
        sa.or_(projects.c.owner_id == me, projects.c.assignee_id == me),
    )
    return sa.exists().where(
        tasks.c.id == jobs.c.task_id,
        _in_context(tasks.c.organization_id, ctx),
        sa.or_(
            jobs.c.assignee_id == me,
            tasks.c.owner_id == me,
            tasks.c.assignee_id == me,
            project_role,
        ),
    )


async def job_for(session: AsyncSession, ctx: Context, job_id: int, *, change: bool) -> sa.Row[Any]:
    """The job row if the caller sees it (404 otherwise), and may change it when `change`."""
    row = (
        await session.execute(sa.select(jobs).where(jobs.c.id == job_id, visible_jobs(ctx)))
    ).first()
    if row is None:
        raise NotFound(f"Job {job_id} does not exist.")
    if change:
        ctx.require(ctx.role != Role.SUPERVISOR or ctx.is_admin, f"change job {job_id}")
    return row


async def task_for(
    session: AsyncSession, ctx: Context, task_id: int, *, change: bool
) -> sa.Row[Any]:
    """The task row if the caller sees it (404 otherwise), and may change it when `change`."""
    row = (
        await session.execute(sa.select(tasks).where(tasks.c.id == task_id, visible_tasks(ctx)))
    ).first()
    if row is None:
        raise NotFound(f"Task {task_id} does not exist.")
    if change:
        allowed = ctx.manages_organization or ctx.user_id in (row.owner_id, row.assignee_id)
        ctx.require(allowed, f"change task {task_id}")
    return row


async def project_for(
    session: AsyncSession, ctx: Context, project_id: int, *, change: bool
) -> sa.Row[Any]:
    """The project row if the caller sees it (404 otherwise), and may change it when `change`."""
    row = (
        await session.execute(
            sa.select(projects).where(projects.c.id == project_id, visible_projects(ctx))
        )
    ).first()
    if row is None:
        raise NotFound(f"Project {project_id} does not exist.")
    if change:
        allowed = ctx.manages_organization or ctx.user_id in (row.owner_id, row.assignee_id)
        ctx.require(allowed, f"change project {project_id}")
    return row
