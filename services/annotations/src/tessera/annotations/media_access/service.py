"""Access decisions for the ingest and export services, made with the caller's own context."""

from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.access import Context
from tessera.annotations.tasks import repository as task_repository
from tessera.annotations.visibility import job_for, project_for, task_for
from tessera.platform.contracts.annotations import JobAccess, ProjectAccess, Role, TaskAccess


async def task_access(session: AsyncSession, ctx: Context, task_id: int) -> TaskAccess:
    """The task if the caller sees it (404 otherwise), with whether they may change it."""
    task = await task_for(session, ctx, task_id, change=False)
    can_change = ctx.manages_organization or ctx.user_id in (task.owner_id, task.assignee_id)
    return TaskAccess(
        task_id=task.id,
        project_id=task.project_id,
        organization_id=task.organization_id,
        owner_id=task.owner_id,
        segment_size=task.segment_size,
        overlap=task.overlap,
        dimension="3d" if task.dimension == "3d" else "2d",
        size=task.size,
        has_jobs=await task_repository.has_jobs(session, task_id),
        can_change=can_change,
    )


async def job_access(session: AsyncSession, ctx: Context, job_id: int) -> JobAccess:
    """The job if the caller sees it (404 otherwise), with its frames and whether they may
    change its annotations (as `job_for(change=True)` decides)."""
    job = await job_for(session, ctx, job_id, change=False)
    return JobAccess(
        job_id=job.id,
        task_id=job.task_id,
        start_frame=job.start_frame,
        stop_frame=job.stop_frame,
        frames=job.frames,
        can_change=ctx.role != Role.SUPERVISOR or ctx.is_admin,
    )


async def project_access(session: AsyncSession, ctx: Context, project_id: int) -> ProjectAccess:
    """The project if the caller sees it (404 otherwise), with its tasks in id order and
    whether they may change it (as `project_for(change=True)` decides)."""
    project = await project_for(session, ctx, project_id, change=False)
    can_change = ctx.manages_organization or ctx.user_id in (project.owner_id, project.assignee_id)
    return ProjectAccess(
        project_id=project.id,
        name=project.name,
        bug_tracker=project.bug_tracker,
        organization_id=project.organization_id,
        owner_id=project.owner_id,
        dimension="3d" if project.dimension == "3d" else "2d",
        task_ids=await task_repository.project_task_ids(session, project_id),
        can_change=can_change,
    )
