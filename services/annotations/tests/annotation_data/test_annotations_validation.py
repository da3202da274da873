"""Bad annotations get 422 naming the field; stale versions get 409; nothing is written."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from tessera.devstack.testing import OpenService

SeedTask = Callable[..., Awaitable[Any]]  # conftest.seed_task


def _cases(seed: Any) -> list[tuple[str, dict[str, Any], str]]:
    """(what, body, the field the 422 must name)."""
    car, head = seed.labels["car"], seed.labels["head"]
    spec = seed.specs

    def rect(**extra: Any) -> dict[str, Any]:
        return {"type": "rectangle", "label_id": car, "frame": 1, "points": [0, 0, 5, 5], **extra}

    def track(shape_attrs: list[Any], track_attrs: list[Any]) -> dict[str, Any]:
        key = {"type": "rectangle", "frame": 1, "points": [0, 0, 1, 1], "attributes": shape_attrs}
        return {"label_id": car, "frame": 1, "shapes": [key], "attributes": track_attrs}

    def attr(name: str, value: str) -> list[dict[str, Any]]:
        return [{"spec_id": spec[name], "value": value}]

    return [
        ("coordinate count", {"shapes": [rect(), rect(points=[0, 0, 5])]}, "body.shapes[1].points"),
        ("polygon count", {"shapes": [rect(type="polygon", points=[0, 0, 1, 1])]},
         "body.shapes[0].points"),
        ("cuboid count", {"shapes": [rect(type="cuboid")]}, "body.shapes[0].points"),
        ("mask box", {"shapes": [rect(type="mask", points=[0, 4, 5, 5, 1, 1])]},
         "body.shapes[0].points"),
        ("skeleton points", {"shapes": [rect(type="skeleton", label_id=seed.labels["body"])]},
         "body.shapes[0].points"),
        ("unknown type", {"shapes": [rect(), rect(type="circle")]}, "body.shapes[1].type"),
        ("foreign label", {"shapes": [rect(label_id=10**6)]}, "body.shapes[0].label_id"),
        ("sublabel at top level", {"shapes": [rect(type="points", label_id=head, points=[1, 1])]},
         "body.shapes[0].label_id"),
        ("label type", {"shapes": [rect(type="polygon", label_id=seed.labels["sign"],
                                        points=[0, 0, 1, 0, 1, 1])]}, "body.shapes[0].label_id"),
        ("foreign attribute", {"shapes": [rect(attributes=attr("side", "left"))]},
         "body.shapes[0].attributes[0].spec_id"),
        ("select value", {"shapes": [rect(attributes=attr("color", "green"))]},
         "body.shapes[0].attributes[0].value"),
        ("number range", {"shapes": [rect(attributes=attr("speed", "105"))]},
         "body.shapes[0].attributes[0].value"),
        ("number step", {"shapes": [rect(attributes=attr("speed", "7"))]},
         "body.shapes[0].attributes[0].value"),
        ("checkbox value", {"shapes": [rect(attributes=attr("parked", "yes"))]},
         "body.shapes[0].attributes[0].value"),
        ("attribute twice", {"shapes": [rect(attributes=attr("color", "red") * 2)]},
         "body.shapes[0].attributes[1].spec_id"),
        ("mutable attribute on track", {"tracks": [track([], attr("speed", "5"))]},
         "body.tracks[0].attributes[0].spec_id"),
        ("immutable attribute on keyframe", {"tracks": [track(attr("color", "red"), [])]},
         "body.tracks[0].shapes[0].attributes[0].spec_id"),
        ("frame outside the job", {"shapes": [rect(frame=10)]}, "body.shapes[0].frame"),
        ("frame outside the job's frames", {"shapes": [rect(frame=3)]}, "body.shapes[0].frame"),
        ("keyframe outside the job", {"tracks": [{**track([], []), "shapes": [
            {"type": "rectangle", "frame": 1, "points": [0, 0, 1, 1]},
            {"type": "rectangle", "frame": 12, "points": [0, 0, 1, 1]}]}]},
         "body.tracks[0].shapes[1].frame"),
        ("duplicate ids", {"shapes": [rect(id=5), rect(id=5)]}, "body.shapes[1].id"),
        ("duplicate keyframe ids", {"tracks": [{**track([], []), "shapes": [
            {"type": "rectangle", "frame": 1, "points": [0, 0, 1, 1], "id": 3},
            {"type": "rectangle", "frame": 2, "points": [0, 0, 1, 1], "id": 3}]}]},
         "body.tracks[0].shapes[1].id"),
        ("rotation", {"shapes": [rect(rotation=400)]}, "body.shapes[0].rotation"),
        ("score", {"shapes": [rect(score=2)]}, "body.shapes[0].score"),
        ("source", {"shapes": [rect(source="robot")]}, "body.shapes[0].source"),
        ("element label", {"shapes": [{"type": "skeleton", "label_id": seed.labels["body"],
                                       "frame": 1, "points": [], "elements": [rect(
                                           type="points", points=[1, 1])]}]},
         "body.shapes[0].elements[0].label_id"),
        ("elements on a rectangle", {"shapes": [rect(elements=[rect()])]},
         "body.shapes[0].elements"),
        ("version type", {"version": "one", "shapes": []}, "body.version"),
        ("tag label type", {"tags": [{"label_id": seed.labels["sign"], "frame": 1}]},
         "body.tags[0].label_id"),
    ]  # fmt: skip


async def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 9)], frames=[0, 1, 2, 4, 5, 6, 7, 8, 9])
        url = f"/api/jobs/{seed.job_ids[0]}/annotations"
        for what, body, field in _cases(seed):
            for method in ("PUT", "PATCH"):
                params = {"action": "create"} if method == "PATCH" else {}
                response = await svc.client.request(method, url, json=body, params=params)
                assert response.status_code == 422, (what, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                fields = [e["field"] for e in response.json()["errors"]]
                assert field in fields, (what, fields)

        for literal in ("NaN", "Infinity", "-Infinity"):
            raw = json.dumps({"shapes": [{"type": "rectangle", "label_id": seed.labels["car"],
                                          "frame": 1, "points": [0, 0, 1, 1]},
                                         {"type": "rectangle", "label_id": seed.labels["car"],
                                          "frame": 1, "points": [0, 0, 1, 5]}]})  # fmt: skip
            raw = raw.replace("5]", f"{literal}]")
            response = await svc.client.put(
                url, content=raw, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, literal
            assert response.json()["errors"][0]["field"] == "body.shapes[1].points"
        garbage = await svc.client.put(url, content=b"{not json")
        assert garbage.status_code == 422
        assert garbage.json()["errors"][0]["field"] == "body"

        got = (await svc.client.get(url)).json()
        assert got == {"version": 0, "tags": [], "shapes": [], "tracks": [], "intervals": []}


async def test_stale_version_gets_409_and_changes_nothing(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        url = f"/api/jobs/{seed.job_ids[0]}/annotations"
        rect = {"type": "rectangle", "label_id": seed.labels["car"], "frame": 1,
                "points": [0, 0, 5, 5]}  # fmt: skip
        first = await svc.client.put(url, json={"version": 0, "shapes": [rect]})
        assert first.status_code == 200
        before = (await svc.client.get(url)).json()
        for method, params in (("PUT", {}), ("PATCH", {"action": "create"}),
                               ("PATCH", {"action": "delete"})):  # fmt: skip
            body = {"version": 0, "shapes": before["shapes"]}
            stale = await svc.client.request(method, url, json=body, params=params)
            assert stale.status_code == 409, stale.text
            assert stale.headers["content-type"] == "application/problem+json"
        assert (await svc.client.get(url)).json() == before
        unconditional = await svc.client.put(url, json={"shapes": [rect, rect]})
        assert unconditional.status_code == 200
        assert unconditional.json()["version"] == 2

        other = await svc.client.get(f"/api/jobs/{10**6}/annotations")
        assert other.status_code == 404
