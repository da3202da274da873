"""Labels of projects and tasks: one merge-and-validate path for every way to change them.

A request (the `labels` of a project or task body, or one label on `/api/labels/{id}`)
is merged into the stored labels in memory, the merged set is validated as a whole, and
only then written, so a refused request changes nothing. Errors name the request's own
field paths (`body.labels[1].attributes[0].values`). A write that changed labels queues
`labels.changed` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.annotations import events
from tessera.annotations.access import Context
from tessera.annotations.labels import repository, skeleton
from tessera.annotations.labels.repository import LabelOwner
from tessera.annotations.labels.schemas import (
    Attribute,
    AttributeRequest,
    Label,
    LabelRequest,
    Sublabel,
    SublabelRequest,
)
from tessera.annotations.tables import jobs, labels, projects, tasks
from tessera.annotations.visibility import (
    project_for,
    task_for,
    visible_jobs,
    visible_projects,
    visible_tasks,
)
from tessera.platform.bus import Outbox
from tessera.platform.errors import NotFound, Problem, unprocessable
from tessera.platform.listing import ListQuery, list_query

PALETTE = (
    "#fa3253", "#33ddff", "#34d1b7", "#ff007c", "#ddff33", "#24b353", "#b83df5", "#66ff66",
    "#32b7fa", "#ffcc33", "#83e070", "#fafa37", "#5986b3", "#8c78f0", "#ff6a4d", "#f078f0",
    "#2a7dd1", "#b25050", "#cc3366", "#cc9933",
)  # fmt: skip
Errors = list[tuple[str, str]]


@dataclass
class AttributeState:
    """An attribute as stored, or as it will be once the request is applied."""

    id: int | None
    name: str
    mutable: bool
    input_type: str
    default_value: str
    values: list[str]
    path: str | None = None
    changed: bool = False


@dataclass
class LabelState:
    """A label (or sublabel) as stored, or as it will be once the request is applied.

    `path` is where the request described it (None when the request left it alone).
    """

    id: int | None
    name: str
    color: str
    type: str
    svg: str
    attributes: list[AttributeState] = field(default_factory=list)
    sublabels: list[LabelState] = field(default_factory=list)
    removed_attributes: list[int] = field(default_factory=list)
    path: str | None = None
    changed: bool = False
    deleted: bool = False


@dataclass
class Changes:
    """How many labels (sublabels included) a write created, updated and deleted."""

    created: int = 0
    updated: int = 0
    deleted: int = 0

    async def publish(self, outbox: Outbox, session: AsyncSession, owner: LabelOwner) -> None:
        """Queue `labels.changed` for the owner, unless nothing changed."""
        if self.created or self.updated or self.deleted:
            await events.labels_changed(
                outbox,
                session,
                project_id=owner.project_id,
                task_id=owner.task_id,
                created=self.created,
                updated=self.updated,
                deleted=self.deleted,
            )


class _Named(Protocol):
    id: int | None
    name: str
    path: str | None


N = TypeVar("N", bound=_Named)


def _states(
    label_rows: list[dict[str, Any]], attribute_rows: list[dict[str, Any]]
) -> list[LabelState]:
    by_id = {
        row["id"]: LabelState(row["id"], row["name"], row["color"], row["type"], row["svg"])
        for row in label_rows
    }
    for row in attribute_rows:
        by_id[row["label_id"]].attributes.append(
            AttributeState(
                row["id"],
                row["name"],
                row["mutable"],
                row["input_type"],
                row["default_value"],
                list(row["values"]),
            )
        )
    top: list[LabelState] = []
    for row in label_rows:
        if row["parent_id"] is None:
            top.append(by_id[row["id"]])
        else:
            by_id[row["parent_id"]].sublabels.append(by_id[row["id"]])
    return top


def _find(items: list[N], item_id: int | None, name: str | None) -> N | None:
    for item in items:
        if (item_id is not None and item.id == item_id) or (
            item_id is None and name is not None and item.name == name
        ):
            return item
    return None


def _apply_attributes(
    label: LabelState, requests: list[AttributeRequest], path: str, errors: Errors
) -> None:
    for index, request in enumerate(requests):
        at = f"{path}.attributes[{index}]"
        current = _find(label.attributes, request.id, request.name)
        if request.id is not None and current is None:
            errors.append((f"{at}.id", f"attribute {request.id} is not an attribute of this label"))
            continue
        if current is not None and current.path is not None:
            errors.append((f"{at}.name", f"{current.path} already describes this attribute"))
            continue
        if request.deleted:
            if current is None:
                errors.append((f"{at}.name", f"this label has no attribute {request.name!r}"))
            else:
                label.attributes.remove(current)
                if current.id is not None:
                    label.removed_attributes.append(current.id)
            continue
        if current is None:
            current = AttributeState(None, "", False, "", "", [])
            label.attributes.append(current)
        current.name, current.mutable = request.name, request.mutable
        current.input_type, current.values = request.input_type, request.values
        current.default_value = request.default_value
        current.path, current.changed = at, True


def _apply_sublabel(
    parent: LabelState, request: SublabelRequest, path: str, errors: Errors
) -> None:
    current = _find(parent.sublabels, request.id, request.name)
    if request.id is not None and current is None:
        errors.append((f"{path}.id", f"label {request.id} is not a sublabel of this skeleton"))
        return
    if current is not None and current.path is not None:
        errors.append((f"{path}.name", f"{current.path} already describes this sublabel"))
        return
    if current is None:
        if request.name is None:
            errors.append((f"{path}.name", "Field required"))
            return
        current = LabelState(None, request.name, "", "points", "")
        parent.sublabels.append(current)
    current.name = request.name or current.name
    current.color = current.color if request.color is None else request.color
    current.type = request.type or current.type
    current.path, current.changed = path, True
    _apply_attributes(current, request.attributes, path, errors)


def _apply_label(
    states: list[LabelState], request: LabelRequest, path: str, errors: Errors
) -> None:
    current = _find(states, request.id, None)
    if request.id is not None and current is None:
        errors.append((f"{path}.id", f"label {request.id} does not exist here"))
        return
    if current is not None and current.path is not None:
        errors.append((f"{path}.id", f"{current.path} already describes this label"))
        return
    if request.deleted:
        if current is None:
            errors.append((f"{path}.id", "deleting a label needs the id of an existing label"))
        else:
            current.deleted, current.path = True, path
        return
    if current is None:
        if request.name is None:
            errors.append((f"{path}.name", "Field required"))
            return
        current = LabelState(None, request.name, "", request.type or "any", "")
        states.append(current)
    elif request.type not in (None, current.type) and "skeleton" in (request.type, current.type):
        errors.append((f"{path}.type", "a label cannot become or stop being a skeleton"))
        return
    current.name = request.name or current.name
    current.color = current.color if request.color is None else request.color
    current.type = request.type or current.type
    current.svg = current.svg if request.svg is None else request.svg
    current.path, current.changed = path, True
    _apply_attributes(current, request.attributes, path, errors)
    for index, sublabel in enumerate(request.sublabels or ()):
        _apply_sublabel(current, sublabel, f"{path}.sublabels[{index}]", errors)


def _unique_names(items: list[N], what: str, errors: Errors) -> None:
    seen: dict[str, N] = {}
    for item in items:
        other = seen.setdefault(item.name, item)
        if other is not item:
            culprit = item if item.path is not None else other
            errors.append((f"{culprit.path}.name", f"another {what} is named {item.name!r}"))


def _validate_parts(label: LabelState, errors: Errors) -> None:
    _unique_names(label.attributes, "attribute of this label", errors)
    _unique_names(label.sublabels, "sublabel of this skeleton", errors)
    for sublabel in label.sublabels:
        _unique_names(sublabel.attributes, "attribute of this label", errors)


def _validate_label(label: LabelState, errors: Errors) -> None:
    _validate_parts(label, errors)
    if label.type != "skeleton":
        if label.sublabels:
            errors.append((f"{label.path}.sublabels", "only skeleton labels have sublabels"))
        if label.svg:
            errors.append((f"{label.path}.svg", "only skeleton labels have an svg"))
        return
    if not label.sublabels:
        errors.append((f"{label.path}.sublabels", "a skeleton needs at least one sublabel"))
    try:
        skeleton.check(label.svg, {sublabel.name: sublabel.id for sublabel in label.sublabels})
    except ValueError as exc:
        errors.append((f"{label.path}.svg", str(exc)))


def _validate(states: list[LabelState], errors: Errors) -> None:
    alive = [label for label in states if not label.deleted]
    _unique_names(alive, "label", errors)
    for label in alive:
        if label.path is not None:
            _validate_label(label, errors)


def _paint(states: list[LabelState]) -> None:
    everything = [label for top in states for label in (top, *top.sublabels)]
    used = {label.color for label in everything}
    free = [color for color in PALETTE if color not in used]
    for index, label in enumerate(label for label in everything if not label.color):
        label.color = free.pop(0) if free else PALETTE[index % len(PALETTE)]


async def _write_attributes(session: AsyncSession, label: LabelState) -> None:
    assert label.id is not None
    await repository.delete_attributes(session, label.removed_attributes)
    for attribute in label.attributes:
        values = {name: getattr(attribute, name) for name in repository.ATTRIBUTE_FIELDS}
        if attribute.id is None:
            attribute.id = await repository.insert_attribute(session, label.id, values)
        elif attribute.changed:
            await repository.update_attribute(session, attribute.id, values)


async def _write_label(
    session: AsyncSession,
    owner: LabelOwner,
    parent_id: int | None,
    label: LabelState,
    changes: Changes,
) -> None:
    values = {"name": label.name, "color": label.color, "type": label.type}
    if label.id is None:
        label.id = await repository.insert_label(session, owner, parent_id, values)
        changes.created += 1
    elif label.changed:
        await repository.update_label(session, label.id, values)
        changes.updated += 1
    await _write_attributes(session, label)
    for sublabel in label.sublabels:
        await _write_label(session, owner, label.id, sublabel, changes)
    if label.type == "skeleton" and label.changed:
        ids = {sublabel.name: sublabel.id for sublabel in label.sublabels if sublabel.id}
        await repository.update_label(session, label.id, {"svg": skeleton.bind(label.svg, ids)})


async def _write(
    session: AsyncSession, outbox: Outbox, owner: LabelOwner, states: list[LabelState]
) -> None:
    _paint(states)
    changes = Changes()
    dropped = False
    for label in states:
        if label.deleted and label.id is not None:
            await repository.delete_label(session, label.id)
            changes.deleted += 1 + len(label.sublabels)
            dropped = True
    for label in states:
        if not label.deleted:
            await _write_label(session, owner, None, label, changes)
            dropped = dropped or any(item.removed_attributes for item in (label, *label.sublabels))
    if dropped:
        await repository.bump_job_versions(session, owner)
    await changes.publish(outbox, session, owner)


async def _load(session: AsyncSession, owner: LabelOwner) -> list[LabelState]:
    return _states(*await repository.owner_labels(session, owner))


async def apply_requests(
    session: AsyncSession,
    outbox: Outbox,
    owner: LabelOwner,
    requests: list[LabelRequest],
    path: str,
) -> None:
    """Create, change or delete the owner's labels as `requests` (found at `path`) say.

    Raises a 422 problem naming every offending field; nothing is written then.
    """
    states = await _load(session, owner)
    errors: Errors = []
    for index, request in enumerate(requests):
        _apply_label(states, request, f"{path}[{index}]", errors)
    if not errors:
        _validate(states, errors)
    if errors:
        raise unprocessable(errors)
    await _write(session, outbox, owner, states)


def visible_labels(ctx: Context) -> sa.ColumnElement[bool]:
    """Condition on `labels`: labels of projects, tasks and jobs the caller sees."""
    seen = [
        sa.exists().where(projects.c.id == labels.c.project_id, visible_projects(ctx)),
        sa.exists().where(tasks.c.id == labels.c.task_id, visible_tasks(ctx)),
    ]
    if not ctx.sees_whole_organization:
        project_tasks = sa.select(tasks.c.id).where(tasks.c.project_id == labels.c.project_id)
        seen.append(
            sa.exists().where(
                sa.or_(jobs.c.task_id == labels.c.task_id, jobs.c.task_id.in_(project_tasks)),
                visible_jobs(ctx),
            )
        )
    return sa.or_(*seen)


def _of_task(task_id: Any) -> sa.ColumnElement[bool]:
    project_of_task = sa.select(tasks.c.project_id).where(tasks.c.id == task_id).scalar_subquery()
    return sa.or_(labels.c.task_id == task_id, labels.c.project_id == project_of_task)


list_query_of_labels = list_query(repository.LIST_SPEC)
"""FastAPI dependency: the label list's parameters (CVAT's, but `job_id`, `task_id` and
`project_id`, which `LabelsOf` reads)."""


@dataclass(frozen=True)
class LabelsOf:
    """Whose labels a list asks for (CVAT's `job_id`, `task_id`, `project_id`)."""

    project_id: int | None = None
    task_id: int | None = None
    job_id: int | None = None

    def condition(self) -> sa.ColumnElement[bool]:
        """Condition on `labels`: the labels of that project, task (or its project), job."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.project_id is not None:
            conditions.append(labels.c.project_id == self.project_id)
        if self.task_id is not None:
            conditions.append(_of_task(self.task_id))
        if self.job_id is not None:
            task_of_job = sa.select(jobs.c.task_id).where(jobs.c.id == self.job_id)
            conditions.append(_of_task(task_of_job.scalar_subquery()))
        return sa.and_(sa.true(), *conditions)


def top_level_only(parameters: Mapping[str, str]) -> bool:
    """A list shows top-level labels only, unless it asks for a parent's sublabels."""
    return not (parameters.get("parent_id") or parameters.get("parent"))


async def read_labels(session: AsyncSession, rows: list[dict[str, Any]]) -> list[Label]:
    """Labels as read: each with its attributes and (for skeletons) its sublabels."""
    skeleton_ids = [row["id"] for row in rows if row["type"] == "skeleton"]
    sublabel_rows = await repository.sublabels_of(session, skeleton_ids)
    attribute_rows = await repository.attributes_of(
        session, [row["id"] for row in (*rows, *sublabel_rows)]
    )
    attributes: dict[int, list[Attribute]] = {}
    for row in attribute_rows:
        attributes.setdefault(row["label_id"], []).append(Attribute.model_validate(row))
    sublabels: dict[int, list[Sublabel]] = {}
    for row in sublabel_rows:
        sublabels.setdefault(row["parent_id"], []).append(
            Sublabel(
                id=row["id"],
                name=row["name"],
                color=row["color"],
                type=row["type"],
                attributes=attributes.get(row["id"], []),
            )
        )
    return [
        Label(
            id=row["id"],
            name=row["name"],
            color=row["color"],
            type=row["type"],
            svg=row["svg"],
            attributes=attributes.get(row["id"], []),
            sublabels=sublabels.get(row["id"], []),
            project_id=row["project_id"],
            task_id=row["task_id"],
            parent_id=row["parent_id"],
            has_parent=row["parent_id"] is not None,
        )
        for row in rows
    ]


async def list_labels(
    session: AsyncSession, ctx: Context, of: LabelsOf, query: ListQuery, *, top_level: bool
) -> tuple[int, list[Label]]:
    """The labels the caller sees of `of` that match the list query (top-level ones only
    when `top_level`)."""
    condition = sa.and_(visible_labels(ctx), of.condition())
    if top_level:
        condition = sa.and_(condition, labels.c.parent_id.is_(None))
    count, rows = await repository.list_labels(session, condition, query)
    return count, await read_labels(session, rows)


async def _label_for(
    session: AsyncSession, ctx: Context, label_id: int, *, change: bool
) -> dict[str, Any]:
    row = await repository.get_label(session, label_id, visible_labels(ctx))
    if row is None:
        raise NotFound(f"Label {label_id} does not exist.")
    if change:
        if row["project_id"] is not None:
            await project_for(session, ctx, row["project_id"], change=True)
        else:
            await task_for(session, ctx, row["task_id"], change=True)
    return row


def _owner(row: dict[str, Any]) -> LabelOwner:
    return LabelOwner(project_id=row["project_id"], task_id=row["task_id"])


async def get_label(session: AsyncSession, ctx: Context, label_id: int) -> Label:
    """One label the caller sees."""
    row = await _label_for(session, ctx, label_id, change=False)
    return (await read_labels(session, [row]))[0]


async def update_label(
    session: AsyncSession, ctx: Context, outbox: Outbox, label_id: int, request: LabelRequest
) -> Label:
    """Change one label (or a skeleton's sublabel) with the same rules as project/task bodies."""
    row = await _label_for(session, ctx, label_id, change=True)
    if request.id not in (None, label_id):
        raise unprocessable([("body.id", f"must be {label_id}, the label of this URL")])
    if request.deleted:
        raise unprocessable([("body.deleted", "delete a label with DELETE /api/labels/{id}")])
    states = await _load(session, _owner(row))
    errors: Errors = []
    if row["parent_id"] is not None:
        parent = next(state for state in states if state.id == row["parent_id"])
        for name in ("sublabels", "svg"):
            if getattr(request, name) is not None:
                errors.append((f"body.{name}", "a sublabel has no " + name))
        if request.type not in (None, "points", "any"):
            errors.append(("body.type", "a sublabel is of type points or any"))
        if not errors:
            sublabel = SublabelRequest.model_validate(
                request.model_dump(include={"name", "color", "type", "attributes"})
                | {"id": label_id}
            )
            _apply_sublabel(parent, sublabel, "body", errors)
            _validate_parts(parent, errors)
    else:
        _apply_label(states, request.model_copy(update={"id": label_id}), "body", errors)
        if not errors:
            _validate(states, errors)
    if errors:
        raise unprocessable(errors)
    await _write(session, outbox, _owner(row), states)
    return await get_label(session, ctx, label_id)


async def delete_label(session: AsyncSession, ctx: Context, outbox: Outbox, label_id: int) -> None:
    """Delete a label with its sublabels and every annotation that uses it."""
    row = await _label_for(session, ctx, label_id, change=True)
    if row["parent_id"] is not None:
        raise Problem(409, "A sublabel cannot be deleted on its own; change its skeleton.")
    sublabels = await repository.sublabels_of(session, [label_id])
    await repository.delete_label(session, label_id)
    await repository.bump_job_versions(session, _owner(row))
    await Changes(deleted=1 + len(sublabels)).publish(outbox, session, _owner(row))
