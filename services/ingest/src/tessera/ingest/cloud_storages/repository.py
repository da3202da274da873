"""SQL of cloud storages and their encrypted secrets."""

from __future__ import annotations

import uuid
from typing import Any, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.ingest.cloud_storages.schemas import CredentialsType, ProviderType
from tessera.ingest.tables import cloud_storages, secrets, task_media
from tessera.platform.auth import username_of
from tessera.platform.listing import Field, ListQuery, ListSpec

_owner_username = sa.func.coalesce(
    username_of(cloud_storages.c.owner_id), cloud_storages.c.owner_username
)
"""The owner's username now (the one stored at creation if the user is gone)."""

LIST_SPEC = ListSpec(
    fields={
        "id": Field(cloud_storages.c.id, "int"),
        "name": Field(cloud_storages.c.display_name),
        "description": Field(cloud_storages.c.description),
        "owner": Field(_owner_username),
        "provider_type": Field(cloud_storages.c.provider_type, choices=get_args(ProviderType)),
        "credentials_type": Field(
            cloud_storages.c.credentials_type, choices=get_args(CredentialsType)
        ),
        "resource": Field(cloud_storages.c.resource),
    },
    search=("description", "name", "owner", "resource"),
    simple=("credentials_type", "name", "owner", "provider_type", "resource"),
)
"""CVAT's cloud storage list fields (cvat-sdk 2.80's `CloudstoragesApi.list`)."""


async def insert_secret(session: AsyncSession, ciphertext: bytes) -> uuid.UUID:
    """Store a sealed secret; its id."""
    secret_id = uuid.uuid4()
    await session.execute(sa.insert(secrets).values(id=secret_id, ciphertext=ciphertext))
    return secret_id


async def secret(session: AsyncSession, secret_id: uuid.UUID) -> bytes:
    """The ciphertext of a secret."""
    value = await session.scalar(sa.select(secrets.c.ciphertext).where(secrets.c.id == secret_id))
    if value is None:
        raise LookupError(f"secret {secret_id} is missing")
    return bytes(value)


async def delete_secret(session: AsyncSession, secret_id: uuid.UUID) -> None:
    """Remove a secret no storage refers to any more."""
    await session.execute(sa.delete(secrets).where(secrets.c.id == secret_id))


async def insert(session: AsyncSession, values: dict[str, Any]) -> sa.Row[Any]:
    """A new storage row."""
    row: sa.Row[Any] = (
        await session.execute(sa.insert(cloud_storages).values(**values).returning(cloud_storages))
    ).one()
    return row


async def get(session: AsyncSession, storage_id: int) -> sa.Row[Any] | None:
    """One storage row."""
    return (
        await session.execute(sa.select(cloud_storages).where(cloud_storages.c.id == storage_id))
    ).first()


async def update(session: AsyncSession, storage_id: int, values: dict[str, Any]) -> sa.Row[Any]:
    """Change a storage row (its updated_date too)."""
    row: sa.Row[Any] = (
        await session.execute(
            sa.update(cloud_storages)
            .where(cloud_storages.c.id == storage_id)
            .values(**values, updated_date=sa.func.now())
            .returning(cloud_storages)
        )
    ).one()
    return row


async def delete(session: AsyncSession, storage_id: int) -> None:
    """Remove a storage row."""
    await session.execute(sa.delete(cloud_storages).where(cloud_storages.c.id == storage_id))


def visible(
    user_id: int, organization_id: int | None, *, is_admin: bool, whole_organization: bool
) -> sa.ColumnElement[bool]:
    """The storages a caller sees in their context (see the service for the rules)."""
    in_context = (
        cloud_storages.c.organization_id.is_(None)
        if organization_id is None
        else cloud_storages.c.organization_id == organization_id
    )
    if is_admin and organization_id is None:
        return sa.true()
    if is_admin or (organization_id is not None and whole_organization):
        return in_context
    return sa.and_(in_context, cloud_storages.c.owner_id == user_id)


async def page(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[sa.Row[Any]]]:
    """(count, rows of the page) of the storages matching `condition` and the list query,
    in its order."""
    where = sa.and_(condition, query.condition)
    count = (
        await session.scalar(sa.select(sa.func.count()).select_from(cloud_storages).where(where))
        or 0
    )
    rows = (
        await session.execute(
            sa.select(cloud_storages)
            .where(where)
            .order_by(*query.ordering)
            .offset(query.offset)
            .limit(query.limit)
        )
    ).all()
    return int(count), list(rows)


async def tasks_reading_from(session: AsyncSession, storage_id: int) -> list[int]:
    """Tasks whose media is read from the storage (made without copy_data)."""
    return list(
        await session.scalars(
            sa.select(task_media.c.task_id)
            .where(
                task_media.c.cloud_storage_id == storage_id,
                task_media.c.storage == "cloud_storage",
            )
            .order_by(task_media.c.task_id)
        )
    )
