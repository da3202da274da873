"""Task annotations: writes split across jobs by frame, reads merge the overlaps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tessera.devstack.testing import OpenService

SeedTask = Callable[..., Awaitable[Any]]  # conftest.seed_task


def _rect(label: int, frame: int, x: float = 0.0) -> dict[str, Any]:
    return {"type": "rectangle", "label_id": label, "frame": frame,
            "points": [x, 0.0, x + 10.0, 10.0]}  # fmt: skip


async def test_task_put_splits_by_frame_and_get_merges_overlaps(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 9), (8, 17)], overlap=2)
        car = seed.labels["car"]
        url = f"/api/tasks/{seed.task_id}/annotations"
        track = {"label_id": car, "frame": 2, "shapes": [
            {"type": "rectangle", "frame": 2, "points": [0.0, 0.0, 10.0, 10.0]},
            {"type": "rectangle", "frame": 14, "points": [12.0, 0.0, 22.0, 10.0]},
        ]}  # fmt: skip
        body = {
            "version": 0,
            "tags": [{"label_id": seed.labels["flag"], "frame": 9}],
            "shapes": [_rect(car, 1), _rect(car, 8, 50.0), _rect(car, 15)],
            "tracks": [track],
        }
        put = await svc.client.put(url, json=body)
        assert put.status_code == 200, put.text
        merged = put.json()
        assert merged["version"] == 2  # the sum of the job versions, each bumped once
        assert [s["frame"] for s in merged["shapes"]] == [1, 8, 15]
        assert [t["frame"] for t in merged["tags"]] == [9]
        assert len(merged["tracks"]) == 1
        assert [k["frame"] for k in merged["tracks"][0]["shapes"]] == [2, 8, 9, 14]

        first, second = [
            (await svc.client.get(f"/api/jobs/{job_id}/annotations")).json()
            for job_id in seed.job_ids
        ]
        assert [s["frame"] for s in first["shapes"]] == [1, 8]
        assert [s["frame"] for s in second["shapes"]] == [8, 15]
        assert first["shapes"][1]["points"] == second["shapes"][0]["points"]
        assert [k["frame"] for k in first["tracks"][0]["shapes"]] == [2, 9]
        assert [k["frame"] for k in second["tracks"][0]["shapes"]] == [8, 14]
        assert second["tracks"][0]["shapes"][0]["points"] == [6.0, 0.0, 16.0, 10.0]

        got = (await svc.client.get(url)).json()
        assert got == merged

        stale = await svc.client.put(url, json=body)
        assert stale.status_code == 409
        outside = await svc.client.put(url, json={"shapes": [_rect(car, 18)]})
        assert outside.status_code == 422
        assert outside.json()["errors"][0]["field"] == "body.shapes[0].frame"

        last = merged["shapes"][2]
        updated = await svc.client.patch(
            url, params={"action": "update"},
            json={"version": 2, "shapes": [{**last, "points": [1.0, 1.0, 2.0, 2.0]}]},
        )  # fmt: skip
        assert updated.status_code == 200, updated.text
        assert updated.json()["version"] == 3
        assert updated.json()["shapes"][2] == {**last, "points": [1.0, 1.0, 2.0, 2.0]}
        deleted = await svc.client.patch(
            url, params={"action": "delete"}, json={"shapes": [merged["shapes"][0]]}
        )
        assert deleted.status_code == 200
        assert [s["frame"] for s in (await svc.client.get(url)).json()["shapes"]] == [8, 15]

        assert (await svc.client.delete(url)).status_code == 204
        empty = (await svc.client.get(url)).json()
        assert (empty["shapes"], empty["tracks"], empty["tags"]) == ([], [], [])
