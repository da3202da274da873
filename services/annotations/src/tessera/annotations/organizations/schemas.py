"""Schemas of `/api/organizations` (CVAT's OrganizationRead and OrganizationWriteRequest)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from tessera.annotations.users.schemas import BasicUser

Slug = Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[-a-zA-Z0-9_]+$")]
OrganizationName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]


class OrganizationCreate(BaseModel):
    """A new organization; its creator becomes its owner. `name` defaults to the slug."""

    slug: Slug
    name: OrganizationName = ""
    description: str = ""
    contact: dict[str, Any] = Field(default_factory=dict)


class OrganizationUpdate(BaseModel):
    """A partial update of an organization."""

    slug: Slug | None = None
    name: OrganizationName | None = None
    description: str | None = None
    contact: dict[str, Any] | None = None


class Organization(BaseModel):
    """An organization as read."""

    id: int
    slug: str
    name: str
    description: str
    created_date: datetime
    updated_date: datetime
    contact: dict[str, Any]
    owner: BasicUser | None
