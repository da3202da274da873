"""Schemas of `/api/webhooks` (CVAT's WebhookRead, WebhookWriteRequest, WebhookDeliveryRead)."""

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from tessera.annotations.users.schemas import BasicUser

PROJECT_EVENTS = (
    "create:task", "update:task", "delete:task", "update:job", "update:project", "finish:export",
)  # fmt: skip
ORGANIZATION_EVENTS = (
    *PROJECT_EVENTS,
    "create:membership",
    "update:membership",
    "delete:membership",
)
EVENTS_OF_TYPE = {"project": PROJECT_EVENTS, "organization": ORGANIZATION_EVENTS}
EVENT_DESCRIPTIONS = {
    "create:task": "A task was created.",
    "update:task": "A task's labels changed.",
    "delete:task": "A task was deleted (also with its project or organization).",
    "update:job": "A job's stage, state, assignee or annotations changed.",
    "update:project": "A project's labels changed.",
    "finish:export": "Tessera's own: an export request of a project, task or job ended, "
    "finished or failed (`export.status`); `export.result_url` downloads a finished archive "
    "that was not written into a cloud storage.",
    "create:membership": "A member joined the organization.",
    "update:membership": "A member's role changed.",
    "delete:membership": "A member left or was removed from the organization.",
}
EventName = Literal[
    "create:task",
    "update:task",
    "delete:task",
    "update:job",
    "update:project",
    "finish:export",
    "create:membership",
    "update:membership",
    "delete:membership",
]
WebhookType = Literal["project", "organization"]
ContentType = Literal["application/json"]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


TargetUrl = Annotated[str, Field(max_length=8192), AfterValidator(_http_url)]


class WebhookWrite(BaseModel):
    """A new webhook: `project` hooks need `project_id`; `organization` hooks are made in an
    organization context. `secret` signs every delivery (`X-Signature-256`) and is never
    returned."""

    target_url: TargetUrl
    type: WebhookType
    events: list[EventName] = Field(min_length=1)
    description: str = ""
    content_type: ContentType = "application/json"
    secret: str = ""
    is_active: bool = True
    enable_ssl: bool = True
    project_id: int | None = None


class WebhookUpdate(BaseModel):
    """Fields of a webhook to change (its type and project are fixed)."""

    target_url: TargetUrl | None = None
    events: list[EventName] | None = Field(default=None, min_length=1)
    description: str | None = None
    content_type: ContentType | None = None
    secret: str | None = None
    is_active: bool | None = None
    enable_ssl: bool | None = None


class Webhook(BaseModel):
    """A webhook as read."""

    id: int
    url: str
    target_url: str
    description: str
    type: WebhookType
    content_type: ContentType
    is_active: bool
    enable_ssl: bool
    created_date: datetime
    updated_date: datetime
    owner: BasicUser | None
    project_id: int | None
    organization: int | None
    events: list[str]
    last_status: int | None = Field(description="Status code of the latest delivery.")
    last_delivery_date: datetime | None

    @model_serializer(mode="wrap")
    def _omit_unknown_delivery(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        """Leave out `last_status` and `last_delivery_date` before the first delivery, as
        CVAT does (its clients expect them absent, not null). The return type is left
        out so that the OpenAPI schema stays the model's."""
        data = handler(self)
        for key in ("last_status", "last_delivery_date"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class WebhookDelivery(BaseModel):
    """One delivery: the request sent (or to be sent) and the receiver's latest answer."""

    id: int
    webhook_id: int
    event: str
    status_code: int | None
    redelivery: bool
    attempt: int = Field(description="Attempts made so far.")
    request_duration: int | None = Field(description="Milliseconds the last attempt took.")
    created_date: datetime
    updated_date: datetime
    changed_fields: str
    request: dict[str, Any]
    response: str | None = Field(description="The start of the receiver's latest answer.")


class EventGroup(BaseModel):
    """The resource an event is about."""

    display_name: str


class EventDescription(BaseModel):
    """One event a webhook can subscribe to."""

    key: str
    group: EventGroup
    description: str = Field(description="When the event is sent (Tessera's addition).")


class Events(BaseModel):
    """The events of a type of webhook (`all`: of any type)."""

    webhook_type: Literal["project", "organization", "all"]
    events: list[EventDescription]
