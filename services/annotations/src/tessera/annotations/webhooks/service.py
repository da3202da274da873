"""Webhooks of projects and organizations, as CVAT has them, and what they are sent.

Consumers of every event of the service (`events.CONSUMED`), and of the other services'
events webhooks are told about (`events.FOREIGN`), match each event to the
active webhooks subscribed to its CVAT event name (project hooks by the event's project,
organization hooks by its organization) and queue one delivery per hook in the same
transaction as the inbox entry, so an event is matched exactly once. The `Deliverer`
sends them. Events map to CVAT's names: `tasks.created` -> `create:task`,
`tasks.deleted` -> `delete:task`, `jobs.updated` and `annotations.changed` ->
`update:job` (`changed_fields` says which), `labels.changed` -> `update:project` or
`update:task` (`labels`), `memberships.changed` -> `create:`, `update:` or
`delete:membership`. Tessera adds `finish:export`, which CVAT lacks: the export service's
`export.finished`, when an export request of the project's (or organization's) task,
job or project finished or failed (`export`: the request's id, status and failure
message, format, target, its task, project and job, `result_url`, `location`,
`cloud_storage_id`, `filename`).

Owners and maintainers (and admins) manage every webhook of their organization; the
owner of a project manages that project's webhooks; a webhook's creator manages it.
Target URLs must be http or https; nothing further restricts where they point.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations import events
from tessera.annotations.access import Context
from tessera.annotations.config import AnnotationsSettings
from tessera.annotations.events import EventScope
from tessera.annotations.links import api_url
from tessera.annotations.tables import projects, webhooks
from tessera.annotations.users.service import basic_user
from tessera.annotations.visibility import project_for
from tessera.annotations.webhooks import repository
from tessera.annotations.webhooks.delivery import Deliverer
from tessera.annotations.webhooks.schemas import (
    EVENT_DESCRIPTIONS,
    EVENTS_OF_TYPE,
    EventDescription,
    EventGroup,
    Events,
    Webhook,
    WebhookDelivery,
    WebhookUpdate,
    WebhookWrite,
)
from tessera.platform.bus import Event
from tessera.platform.contracts.export import EXPORT_FINISHED
from tessera.platform.errors import NotFound, unprocessable
from tessera.platform.listing import ListQuery, list_query
from tessera.platform.service import Platform

CONSUMER = "annotations-webhooks"
COUNTS = ("created", "updated", "deleted")
EXPORT_FIELDS = (
    "status", "message", "format", "target", "task_id", "project_id", "job_id", "result_url",
    "location", "cloud_storage_id", "filename",
)  # fmt: skip

list_query_of_webhooks = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the webhook list's parameters (CVAT's)."""


@dataclass(frozen=True)
class Mapped:
    """An event as webhooks know it: CVAT's name, the resource key, what changed."""

    name: str
    resource: str
    changed_fields: str = ""


def cvat_event(subject: str, data: dict[str, Any]) -> Mapped | None:
    """The CVAT event an event of the service is, if webhooks are told about it."""
    if subject == events.TASKS_CREATED:
        return Mapped("create:task", "task")
    if subject == events.TASKS_DELETED:
        return Mapped("delete:task", "task")
    if subject == events.JOBS_UPDATED:
        return Mapped("update:job", "job", ",".join(data["changes"]))
    if subject == events.ANNOTATIONS_CHANGED:
        return Mapped("update:job", "job", "annotations")
    if subject == events.LABELS_CHANGED:
        owner = "task" if data["task_id"] is not None else "project"
        return Mapped(f"update:{owner}", owner, "labels")
    if subject == events.MEMBERSHIPS_CHANGED:
        verb = (
            "create"
            if data["old_role"] is None
            else "delete"
            if data["new_role"] is None
            else "update"
        )
        return Mapped(f"{verb}:membership", "membership", "role" if verb == "update" else "")
    if subject == EXPORT_FINISHED:
        return Mapped("finish:export", "export")
    return None


def _resource(mapped: Mapped, scope: EventScope, data: dict[str, Any]) -> dict[str, Any]:
    """The resource of the payload, with what the event says about it."""
    organization = {"organization": scope.organization_id}
    if mapped.resource == "membership":
        return {
            "id": data["membership_id"],
            "user": {"id": data["user_id"]},
            "role": data["new_role"],
            **organization,
        }
    if mapped.resource == "project":
        return {"id": scope.project_id, **organization}
    if mapped.resource == "export":
        return {"id": data["rq_id"], **{key: data.get(key) for key in EXPORT_FIELDS}}
    if mapped.resource == "task":
        extra: dict[str, Any] = {key: data[key] for key in ("name", "owner_id") if key in data}
        return {"id": scope.task_id, "project_id": scope.project_id, **organization, **extra}
    job = {"id": scope.job_id, "task_id": scope.task_id, "project_id": scope.project_id}
    changes = data.get("changes", {})
    return {**job, **organization, **{name: change["new"] for name, change in changes.items()}}


async def payload(
    session: AsyncSession, mapped: Mapped, scope: EventScope, event: Event
) -> dict[str, Any]:
    """The body CVAT would send for the event (without `webhook_id`)."""
    data = event.data
    body: dict[str, Any] = {"event": mapped.name, mapped.resource: _resource(mapped, scope, data)}
    if "changes" in data:
        body["before_update"] = {name: change["old"] for name, change in data["changes"].items()}
    if mapped.resource == "membership" and data["old_role"] and data["new_role"]:
        body["before_update"] = {"role": data["old_role"]}
    if event.subject == events.ANNOTATIONS_CHANGED:
        body["annotations"] = {key: data[key] for key in ("version", *COUNTS)}
    if event.subject == events.LABELS_CHANGED:
        body["labels"] = {key: data[key] for key in COUNTS}
    body["sender"] = await _sender(session, event.actor_id)
    return body


async def _sender(session: AsyncSession, user_id: int | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    return {"id": user_id, "username": await repository.username_by_id(session, user_id)}


@asynccontextmanager
async def delivering(platform: Platform) -> AsyncIterator[Deliverer]:
    """The delivery loop, and the consumers that queue deliveries, while the context is
    open; the loop is what it yields (ping and redelivery send through it)."""
    settings = platform.settings
    assert isinstance(settings, AnnotationsSettings)
    deliverer = Deliverer(
        platform.database,
        max_attempts=settings.webhook_max_attempts,
        retry_base_s=settings.webhook_retry_base_s,
        timeout_s=settings.webhook_timeout_s,
    )
    deliverer.start()

    async def enqueue(session: AsyncSession, event: Event) -> None:
        mapped = cvat_event(event.subject, event.data)
        if mapped is None:
            return
        scope = await events.scope_of(session, event.data)
        hook_ids = await repository.matching_webhooks(session, mapped.name, scope)
        if not hook_ids:
            return
        body = await payload(session, mapped, scope, event)
        for hook_id in hook_ids:
            await repository.insert_delivery(
                session,
                {
                    "webhook_id": hook_id,
                    "event": mapped.name,
                    "changed_fields": mapped.changed_fields,
                    "request": {**body, "webhook_id": hook_id},
                    "next_attempt_at": sa.func.now(),
                },
            )
        deliverer.wake_after_commit(session)

    consumers = events.consumers_of_every_event(platform, CONSUMER, enqueue, also=events.FOREIGN)
    for consumer in consumers:
        consumer.start()
    try:
        yield deliverer
    finally:
        for consumer in consumers:
            await consumer.stop()
        await deliverer.stop()


def visible_webhooks(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `webhooks`: those the caller manages in this context."""
    if ctx.organization_id is not None:
        in_context = webhooks.c.organization_id == ctx.organization_id
    else:
        in_context = sa.true() if ctx.is_admin else webhooks.c.organization_id.is_(None)
    if ctx.manages_organization:
        return in_context
    own_project = sa.exists().where(
        projects.c.id == webhooks.c.project_id, projects.c.owner_id == ctx.user_id
    )
    return sa.and_(in_context, sa.or_(webhooks.c.owner_id == ctx.user_id, own_project))


def _to_schema(request: Request, row: dict[str, Any]) -> Webhook:
    return Webhook(
        id=row["id"],
        url=api_url(request, f"webhooks/{row['id']}"),
        target_url=row["target_url"],
        description=row["description"],
        type=row["type"],
        content_type=row["content_type"],
        is_active=row["is_active"],
        enable_ssl=row["enable_ssl"],
        created_date=row["created_date"],
        updated_date=row["updated_date"],
        owner=basic_user(request, row, "owner"),
        project_id=row["project_id"],
        organization=row["organization_id"],
        events=list(row["events"]),
        last_status=row["last_status"],
        last_delivery_date=row["last_delivery_date"],
    )


def delivery_schema(row: dict[str, Any]) -> WebhookDelivery:
    """A delivery row as read."""
    return WebhookDelivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event=row["event"],
        status_code=row["status_code"],
        redelivery=row["redelivery"],
        attempt=row["attempts"],
        request_duration=row["request_duration"],
        created_date=row["created_date"],
        updated_date=row["updated_date"],
        changed_fields=row["changed_fields"],
        request=row["request"],
        response=row["response"],
    )


def _check_events(kind: str, names: list[str]) -> None:
    allowed = EVENTS_OF_TYPE[kind]
    errors = [
        (f"body.events[{index}]", f"not an event of {kind} webhooks")
        for index, name in enumerate(names)
        if name not in allowed
    ]
    if errors:
        raise unprocessable(errors)


async def _webhook_row(session: AsyncSession, ctx: Context, webhook_id: int) -> dict[str, Any]:
    row = await repository.get_webhook(session, webhook_id, visible_webhooks(ctx))
    if row is None:
        raise NotFound(f"Webhook {webhook_id} does not exist.")
    return row


async def get_webhook(
    session: AsyncSession, ctx: Context, request: Request, webhook_id: int
) -> Webhook:
    """One webhook the caller manages."""
    return _to_schema(request, await _webhook_row(session, ctx, webhook_id))


async def list_webhooks(
    session: AsyncSession, ctx: Context, request: Request, query: ListQuery
) -> tuple[int, list[Webhook]]:
    """The webhooks the caller manages in this context that match the list query."""
    count, rows = await repository.list_webhooks(session, visible_webhooks(ctx), query)
    return count, [_to_schema(request, row) for row in rows]


async def create_webhook(
    session: AsyncSession, ctx: Context, request: Request, body: WebhookWrite
) -> Webhook:
    """Create a project webhook (its owner or the organization's managers may) or an
    organization webhook (in an organization context; its owners and maintainers may)."""
    _check_events(body.type, list(body.events))
    if body.type == "project":
        if body.project_id is None:
            raise unprocessable([("body.project_id", "a project webhook needs a project")])
        try:
            project = await project_for(session, ctx, body.project_id, change=False)
        except NotFound:
            raise unprocessable(
                [("body.project_id", f"project {body.project_id} does not exist")]
            ) from None
        ctx.require(
            ctx.manages_organization or project.owner_id == ctx.user_id,
            f"add webhooks to project {body.project_id}",
        )
        organization_id = project.organization_id
    else:
        if body.project_id is not None:
            raise unprocessable([("body.project_id", "an organization webhook has no project")])
        if ctx.organization_id is None:
            raise unprocessable(
                [("body.type", "organization webhooks are made in an organization context")]
            )
        ctx.require(ctx.manages_organization, "add webhooks to this organization")
        organization_id = ctx.organization_id
    webhook_id = await repository.insert_webhook(
        session,
        {
            **body.model_dump(exclude={"project_id"}),
            "project_id": body.project_id,
            "organization_id": organization_id,
            "owner_id": ctx.user_id,
        },
    )
    return await get_webhook(session, ctx, request, webhook_id)


async def update_webhook(
    session: AsyncSession, ctx: Context, request: Request, webhook_id: int, body: WebhookUpdate
) -> Webhook:
    """Change a webhook's target, events, secret or switches."""
    row = await _webhook_row(session, ctx, webhook_id)
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    if "events" in values:
        _check_events(row["type"], values["events"])
    if values:
        await repository.update_webhook(session, webhook_id, values)
    return await get_webhook(session, ctx, request, webhook_id)


async def delete_webhook(session: AsyncSession, ctx: Context, webhook_id: int) -> None:
    """Delete a webhook and its deliveries."""
    await _webhook_row(session, ctx, webhook_id)
    await repository.delete_webhook(session, webhook_id)


def list_events(kind: str | None) -> Events:
    """The events webhooks of `kind` (of any kind when None) can subscribe to."""
    names = EVENTS_OF_TYPE[kind or "organization"]
    return Events(
        webhook_type=kind or "all",
        events=[
            EventDescription(
                key=name,
                group=EventGroup(display_name=name.split(":")[1]),
                description=EVENT_DESCRIPTIONS[name],
            )
            for name in names
        ],
    )


async def list_deliveries(
    session: AsyncSession, ctx: Context, webhook_id: int, *, offset: int, limit: int | None
) -> tuple[int, list[WebhookDelivery]]:
    """A webhook's deliveries, newest first."""
    await _webhook_row(session, ctx, webhook_id)
    count, rows = await repository.list_deliveries(session, webhook_id, offset=offset, limit=limit)
    return count, [delivery_schema(row) for row in rows]


async def _delivery_row(
    session: AsyncSession, ctx: Context, webhook_id: int, delivery_id: int
) -> dict[str, Any]:
    await _webhook_row(session, ctx, webhook_id)
    row = await repository.get_delivery(session, webhook_id, delivery_id)
    if row is None:
        raise NotFound(f"Delivery {delivery_id} of webhook {webhook_id} does not exist.")
    return row


async def get_delivery(
    session: AsyncSession, ctx: Context, webhook_id: int, delivery_id: int
) -> WebhookDelivery:
    """One delivery of a webhook."""
    return delivery_schema(await _delivery_row(session, ctx, webhook_id, delivery_id))


async def redeliver(
    session: AsyncSession, ctx: Context, deliverer: Deliverer, webhook_id: int, delivery_id: int
) -> None:
    """Queue the same request again, as a new delivery marked `redelivery`."""
    row = await _delivery_row(session, ctx, webhook_id, delivery_id)
    await repository.insert_delivery(
        session,
        {
            "webhook_id": webhook_id,
            "event": row["event"],
            "changed_fields": row["changed_fields"],
            "request": row["request"],
            "redelivery": True,
            "next_attempt_at": sa.func.now(),
        },
    )
    deliverer.wake_after_commit(session)


async def ping(
    session: AsyncSession, ctx: Context, request: Request, deliverer: Deliverer, webhook_id: int
) -> WebhookDelivery:
    """Send a `ping` event now (once, not retried) and return its delivery."""
    row = await _webhook_row(session, ctx, webhook_id)
    body = {
        "event": "ping",
        "webhook": _to_schema(request, row).model_dump(mode="json"),
        "sender": await _sender(session, ctx.user_id),
        "webhook_id": webhook_id,
    }
    delivery = await repository.insert_delivery(
        session, {"webhook_id": webhook_id, "event": "ping", "request": body}
    )
    attempt = await deliverer.send(row, body)
    outcome = {**deliverer.outcome(1, attempt), "next_attempt_at": None}
    await repository.record_attempt(session, delivery["id"], outcome)
    return delivery_schema({**delivery, **outcome})
