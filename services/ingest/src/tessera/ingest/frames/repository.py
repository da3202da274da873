"""SQL of reading a task's media records."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.tables import chunks, frames, task_media


async def ready_media(session: AsyncSession, task_id: int) -> sa.Row[Any] | None:
    """The task's media record once it is ready."""
    return (
        await session.execute(
            sa.select(task_media).where(
                task_media.c.task_id == task_id, task_media.c.status == "ready"
            )
        )
    ).first()


async def set_deleted_frames(
    session: AsyncSession, task_id: int, replace: list[int] | None, deleted: list[int]
) -> list[int] | None:
    """Change the deleted frames of the task's ready media, locked meanwhile: those in
    `replace` (None: all of them) give way to `deleted`. The new list, sorted; None when
    the task has no ready media."""
    current = await session.scalar(
        sa.select(task_media.c.deleted_frames)
        .where(task_media.c.task_id == task_id, task_media.c.status == "ready")
        .with_for_update()
    )
    if current is None:
        return None
    kept = set() if replace is None else set(current) - set(replace)
    changed = sorted(kept | set(deleted))
    await session.execute(
        task_media.update().where(task_media.c.task_id == task_id).values(deleted_frames=changed)
    )
    return changed


async def frame_rows(
    session: AsyncSession, task_id: int, numbers: list[int] | None = None
) -> list[sa.Row[Any]]:
    """The task's frame rows in frame order (only `numbers` when given)."""
    query = sa.select(frames).where(frames.c.task_id == task_id).order_by(frames.c.frame)
    if numbers is not None:
        query = query.where(frames.c.frame.in_(numbers))
    return list((await session.execute(query)).all())


async def chunk(
    session: AsyncSession, task_id: int, quality: str, number: int
) -> sa.Row[Any] | None:
    """A stored chunk, marked as just used."""
    row: sa.Row[Any] | None = (
        await session.execute(
            chunks.update()
            .where(chunks.c.task_id == task_id, chunks.c.quality == quality,
                   chunks.c.number == number)
            .values(last_used=sa.func.now())
            .returning(chunks)
        )
    ).first()  # fmt: skip
    return row


async def add_cached_chunk(
    session: AsyncSession, task_id: int, *, quality: str, number: int, key: str, size: int
) -> None:
    """Record a chunk made on request."""
    await session.execute(
        insert(chunks)
        .values(task_id=task_id, quality=quality, number=number, object_key=key, size=size,
                cached=True, last_used=sa.func.now())
        .on_conflict_do_nothing()
    )  # fmt: skip


async def evict_cached(session: AsyncSession, budget: int) -> list[str]:
    """Forget the least recently used chunks made on request beyond `budget` bytes; their keys."""
    running = sa.func.sum(chunks.c.size).over(order_by=chunks.c.last_used.desc())
    ranked = (
        sa.select(chunks.c.task_id, chunks.c.quality, chunks.c.number, running.label("total"))
        .where(chunks.c.cached.is_(True))
        .subquery()
    )
    rows = (
        await session.execute(
            sa.delete(chunks)
            .where(
                chunks.c.task_id == ranked.c.task_id,
                chunks.c.quality == ranked.c.quality,
                chunks.c.number == ranked.c.number,
                ranked.c.total > budget,
            )
            .returning(chunks.c.object_key)
        )
    ).all()
    return [row.object_key for row in rows]
