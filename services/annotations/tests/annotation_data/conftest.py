"""Fixtures of the annotations data-path tests: a task with labels and jobs, made with SQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tessera.annotations.tables import attribute_specs, jobs, labels, tasks
from tessera.devstack.testing import ServiceHandle


@dataclass
class Seeded:
    """A task with labels and jobs (ids by name)."""

    task_id: int
    job_ids: list[int]
    labels: dict[str, int]
    specs: dict[str, int]


SeedTask = Callable[..., Awaitable[Seeded]]


async def _seed(
    svc: ServiceHandle,
    job_ranges: Sequence[tuple[int, int]] = ((0, 9),),
    *,
    frames: Sequence[int] | None = None,
    overlap: int = 0,
) -> Seeded:
    """Labels `car` (select `color`, immutable; number `speed`, checkbox `parked` and text
    `note`, mutable), `sign` (rectangle), `flag` (tag) and skeleton `body` with sublabels
    `head` and `tail` (radio `side` on `head`); one job per range."""
    async with svc.platform.database.transaction() as session:

        async def insert(table: sa.Table, **values: object) -> int:
            query = table.insert().values(**values).returning(table.c.id)
            return int((await session.execute(query)).scalar_one())

        stop = max(hi for _, hi in job_ranges)
        task_id = await insert(tasks, name="t", size=stop + 1, overlap=overlap, segment_size=10)
        ids = {
            name: await insert(labels, task_id=task_id, name=name, type=kind)
            for name, kind in (("car", "any"), ("sign", "rectangle"), ("flag", "tag"),
                               ("body", "skeleton"))
        }  # fmt: skip
        for name in ("head", "tail"):
            ids[name] = await insert(
                labels, task_id=task_id, name=name, type="points", parent_id=ids["body"]
            )
        specs = {
            "color": await insert(attribute_specs, label_id=ids["car"], name="color",
                                  input_type="select", default_value="red",
                                  values=["red", "blue"]),
            "speed": await insert(attribute_specs, label_id=ids["car"], name="speed",
                                  input_type="number", mutable=True, default_value="0",
                                  values=["0", "100", "5"]),
            "parked": await insert(attribute_specs, label_id=ids["car"], name="parked",
                                   input_type="checkbox", mutable=True, default_value="false"),
            "note": await insert(attribute_specs, label_id=ids["car"], name="note",
                                 input_type="text", mutable=True, default_value=""),
            "side": await insert(attribute_specs, label_id=ids["head"], name="side",
                                 input_type="radio", default_value="left",
                                 values=["left", "right"]),
        }  # fmt: skip
        job_ids = [
            await insert(jobs, task_id=task_id, start_frame=lo, stop_frame=hi,
                         frames=list(frames) if frames is not None else None)
            for lo, hi in job_ranges
        ]  # fmt: skip
    return Seeded(task_id, job_ids, ids, specs)


@pytest.fixture
def seed_task() -> SeedTask:
    """`await seed_task(svc, [(0, 9), (8, 17)], overlap=2)`: a task, its labels and jobs."""
    return _seed
