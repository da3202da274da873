"""SQL of task media records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.tables import chunks, frames, task_media


async def media_exists(session: AsyncSession, task_id: int) -> bool:
    """Whether the task has media (being made or ready)."""
    found = await session.scalar(sa.select(sa.exists().where(task_media.c.task_id == task_id)))
    return bool(found)


async def media(session: AsyncSession, task_id: int) -> sa.Row[Any] | None:
    """The task's media record, ready or not."""
    return (
        await session.execute(sa.select(task_media).where(task_media.c.task_id == task_id))
    ).first()


async def insert_media(
    session: AsyncSession,
    record: dict[str, Any],
    frame_rows: Sequence[dict[str, Any]],
    chunk_rows: Sequence[dict[str, Any]],
) -> None:
    """Record a task's media, frames and chunks (status 'creating' until its jobs exist)."""
    await session.execute(task_media.insert().values(**record, created_date=sa.func.now()))
    for start in range(0, len(frame_rows), 5000):
        await session.execute(frames.insert(), list(frame_rows[start : start + 5000]))
    if chunk_rows:
        await session.execute(insert(chunks).on_conflict_do_nothing(), list(chunk_rows))


async def mark_ready(session: AsyncSession, task_id: int) -> None:
    """The task's jobs exist: its media can be read."""
    await session.execute(
        task_media.update().where(task_media.c.task_id == task_id).values(status="ready")
    )


async def delete_unfinished_media(session: AsyncSession, task_id: int) -> bool:
    """Forget a task's media records unless they are ready; whether the media is ready."""
    status = await session.scalar(
        sa.select(task_media.c.status).where(task_media.c.task_id == task_id).with_for_update()
    )
    if status == "ready":
        return True
    await session.execute(sa.delete(task_media).where(task_media.c.task_id == task_id))
    return False


async def delete_media(session: AsyncSession, task_id: int) -> None:
    """Forget a task's media records (frames and chunks go with it)."""
    await session.execute(sa.delete(task_media).where(task_media.c.task_id == task_id))
