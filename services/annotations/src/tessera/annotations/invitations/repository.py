"""SQL over `invitations` (each with the pending membership it offers)."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.tables import invitations, memberships, organizations
from tessera.annotations.users.repository import basic_columns
from tessera.platform.auth import username_of, users
from tessera.platform.listing import Field, ListQuery, ListSpec

_owner = users.alias("owner")
_user = users.alias("invitee")

LIST_SPEC = ListSpec(
    fields={
        # An invitation's primary key is its `key`; CVAT's `id` filter names the same.
        "id": Field(invitations.c.key),
        "owner": Field(username_of(invitations.c.owner_id)),
        "user_id": Field(memberships.c.user_id, "int"),
        "accepted": Field(memberships.c.is_active, "bool"),
        "created_date": Field(invitations.c.created_date, "datetime"),
    },
    search=("owner",),
    simple=("accepted", "owner", "user_id"),
    default_sort=("-created_date",),
)
"""CVAT's invitation list fields (cvat-sdk 2.80's `InvitationsApi.list`); the list is
always joined with the invited membership, which `user_id` and `accepted` read."""


def _select() -> sa.Select[Any]:
    return sa.select(
        invitations,
        memberships.c.user_id,
        memberships.c.organization_id,
        memberships.c.role,
        memberships.c.is_active,
        organizations.c.slug.label("organization_slug"),
        *basic_columns(_owner, "owner"),
        *basic_columns(_user, "user"),
    ).select_from(
        invitations.join(memberships, memberships.c.id == invitations.c.membership_id)
        .join(organizations, organizations.c.id == memberships.c.organization_id)
        .join(_user, _user.c.id == memberships.c.user_id)
        .outerjoin(_owner, _owner.c.id == invitations.c.owner_id)
    )


async def get_invitation(
    session: AsyncSession, key: str, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """One invitation with its membership, organization and people, if it matches."""
    row = (
        (await session.execute(_select().where(invitations.c.key == key, condition)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def list_invitations(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The invitations matching `condition` and the list query, in its order, and their
    count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(
        sa.select(sa.func.count())
        .select_from(invitations.join(memberships, memberships.c.id == invitations.c.membership_id))
        .where(condition)
    )
    statement = _select().where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def insert_invitation(
    session: AsyncSession, *, key: str, membership_id: int, owner_id: int
) -> None:
    """Store an invitation to a pending membership, sent now."""
    await session.execute(
        sa.insert(invitations).values(
            key=key, membership_id=membership_id, owner_id=owner_id, sent_date=sa.func.now()
        )
    )


async def update_invitation(session: AsyncSession, key: str, values: dict[str, Any]) -> None:
    """Change an invitation's fields."""
    await session.execute(sa.update(invitations).where(invitations.c.key == key).values(**values))


async def delete_invitation(session: AsyncSession, key: str) -> None:
    """Delete an invitation (its membership stays)."""
    await session.execute(sa.delete(invitations).where(invitations.c.key == key))
