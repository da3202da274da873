"""SQL over `webhooks` and `webhook_deliveries`."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.events import EventScope
from tessera.annotations.tables import webhook_deliveries, webhooks
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import username_of, users
from tessera.platform.listing import Field, ListQuery, ListSpec

_owner = users.alias("owner")

LIST_SPEC = ListSpec(
    fields={
        "id": Field(webhooks.c.id, "int"),
        "description": Field(webhooks.c.description),
        "owner": Field(username_of(webhooks.c.owner_id)),
        "project_id": Field(webhooks.c.project_id, "int"),
        "target_url": Field(webhooks.c.target_url),
        "type": Field(webhooks.c.type, choices=("organization", "project")),
        "updated_date": Field(webhooks.c.updated_date, "datetime"),
    },
    search=("description", "owner", "target_url"),
    simple=("owner", "project_id", "target_url", "type"),
)
"""CVAT's webhook list fields (cvat-sdk 2.80's `WebhooksApi.list`)."""


def _select() -> sa.Select[Any]:
    latest = (
        sa.select(webhook_deliveries.c.status_code, webhook_deliveries.c.updated_date)
        .where(
            webhook_deliveries.c.webhook_id == webhooks.c.id,
            webhook_deliveries.c.attempts > 0,
        )
        .order_by(webhook_deliveries.c.updated_date.desc())
        .limit(1)
        .lateral("latest")
    )
    return sa.select(
        webhooks,
        latest.c.status_code.label("last_status"),
        latest.c.updated_date.label("last_delivery_date"),
        *basic_columns(_owner, "owner"),
    ).select_from(
        webhooks.outerjoin(latest, sa.true()).outerjoin(_owner, _owner.c.id == webhooks.c.owner_id)
    )


async def insert_webhook(session: AsyncSession, values: dict[str, Any]) -> int:
    """Store a webhook; returns its id."""
    webhook_id = await session.scalar(sa.insert(webhooks).values(**values).returning(webhooks.c.id))
    return int(webhook_id)


async def get_webhook(
    session: AsyncSession, webhook_id: int, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """One webhook with its owner and latest delivery, if it matches `condition`."""
    row = (
        (await session.execute(_select().where(webhooks.c.id == webhook_id, condition)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_webhooks(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The webhooks matching `condition` and the list query, in its order, and their count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(sa.select(sa.func.count()).select_from(webhooks).where(condition))
    statement = _select().where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def update_webhook(session: AsyncSession, webhook_id: int, values: dict[str, Any]) -> None:
    """Change a webhook's fields."""
    await session.execute(
        sa.update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .values(**values, updated_date=sa.func.now())
    )


async def delete_webhook(session: AsyncSession, webhook_id: int) -> None:
    """Delete a webhook with its deliveries."""
    await session.execute(sa.delete(webhooks).where(webhooks.c.id == webhook_id))


async def matching_webhooks(session: AsyncSession, event: str, scope: EventScope) -> list[int]:
    """Active webhooks subscribed to `event`: those of the scope's project (project hooks)
    and of its organization (organization hooks)."""
    rows = await session.scalars(
        sa.select(webhooks.c.id).where(
            webhooks.c.is_active,
            webhooks.c.events.contains([event]),
            sa.or_(
                sa.and_(webhooks.c.type == "project", webhooks.c.project_id == scope.project_id),
                sa.and_(
                    webhooks.c.type == "organization",
                    webhooks.c.organization_id == scope.organization_id,
                ),
            ),
        )
    )
    return list(rows)


async def username_by_id(session: AsyncSession, user_id: int) -> str | None:
    """A user's username, or None."""
    name = await session.scalar(sa.select(users.c.username).where(users.c.id == user_id))
    return None if name is None else str(name)


async def insert_delivery(session: AsyncSession, values: dict[str, Any]) -> dict[str, Any]:
    """Store a delivery; returns its row."""
    row = (
        (
            await session.execute(
                sa.insert(webhook_deliveries).values(**values).returning(webhook_deliveries)
            )
        )
        .mappings()
        .one()
    )
    return dict(row)


async def get_delivery(
    session: AsyncSession, webhook_id: int, delivery_id: int
) -> dict[str, Any] | None:
    """One delivery of a webhook, or None."""
    row = (
        (
            await session.execute(
                sa.select(webhook_deliveries).where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.webhook_id == webhook_id,
                )
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_deliveries(
    session: AsyncSession, webhook_id: int, *, offset: int, limit: int | None
) -> tuple[int, list[dict[str, Any]]]:
    """A webhook's deliveries, newest first, and their count."""
    condition = webhook_deliveries.c.webhook_id == webhook_id
    count = await session.scalar(
        sa.select(sa.func.count()).select_from(webhook_deliveries).where(condition)
    )
    rows = (
        (
            await session.execute(
                sa.select(webhook_deliveries)
                .where(condition)
                .order_by(webhook_deliveries.c.id.desc())
                .offset(offset)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def claim_due(
    session: AsyncSession, limit: int, lease_until: datetime
) -> list[dict[str, Any]]:
    """Up to `limit` deliveries due now, with their webhook's target and secret; each is
    leased (its next attempt moved to `lease_until`) so no other worker takes it meanwhile."""
    due = (
        sa.select(webhook_deliveries.c.id)
        .where(webhook_deliveries.c.next_attempt_at <= sa.func.now())
        .order_by(webhook_deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = (
        sa.update(webhook_deliveries)
        .where(webhook_deliveries.c.id.in_(due))
        .values(next_attempt_at=lease_until)
        .returning(
            webhook_deliveries.c.id,
            webhook_deliveries.c.webhook_id,
            webhook_deliveries.c.request,
            webhook_deliveries.c.attempts,
        )
        .cte("claimed")
    )
    rows = (
        (
            await session.execute(
                sa.select(
                    claimed,
                    webhooks.c.target_url,
                    webhooks.c.secret,
                    webhooks.c.content_type,
                    webhooks.c.enable_ssl,
                    webhooks.c.is_active,
                ).join(webhooks, webhooks.c.id == claimed.c.webhook_id)
            )
        )
        .mappings()
        .all()
    )
    return [dict(row) for row in rows]


async def record_attempt(session: AsyncSession, delivery_id: int, values: dict[str, Any]) -> None:
    """Store the outcome of an attempt (and when to try again, if ever)."""
    await session.execute(
        sa.update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(**values, updated_date=sa.func.now())
    )
