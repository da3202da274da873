"""SQL over `export.exports`: one row per export request, and the archive it made."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.export.exports.schemas import ExportParams
from tessera.export.tables import exports, requests

OPEN = ("queued", "started")


async def running_request(session: AsyncSession, owner_id: int, request_key: str) -> str | None:
    """The id of the caller's queued or running request for the same export, if any."""
    return await session.scalar(
        sa.select(exports.c.rq_id)
        .join(requests, requests.c.id == exports.c.rq_id)
        .where(
            exports.c.owner_id == owner_id,
            exports.c.request_key == request_key,
            requests.c.status.in_(OPEN),
        )
        .limit(1)
    )


async def insert(
    session: AsyncSession, rq_id: str, owner_id: int, params: ExportParams, filename: str
) -> None:
    """Record the request's export, not done yet."""
    await session.execute(
        exports.insert().values(
            rq_id=rq_id,
            owner_id=owner_id,
            target=params.target,
            target_id=params.target_id,
            format=params.format,
            save_images=params.save_images,
            options=params.options.model_dump(mode="json"),
            params_key=params.key,
            request_key=params.request_key,
            filename=filename,
            done=False,
        )
    )


async def by_request(session: AsyncSession, rq_id: str) -> sa.Row[Any] | None:
    """The export row of a request."""
    return (await session.execute(sa.select(exports).where(exports.c.rq_id == rq_id))).first()


async def reusable(
    session: AsyncSession, params_key: str, version_key: str, now: datetime
) -> sa.Row[Any] | None:
    """A finished, unexpired archive of the same export of the same version."""
    return (
        await session.execute(
            sa.select(exports)
            .where(
                exports.c.params_key == params_key,
                exports.c.version_key == version_key,
                exports.c.done,
                exports.c.expiry_date > now,
            )
            .order_by(exports.c.expiry_date.desc())
            .limit(1)
        )
    ).first()


async def mark_done(
    session: AsyncSession,
    rq_id: str,
    *,
    version_key: str,
    object_key: str,
    size: int,
    expiry_date: datetime,
) -> int:
    """Record the archive a request made or reused; the row's id."""
    row_id = await session.scalar(
        exports.update()
        .where(exports.c.rq_id == rq_id)
        .values(
            version_key=version_key,
            object_key=object_key,
            size=size,
            done=True,
            expiry_date=expiry_date,
        )
        .returning(exports.c.id)
    )
    if row_id is None:
        raise LookupError(f"no export row for request {rq_id}")
    return int(row_id)


async def extend(session: AsyncSession, object_key: str, expiry_date: datetime) -> None:
    """Keep every row of an archive until `expiry_date` (it was reused)."""
    await session.execute(
        exports.update()
        .where(exports.c.object_key == object_key, exports.c.expiry_date < expiry_date)
        .values(expiry_date=expiry_date)
    )


async def delete_expired(session: AsyncSession, now: datetime) -> list[str]:
    """Delete the rows of archives that expired; the object keys no row names any more."""
    gone = (
        await session.execute(
            exports.delete().where(exports.c.expiry_date <= now).returning(exports.c.object_key)
        )
    ).scalars()
    keys = {key for key in gone if key}
    if not keys:
        return []
    still = (
        await session.execute(
            sa.select(exports.c.object_key).where(exports.c.object_key.in_(keys)).distinct()
        )
    ).scalars()
    return sorted(keys - set(still))
