"""Large jobs: the streamed GET equals the stored document; the internal reader API."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any

from tessera.annotations.annotations.service import open_reader
from tessera.devstack.testing import OpenService

SeedTask = Callable[..., Awaitable[Any]]  # conftest.seed_task
SHAPES = 50_000


async def test_streamed_get_of_50k_shapes_equals_the_stored_document(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 99)])
        car, color = seed.labels["car"], seed.specs["color"]
        shapes = [
            {"type": "polygon" if i % 2 else "rectangle", "label_id": car, "frame": i % 100,
             "points": [float(i), 1.5, i + 4.0, 2.0] + ([7.0, 9.0] if i % 2 else []),
             "attributes": [{"spec_id": color, "value": "blue"}]}
            for i in range(SHAPES)
        ]  # fmt: skip
        url = f"/api/jobs/{seed.job_ids[0]}/annotations"
        put = await svc.client.put(url, json={"version": 0, "shapes": shapes})
        assert put.status_code == 200
        stored = put.json()

        got = await svc.client.get(url)
        assert got.status_code == 200
        document = got.json()
        assert len(document["shapes"]) == SHAPES
        by_frame = sorted(stored["shapes"], key=lambda s: (s["frame"], s["id"]))
        defaults = [{"spec_id": seed.specs[n], "value": v}
                    for n, v in (("speed", "0"), ("parked", "false"), ("note", ""))]  # fmt: skip
        for shape in by_frame:
            shape["attributes"] = shape["attributes"] + defaults
        assert document == {**stored, "shapes": by_frame}

        async with open_reader(svc.platform.database) as reader:
            stream = await reader.job(seed.job_ids[0])
            assert stream.version == 1
            frames = [obj["frame"] async for kind, obj in stream if kind == "shape"]
        assert frames == sorted(frames)
        assert len(frames) == SHAPES

        # A reader left early (as a client that disconnects) ends cleanly although the
        # next batch is being fetched ahead, and the connection serves the next reader.
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        try:
            for _ in range(3):
                async with open_reader(svc.platform.database) as reader:
                    stream = await reader.job(seed.job_ids[0])
                    left = stream.shapes()
                    first = await anext(left)
                    await asyncio.sleep(0)  # the fetch ahead is now in flight
                assert first["frame"] == 0
                del left, stream
                gc.collect()
                await asyncio.sleep(0.05)
        finally:
            loop.set_exception_handler(None)
        assert errors == []
