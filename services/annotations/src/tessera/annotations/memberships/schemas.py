"""Schemas of `/api/memberships` (CVAT's MembershipRead, PatchedMembershipWriteRequest)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from tessera.annotations.users.schemas import BasicUser

AssignableRole = Literal["maintainer", "supervisor", "worker"]


class MembershipUpdate(BaseModel):
    """A new role for a member (an organization has one owner, who keeps that role)."""

    role: AssignableRole


class Membership(BaseModel):
    """A membership as read; inactive until its invitation is accepted."""

    id: int
    user: BasicUser
    organization: int
    is_active: bool
    joined_date: datetime | None
    role: Literal["owner", "maintainer", "supervisor", "worker"]
    invitation: str | None
