"""Schemas of `/api/invitations` (CVAT's InvitationRead, InvitationWriteRequest)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from tessera.annotations.memberships.schemas import AssignableRole
from tessera.annotations.users.schemas import BasicUser

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$"
    ),
]


class InvitationCreate(BaseModel):
    """An invitation of a registered user, by e-mail address, into the organization context."""

    role: AssignableRole
    email: Email


class OrganizationInfo(BaseModel):
    """The organization an invitation is for, briefly."""

    id: int
    slug: str


class Invitation(BaseModel):
    """An invitation as read."""

    key: str
    created_date: datetime
    owner: BasicUser | None
    role: str
    user: BasicUser
    organization: int
    organization_info: OrganizationInfo
    expired: bool | None
    accepted: bool


class AcceptedInvitation(BaseModel):
    """Where an accepted invitation leads."""

    organization_slug: str
