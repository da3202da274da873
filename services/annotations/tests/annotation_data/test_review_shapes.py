"""The review list: `GET /api/{jobs|tasks}/{id}/annotations/shapes` by source and score."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tessera.devstack.testing import Enrol, OpenService

SeedTask = Callable[..., Awaitable[Any]]  # conftest.seed_task
PROBLEM = "application/problem+json"


def _rect(label: int, frame: int, source: str, score: float | None = None) -> dict[str, Any]:
    shape: dict[str, Any] = {"type": "rectangle", "label_id": label, "frame": frame,
                             "points": [0.0, 0.0, 10.0, 10.0], "source": source}  # fmt: skip
    if score is not None:
        shape["score"] = score
    return shape


def _skeleton(seed: Any, frame: int, score: float) -> dict[str, Any]:
    return {
        "type": "skeleton", "label_id": seed.labels["body"], "frame": frame, "points": [],
        "source": "auto", "score": score,
        "elements": [
            {"type": "points", "label_id": seed.labels[name], "frame": frame,
             "points": [1.0, 2.0], "source": "auto", "score": score}
            for name in ("head", "tail")
        ],
    }  # fmt: skip


async def _list(client: httpx.AsyncClient, url: str, **params: Any) -> dict[str, Any]:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _keys(page: dict[str, Any]) -> list[tuple[int, float]]:
    return [(s["frame"], s["score"]) for s in page["results"]]


async def test_shapes_by_source_and_score(open_service: OpenService, seed_task: SeedTask) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 9), (10, 19)])
        car, sign = seed.labels["car"], seed.labels["sign"]
        body = {"shapes": [
            _rect(car, 1, "auto", 0.9), _rect(car, 2, "auto", 0.2), _rect(car, 3, "semi-auto", 0.3),
            _rect(car, 4, "manual"), _rect(sign, 5, "auto", 0.6), _skeleton(seed, 6, 0.4),
            _rect(car, 12, "auto", 0.5), _rect(car, 13, "file", 0.1), _rect(car, 15, "auto", 0.2),
            _rect(car, 16, "consensus", 0.7),
        ]}  # fmt: skip
        put = await svc.client.put(f"/api/tasks/{seed.task_id}/annotations", json=body)
        assert put.status_code == 200, put.text
        first, second = seed.job_ids
        job_url = f"/api/jobs/{first}/annotations/shapes"
        task_url = f"/api/tasks/{seed.task_id}/annotations/shapes"

        # Each item is the shape as GET annotations gives it (attribute defaults filled
        # in, skeleton elements nested), with its job.
        got = (await svc.client.get(f"/api/jobs/{first}/annotations")).json()["shapes"]
        auto = await _list(svc.client, job_url, source="auto")
        assert (auto["count"], auto["next"], auto["previous"]) == (4, None, None)
        assert _keys(auto) == [(2, 0.2), (6, 0.4), (5, 0.6), (1, 0.9)]
        by_id = {s["id"]: s for s in got}
        assert [{k: v for k, v in s.items() if k != "job_id"} for s in auto["results"]] == [
            by_id[s["id"]] for s in auto["results"]
        ]
        assert {s["job_id"] for s in auto["results"]} == {first}
        assert [len(s["elements"]) for s in auto["results"]] == [0, 2, 0, 0]
        assert auto["results"][0]["attributes"]  # the car's defaults, as GET fills them

        # Every source when none is named; manual shapes score 1.
        everything = await _list(svc.client, job_url)
        assert _keys(everything) == [(2, 0.2), (3, 0.3), (6, 0.4), (5, 0.6), (1, 0.9), (4, 1.0)]

        # A task's list spans its jobs; equal scores go by id, and -score is the reverse.
        task_auto = await _list(svc.client, task_url, source="auto", page_size="all")
        assert _keys(task_auto) == [(2, 0.2), (15, 0.2), (6, 0.4), (12, 0.5), (5, 0.6), (1, 0.9)]
        assert [s["job_id"] for s in task_auto["results"]] == [first, second, first, second,
                                                               first, first]  # fmt: skip
        descending = await _list(svc.client, task_url, source="auto", sort="-score",
                                 page_size="all")  # fmt: skip
        assert descending["results"] == task_auto["results"][::-1]
        several = await _list(svc.client, task_url, source=["semi-auto", "file,consensus"])
        assert _keys(several) == [(13, 0.1), (3, 0.3), (16, 0.7)]

        # Filters: label, frame range, score range.
        assert _keys(await _list(svc.client, task_url, source="auto", label_id=sign)) == [(5, 0.6)]
        framed = await _list(svc.client, task_url, source="auto", min_frame=5, max_frame=12)
        assert _keys(framed) == [(6, 0.4), (12, 0.5), (5, 0.6)]
        unsure = await _list(svc.client, task_url, source="auto", max_score=0.5)
        assert _keys(unsure) == [(2, 0.2), (15, 0.2), (6, 0.4), (12, 0.5)]
        assert _keys(await _list(svc.client, task_url, min_score=0.7, max_score=0.95)) == [
            (16, 0.7), (1, 0.9)
        ]  # fmt: skip
        assert (await _list(svc.client, task_url, label_id=seed.labels["flag"]))["count"] == 0

        # Pages, as CVAT's lists: count, next and previous keep the other parameters.
        pages = [await _list(svc.client, task_url, source="auto", page_size=4, page=n)
                 for n in (1, 2)]  # fmt: skip
        assert [p["count"] for p in pages] == [6, 6]
        assert pages[0]["results"] + pages[1]["results"] == task_auto["results"]
        assert (pages[0]["previous"], pages[1]["next"]) == (None, None)
        following = httpx.URL(pages[0]["next"])
        assert following.path == task_url
        assert (following.params["page"], following.params["source"]) == ("2", "auto")
        assert "page=" not in (pages[1]["previous"] or "x")
        beyond = await svc.client.get(task_url, params={"source": "auto", "page": 3})
        assert beyond.status_code == 404
        assert (await _list(svc.client, job_url, page_size=1))["next"] is not None


async def test_bad_parameters_are_400_naming_the_parameter(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        for url in (f"/api/jobs/{seed.job_ids[0]}/annotations/shapes",
                    f"/api/tasks/{seed.task_id}/annotations/shapes"):  # fmt: skip
            for name, value in (
                ("source", "robot"), ("source", "auto,robot"), ("source", ""),
                ("sort", "frame"), ("sort", "-id"), ("label_id", "car"), ("label_id", "0"),
                ("min_frame", "-1"), ("max_frame", "1.5"), ("max_frame", str(2**31)),
                ("max_score", "2"), ("max_score", "nan"), ("min_score", "low"),
            ):  # fmt: skip
                response = await svc.client.get(url, params={name: value})
                assert response.status_code == 400, (url, name, value, response.text)
                assert response.headers["content-type"] == PROBLEM
                assert response.json()["errors"][0]["field"] == f"query.{name}", (name, value)
            assert (await svc.client.get(url, params={"page": "0"})).status_code == 404


async def test_access_is_the_annotation_gets(
    open_service: OpenService, enrol: Enrol, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        alice = await enrol(svc, "alice")
        own = await alice.client.post(
            "/api/tasks", json={"name": "mine", "labels": [{"name": "a"}]}
        )
        assert own.status_code == 201, own.text
        theirs = (f"/api/jobs/{seed.job_ids[0]}/annotations/shapes",
                  f"/api/tasks/{seed.task_id}/annotations/shapes")  # fmt: skip
        for url in theirs:
            assert (await svc.anonymous.get(url)).status_code == 401
            hidden = await alice.client.get(url, params={"source": "auto"})
            assert hidden.status_code == 404, url  # as GET annotations: not seen, not there
            assert hidden.headers["content-type"] == PROBLEM
            assert (await svc.client.get(url)).status_code == 200  # the admin sees it
        for url in (f"/api/jobs/{seed.job_ids[0] + 1000}/annotations/shapes",
                    f"/api/tasks/{seed.task_id + 1000}/annotations/shapes"):  # fmt: skip
            assert (await svc.client.get(url)).status_code == 404
        mine = await alice.client.get(f"/api/tasks/{own.json()['id']}/annotations/shapes")
        assert mine.status_code == 200
        assert mine.json() == {"count": 0, "next": None, "previous": None, "results": []}
        # Reading needs no write access: a read-only token lists too.
        token = await alice.client.post(
            "/api/auth/api_tokens", json={"name": "ro", "read_only": True}
        )
        read_only = {"Authorization": f"Bearer {token.json()['value']}"}
        listed = await svc.anonymous.get(
            f"/api/tasks/{own.json()['id']}/annotations/shapes", headers=read_only
        )
        assert listed.status_code == 200
