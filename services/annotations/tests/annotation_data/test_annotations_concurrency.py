"""Two clients writing one job at once: one wins, the other gets 409, nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tessera.devstack.testing import ADMIN_TOKEN, OpenService

SeedTask = Callable[..., Awaitable[Any]]  # conftest.seed_task


async def test_concurrent_writers_one_wins_the_other_gets_409(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        url = f"/api/jobs/{seed.job_ids[0]}/annotations"
        transport = httpx.ASGITransport(app=svc.app)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://a", headers=headers) as alice,
            httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as bob,
        ):
            version = 0
            for round_ in range(3):
                bodies = [
                    {"version": version, "shapes": [
                        {"type": "rectangle", "label_id": seed.labels["car"], "frame": f,
                         "points": [float(who), float(round_), 5.0, 5.0]}
                        for f in range(10) for _ in range(50)
                    ]}
                    for who in range(2)
                ]  # fmt: skip
                action = {"action": "create"} if round_ % 2 else {}
                answers = await asyncio.gather(
                    alice.request("PATCH" if action else "PUT", url, json=bodies[0],
                                  params=action),
                    bob.request("PATCH" if action else "PUT", url, json=bodies[1],
                                params=action),
                )  # fmt: skip
                codes = sorted(a.status_code for a in answers)
                assert codes == [200, 409], [a.text for a in answers]
                winner = next(i for i, a in enumerate(answers) if a.status_code == 200)
                version = answers[winner].json()["version"]
                assert version == round_ + 1

                stored = (await alice.get(url)).json()
                assert stored["version"] == version
                mine = [s for s in stored["shapes"] if s["points"][1] == float(round_)]
                assert len(mine) == 500  # every shape of the winner, once
                assert {s["points"][0] for s in mine} == {float(winner)}
                if not action:
                    assert len(stored["shapes"]) == 500
                assert len({s["id"] for s in stored["shapes"]}) == len(stored["shapes"])
