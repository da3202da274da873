"""SQL over `labels` and `attribute_specs`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations.labels.schemas import LabelType
from tessera.annotations.tables import attribute_specs, jobs, labels, tasks
from tessera.platform.listing import Field, ListQuery, ListSpec

LABEL_FIELDS = ("name", "color", "type", "svg")
ATTRIBUTE_FIELDS = ("name", "mutable", "input_type", "default_value", "values")
_parent = labels.alias("parent")

LIST_SPEC = ListSpec(
    fields={
        "id": Field(labels.c.id, "int"),
        "name": Field(labels.c.name),
        "color": Field(labels.c.color),
        "type": Field(labels.c.type, choices=get_args(LabelType)),
        "parent": Field(
            sa.select(_parent.c.name).where(_parent.c.id == labels.c.parent_id).scalar_subquery()
        ),
        "parent_id": Field(labels.c.parent_id, "int"),
    },
    search=("name", "parent"),
    simple=("color", "name", "parent", "parent_id", "type"),
    default_sort=("id",),
)
"""CVAT's label list fields (cvat-sdk 2.80's `LabelsApi.list`)."""


@dataclass(frozen=True)
class LabelOwner:
    """Whose labels: a project's or a task's (a task in a project has none of its own)."""

    project_id: int | None = None
    task_id: int | None = None

    def condition(self) -> sa.ColumnElement[bool]:
        """Condition on `labels` selecting the owner's labels, sublabels included."""
        if self.project_id is not None:
            return labels.c.project_id == self.project_id
        return labels.c.task_id == self.task_id


async def owner_labels(
    session: AsyncSession, owner: LabelOwner
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every label of `owner` (sublabels included) and their attributes, in id order."""
    label_rows = (
        (await session.execute(sa.select(labels).where(owner.condition()).order_by(labels.c.id)))
        .mappings()
        .all()
    )
    attribute_rows = await attributes_of(session, [row["id"] for row in label_rows])
    return [dict(row) for row in label_rows], attribute_rows


async def attributes_of(session: AsyncSession, label_ids: Collection[int]) -> list[dict[str, Any]]:
    """The attributes of `label_ids`, in id order."""
    if not label_ids:
        return []
    rows = (
        (
            await session.execute(
                sa.select(attribute_specs)
                .where(attribute_specs.c.label_id.in_(label_ids))
                .order_by(attribute_specs.c.id)
            )
        )
        .mappings()
        .all()
    )
    return [dict(row) for row in rows]


async def sublabels_of(session: AsyncSession, parent_ids: Collection[int]) -> list[dict[str, Any]]:
    """The sublabels of the skeletons `parent_ids`, in id order."""
    if not parent_ids:
        return []
    rows = (
        (
            await session.execute(
                sa.select(labels).where(labels.c.parent_id.in_(parent_ids)).order_by(labels.c.id)
            )
        )
        .mappings()
        .all()
    )
    return [dict(row) for row in rows]


async def list_labels(
    session: AsyncSession, condition: sa.ColumnElement[bool], query: ListQuery
) -> tuple[int, list[dict[str, Any]]]:
    """The labels matching `condition` and the list query, in its order, and their count."""
    condition = sa.and_(condition, query.condition)
    count = await session.scalar(sa.select(sa.func.count()).select_from(labels).where(condition))
    statement = sa.select(labels).where(condition).order_by(*query.ordering)
    rows = (
        (await session.execute(statement.offset(query.offset).limit(query.limit))).mappings().all()
    )
    return int(count or 0), [dict(row) for row in rows]


async def get_label(
    session: AsyncSession, label_id: int, condition: sa.ColumnElement[bool]
) -> dict[str, Any] | None:
    """The label `label_id` if it matches `condition`, else None."""
    row = (
        (await session.execute(sa.select(labels).where(labels.c.id == label_id, condition)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def insert_label(
    session: AsyncSession, owner: LabelOwner, parent_id: int | None, values: dict[str, Any]
) -> int:
    """Store a label (a sublabel when `parent_id` is set); returns its id."""
    label_id = await session.scalar(
        sa.insert(labels)
        .values(project_id=owner.project_id, task_id=owner.task_id, parent_id=parent_id, **values)
        .returning(labels.c.id)
    )
    return int(label_id)


async def update_label(session: AsyncSession, label_id: int, values: dict[str, Any]) -> None:
    """Change a label's fields."""
    await session.execute(sa.update(labels).where(labels.c.id == label_id).values(**values))


async def delete_label(session: AsyncSession, label_id: int) -> None:
    """Delete a label with its sublabels, attributes and every annotation that uses it."""
    await session.execute(sa.delete(labels).where(labels.c.id == label_id))


async def insert_attribute(session: AsyncSession, label_id: int, values: dict[str, Any]) -> int:
    """Store an attribute of `label_id`; returns its id."""
    attribute_id = await session.scalar(
        sa.insert(attribute_specs)
        .values(label_id=label_id, **values)
        .returning(attribute_specs.c.id)
    )
    return int(attribute_id)


async def update_attribute(
    session: AsyncSession, attribute_id: int, values: dict[str, Any]
) -> None:
    """Change an attribute's fields."""
    await session.execute(
        sa.update(attribute_specs).where(attribute_specs.c.id == attribute_id).values(**values)
    )


async def delete_attributes(session: AsyncSession, attribute_ids: Collection[int]) -> None:
    """Delete attributes."""
    if attribute_ids:
        await session.execute(
            sa.delete(attribute_specs).where(attribute_specs.c.id.in_(attribute_ids))
        )


async def bump_job_versions(session: AsyncSession, owner: LabelOwner) -> None:
    """Advance the annotation version of every job that uses the owner's labels."""
    uses_labels = (
        jobs.c.task_id.in_(sa.select(tasks.c.id).where(tasks.c.project_id == owner.project_id))
        if owner.project_id is not None
        else jobs.c.task_id == owner.task_id
    )
    await session.execute(
        sa.update(jobs)
        .where(uses_labels)
        .values(version=jobs.c.version + 1, updated_date=sa.func.now())
    )
