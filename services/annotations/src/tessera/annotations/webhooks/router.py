"""`/api/webhooks`: project and organization webhooks, their deliveries, ping, redelivery."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from tessera.annotations.access import RequestContext
from tessera.annotations.state import RunningDeliverer
from tessera.annotations.webhooks import service
from tessera.annotations.webhooks.schemas import (
    Events,
    Webhook,
    WebhookDelivery,
    WebhookUpdate,
    WebhookWrite,
)
from tessera.annotations.webhooks.service import list_query_of_webhooks
from tessera.platform.db import DbSession
from tessera.platform.listing import ListQuery
from tessera.platform.pagination import Page, PageParams, page_params

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])
Pages = Annotated[PageParams, Depends(page_params)]


@router.get("", summary="List webhooks")
async def list_webhooks(
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    query: Annotated[ListQuery, Depends(list_query_of_webhooks)],
) -> Page[Webhook]:
    """The webhooks the caller manages in the organization context (newest first unless
    sorted)."""
    count, results = await service.list_webhooks(session, ctx, request, query)
    return Page[Webhook].build(request, query.page, count, results)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a webhook")
async def create_webhook(
    body: WebhookWrite, request: Request, ctx: RequestContext, session: DbSession
) -> Webhook:
    """A project webhook (`project_id`) or an organization webhook (in its context)."""
    return await service.create_webhook(session, ctx, request, body)


@router.get("/events", summary="List the events webhooks can subscribe to")
async def list_events(
    type: Annotated[Literal["project", "organization"] | None, Query()] = None,
) -> Events:
    """CVAT's event names, for one type of webhook or for all."""
    return service.list_events(type)


@router.get("/{webhook_id}", summary="Get webhook details")
async def get_webhook(
    webhook_id: int, request: Request, ctx: RequestContext, session: DbSession
) -> Webhook:
    """One webhook (its secret is never returned)."""
    return await service.get_webhook(session, ctx, request, webhook_id)


@router.patch("/{webhook_id}", summary="Update a webhook")
async def update_webhook(
    webhook_id: int, body: WebhookUpdate, request: Request, ctx: RequestContext, session: DbSession
) -> Webhook:
    """Change the target, events, secret, or the `is_active` and `enable_ssl` switches."""
    return await service.update_webhook(session, ctx, request, webhook_id, body)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a webhook")
async def delete_webhook(webhook_id: int, ctx: RequestContext, session: DbSession) -> Response:
    """Delete a webhook with its deliveries."""
    await service.delete_webhook(session, ctx, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", summary="List a webhook's deliveries")
async def list_deliveries(
    webhook_id: int, request: Request, ctx: RequestContext, session: DbSession, params: Pages
) -> Page[WebhookDelivery]:
    """Deliveries, newest first, each with its latest status code and response."""
    count, results = await service.list_deliveries(
        session, ctx, webhook_id, offset=params.offset, limit=params.limit
    )
    return Page[WebhookDelivery].build(request, params, count, results)


@router.get("/{webhook_id}/deliveries/{delivery_id}", summary="Get a delivery")
async def get_delivery(
    webhook_id: int, delivery_id: int, ctx: RequestContext, session: DbSession
) -> WebhookDelivery:
    """One delivery."""
    return await service.get_delivery(session, ctx, webhook_id, delivery_id)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redelivery", summary="Redeliver")
async def redeliver(
    webhook_id: int,
    delivery_id: int,
    ctx: RequestContext,
    session: DbSession,
    deliverer: RunningDeliverer,
) -> Response:
    """Send a delivery's request again, as a new delivery (in the background)."""
    await service.redeliver(session, ctx, deliverer, webhook_id, delivery_id)
    return Response(status_code=status.HTTP_200_OK)


@router.post("/{webhook_id}/ping", summary="Ping a webhook")
async def ping(
    webhook_id: int,
    request: Request,
    ctx: RequestContext,
    session: DbSession,
    deliverer: RunningDeliverer,
) -> WebhookDelivery:
    """Send a `ping` event to the target now and return the delivery with its answer."""
    return await service.ping(session, ctx, request, deliverer, webhook_id)
