"""SQL of uploads and task media records."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.tables import chunks, frames, task_media, upload_files, uploads


async def lock_task_uploads(session: AsyncSession, task_id: int) -> None:
    """Serialise the upload steps of one task until the transaction ends."""
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(1_000_003, task_id)))


async def media_exists(session: AsyncSession, task_id: int) -> bool:
    """Whether the task has media (being made or ready)."""
    found = await session.scalar(sa.select(sa.exists().where(task_media.c.task_id == task_id)))
    return bool(found)


async def media(session: AsyncSession, task_id: int) -> sa.Row[Any] | None:
    """The task's media record, ready or not."""
    return (
        await session.execute(sa.select(task_media).where(task_media.c.task_id == task_id))
    ).first()


async def clear_uploads(session: AsyncSession, task_id: int) -> None:
    """Forget the task's uploaded files and unfinished uploads (their objects stay)."""
    await session.execute(sa.delete(upload_files).where(upload_files.c.task_id == task_id))
    await session.execute(sa.delete(uploads).where(uploads.c.task_id == task_id))


async def uploaded_files(session: AsyncSession, task_id: int) -> list[sa.Row[Any]]:
    """The task's uploaded files, in upload order."""
    return list(
        (
            await session.execute(
                sa.select(upload_files)
                .where(upload_files.c.task_id == task_id)
                .order_by(upload_files.c.position)
            )
        ).all()
    )


async def file_names(session: AsyncSession, task_id: int) -> set[str]:
    """Names already taken by the task's uploads, finished or not."""
    done = await session.scalars(
        sa.select(upload_files.c.name).where(upload_files.c.task_id == task_id)
    )
    pending = await session.scalars(
        sa.select(uploads.c.filename).where(uploads.c.task_id == task_id)
    )
    return set(done) | set(pending)


async def add_file(
    session: AsyncSession, task_id: int, name: str, object_key: str, size: int
) -> None:
    """Record an uploaded file after the task's others."""
    position = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.max(upload_files.c.position) + 1, 0)).where(
            upload_files.c.task_id == task_id
        )
    )
    await session.execute(
        upload_files.insert().values(
            task_id=task_id, name=name, object_key=object_key, size=size, position=position,
            created_date=sa.func.now(),
        )
    )  # fmt: skip


async def create_upload(
    session: AsyncSession, task_id: int, owner_id: int, filename: str, length: int
) -> uuid.UUID:
    """Start a resumable upload; its id."""
    upload_id = uuid.uuid4()
    await session.execute(
        uploads.insert().values(
            id=upload_id, task_id=task_id, owner_id=owner_id, filename=filename, length=length,
            received=0, parts=0, created_date=sa.func.now(),
        )
    )  # fmt: skip
    return upload_id


async def upload(
    session: AsyncSession, task_id: int, upload_id: uuid.UUID, *, lock: bool = False
) -> sa.Row[Any] | None:
    """A resumable upload of the task (locked if asked)."""
    query = sa.select(uploads).where(uploads.c.id == upload_id, uploads.c.task_id == task_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def advance_upload(session: AsyncSession, upload_id: uuid.UUID, received: int) -> None:
    """Record bytes received and one more part."""
    await session.execute(
        uploads.update()
        .where(uploads.c.id == upload_id)
        .values(received=received, parts=uploads.c.parts + 1)
    )


async def finish_upload(session: AsyncSession, upload_id: uuid.UUID) -> None:
    """Forget a completed resumable upload (its file is recorded separately)."""
    await session.execute(sa.delete(uploads).where(uploads.c.id == upload_id))


async def unfinished_uploads(session: AsyncSession, task_id: int) -> list[sa.Row[Any]]:
    """The task's resumable uploads not yet joined into a file (by file name).

    A zero-length upload stays here too: no PATCH ever completes it.
    """
    query = sa.select(uploads).where(uploads.c.task_id == task_id).order_by(uploads.c.filename)
    return list((await session.execute(query)).all())


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
