"""Job annotations: every shape and track type round-trips; PATCH; DELETE; events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from tessera.devstack.testing import OpenService
from tessera.platform.bus import outbox_table

SeedTask = Callable[..., Awaitable[Any]]  # conftest.seed_task
Seeded = Any  # conftest.Seeded
MASK = [0.0, 3.0, 2.0, 1.0, 10.0, 20.0, 12.0, 21.0]  # a 3x2 box, runs 0,3,2,1


def attrs(seed: Seeded, **values: str) -> list[dict[str, Any]]:
    """Attribute values by spec name."""
    return [{"spec_id": seed.specs[name], "value": value} for name, value in values.items()]


def car_attrs(seed: Seeded, speed: str = "10") -> list[dict[str, Any]]:
    """Every attribute of `car`, so that reads add no defaults."""
    return attrs(seed, color="blue", speed=speed, parked="true", note="a note")


def shape(
    seed: Seeded, kind: str, points: list[float], frame: int = 1, **extra: Any
) -> dict[str, Any]:
    """A `car` shape in CVAT's request form."""
    return {"type": kind, "label_id": seed.labels["car"], "frame": frame, "points": points,
            "attributes": car_attrs(seed), **extra}  # fmt: skip


def skeleton(seed: Seeded, frame: int = 2) -> dict[str, Any]:
    """A `body` skeleton with both elements."""
    return {
        "type": "skeleton", "label_id": seed.labels["body"], "frame": frame, "points": [],
        "attributes": [],
        "elements": [
            {"type": "points", "label_id": seed.labels["head"], "frame": frame,
             "points": [1.0, 2.0], "attributes": attrs(seed, side="right")},
            {"type": "points", "label_id": seed.labels["tail"], "frame": frame,
             "points": [3.0, 4.0], "outside": True, "attributes": []},
        ],
    }  # fmt: skip


def every_shape(seed: Seeded) -> list[dict[str, Any]]:
    """One shape of every type, with non-default fields, in frame order (as GET answers)."""
    return [
        shape(seed, "polygon", [0.0, 0.0, 10.0, 0.0, 5.0, 8.0], frame=0),
        shape(seed, "rectangle", [1.5, 2.5, 30.0, 40.25], rotation=15.5, occluded=True,
              z_order=3, group=2, source="auto", score=0.5),
        shape(seed, "polyline", [0.0, 0.0, 10.0, 5.0, 20.0, 0.0]),
        shape(seed, "points", [4.0, 4.0, 8.0, 8.0], outside=True),
        shape(seed, "ellipse", [50.0, 50.0, 70.0, 40.0], rotation=30.0),
        skeleton(seed),
        shape(seed, "cuboid", [float(i) for i in range(16)], frame=5),
        shape(seed, "mask", MASK, frame=9, source="semi-auto"),
    ]  # fmt: skip


def keyframe(
    seed: Seeded, kind: str, frame: int, points: list[float], **extra: Any
) -> dict[str, Any]:
    """A keyframe of a `car` track (mutable attributes only)."""
    return {"type": kind, "frame": frame, "points": points,
            "attributes": attrs(seed, speed="5", parked="false", note=""), **extra}  # fmt: skip


def every_track(seed: Seeded) -> list[dict[str, Any]]:
    """A track of every type: two keyframes each, the last one outside."""
    tracks: list[dict[str, Any]] = []
    for kind, points in (
        ("rectangle", [1.0, 1.0, 5.0, 5.0]),
        ("polygon", [0.0, 0.0, 4.0, 0.0, 2.0, 3.0]),
        ("polyline", [0.0, 0.0, 4.0, 4.0]),
        ("points", [1.0, 1.0]),
        ("ellipse", [5.0, 5.0, 8.0, 3.0]),
        ("cuboid", [float(i) for i in range(16)]),
        ("mask", MASK),
    ):
        tracks.append({
            "label_id": seed.labels["car"], "frame": 0, "group": 1, "source": "manual",
            "attributes": attrs(seed, color="red"),
            "shapes": [keyframe(seed, kind, 0, points, rotation=10.0 * (kind == "rectangle")),
                       keyframe(seed, kind, 6, points, outside=True)],
        })  # fmt: skip
    element_shapes = [
        {"type": "points", "frame": 0, "points": [1.0, 1.0], "attributes": []},
        {"type": "points", "frame": 4, "points": [2.0, 2.0], "occluded": True, "attributes": []},
    ]
    tracks.append({
        "label_id": seed.labels["body"], "frame": 0, "attributes": [],
        "shapes": [{"type": "skeleton", "frame": 0, "points": [], "attributes": []},
                   {"type": "skeleton", "frame": 4, "points": [], "attributes": []}],
        "elements": [
            {"label_id": seed.labels["head"], "frame": 0, "shapes": element_shapes,
             "attributes": attrs(seed, side="left")},
            {"label_id": seed.labels["tail"], "frame": 0, "shapes": element_shapes,
             "attributes": []},
        ],
    })  # fmt: skip
    return tracks


def document(seed: Seeded, version: int | None = 0) -> dict[str, Any]:
    """Tags, every shape type and a track of every type."""
    body: dict[str, Any] = {
        "tags": [{"label_id": seed.labels["flag"], "frame": 3, "attributes": []},
                 {"label_id": seed.labels["car"], "frame": 4, "attributes": car_attrs(seed)}],
        "shapes": every_shape(seed),
        "tracks": every_track(seed),
    }  # fmt: skip
    if version is not None:
        body["version"] = version
    return body


def without_ids(value: Any) -> Any:
    """`value` with every `id` removed (to compare requests with responses)."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def normalised(seed: Seeded, body: dict[str, Any]) -> dict[str, Any]:
    """A request as the server answers it: defaults filled in, ids dropped."""
    shape_defaults = {"occluded": False, "outside": False, "z_order": 0, "rotation": 0.0,
                      "group": 0, "source": "manual", "score": 1.0}  # fmt: skip
    out: dict[str, Any] = {"tags": [], "shapes": [], "tracks": []}
    for tag in body["tags"]:
        out["tags"].append({"group": 0, "source": "manual", **tag})
    for s in body["shapes"]:
        elements = [{**shape_defaults, **e} for e in s.get("elements", [])]
        out["shapes"].append({**shape_defaults, **s, "elements": elements})
    key_defaults = {"occluded": False, "outside": False, "z_order": 0, "rotation": 0.0}
    for t in body["tracks"]:
        parts = [{"group": 0, "source": "manual", **p,
                  "shapes": [{**key_defaults, **k} for k in p["shapes"]]}
                 for p in (t, *t.get("elements", []))]  # fmt: skip
        out["tracks"].append({**parts[0], "elements": parts[1:]})
    return without_ids(out)  # type: ignore[no-any-return]


async def test_every_shape_and_track_type_round_trips(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        url = f"/api/jobs/{seed.job_ids[0]}/annotations"
        body = document(seed)
        put = await svc.client.put(url, json=body)
        assert put.status_code == 200, put.text
        saved = put.json()
        assert saved["version"] == 1
        assert without_ids({k: saved[k] for k in ("tags", "shapes", "tracks")}) == normalised(
            seed, body
        )
        got = await svc.client.get(url)
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/json"
        assert got.json() == saved

        again = await svc.client.put(url, json=got.json())  # ids are kept on a re-PUT
        assert again.status_code == 200, again.text
        assert again.json() == {**saved, "version": 2}
        assert (await svc.client.get(url)).json() == {**saved, "version": 2}


async def test_patch_create_update_delete_and_events(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        url = f"/api/jobs/{seed.job_ids[0]}/annotations"
        created = await svc.client.patch(
            url, params={"action": "create"}, json={"version": 0, "shapes": every_shape(seed)[:3]}
        )
        assert created.status_code == 200, created.text
        shapes = created.json()["shapes"]
        assert created.json()["version"] == 1
        assert all(isinstance(s["id"], int) for s in shapes)

        moved = {**shapes[1], "points": [2.0, 3.0, 4.0, 5.0]}
        updated = await svc.client.patch(
            url, params={"action": "update"}, json={"version": 1, "shapes": [moved]}
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["shapes"][0]["id"] == shapes[1]["id"]

        deleted = await svc.client.patch(
            url, params={"action": "delete"}, json={"version": 2, "shapes": [shapes[2]]}
        )
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["version"] == 3

        current = (await svc.client.get(url)).json()
        assert current["version"] == 3
        assert [s["id"] for s in current["shapes"]] == [shapes[0]["id"], shapes[1]["id"]]
        assert current["shapes"][1]["points"] == [2.0, 3.0, 4.0, 5.0]

        missing = await svc.client.patch(
            url, params={"action": "update"}, json={"shapes": [{**moved, "id": 10**9}]}
        )
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["field"] == "body.shapes[0].id"
        bad_action = await svc.client.patch(url, params={"action": "merge"}, json={})
        assert bad_action.status_code == 422

        assert (await svc.client.delete(url)).status_code == 204
        cleared = (await svc.client.get(url)).json()
        assert cleared == {"version": 4, "tags": [], "shapes": [], "tracks": [], "intervals": []}

        outbox = outbox_table(sa.MetaData(), "annotations")
        async with svc.platform.database.transaction() as session:
            rows = (
                (
                    await session.execute(
                        sa.select(outbox.c.payload)
                        .where(outbox.c.subject == "annotations.changed")
                        .order_by(outbox.c.id)
                    )
                )
                .scalars()
                .all()
            )
        counts = [(p["version"], p["created"], p["updated"], p["deleted"]) for p in rows]
        assert counts == [(1, 3, 0, 0), (2, 0, 1, 0), (3, 0, 0, 1), (4, 0, 0, 2)]
        assert all(p["job_id"] == seed.job_ids[0] for p in rows)


async def test_reads_fill_in_attribute_defaults_as_cvat(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc)
        url = f"/api/jobs/{seed.job_ids[0]}/annotations"
        track = every_track(seed)[0]
        track["attributes"] = []
        track["shapes"][0]["attributes"] = attrs(seed, speed="20")
        track["shapes"][1]["attributes"] = []
        body = {"shapes": [shape(seed, "rectangle", [0, 0, 1, 1], attributes=[])],
                "tracks": [track]}  # fmt: skip
        assert (await svc.client.put(url, json=body)).status_code == 200
        got = (await svc.client.get(url)).json()

    def values(items: list[dict[str, Any]]) -> dict[int, str]:
        return {a["spec_id"]: a["value"] for a in items}

    s = seed.specs
    assert values(got["shapes"][0]["attributes"]) == {
        s["color"]: "red", s["speed"]: "0", s["parked"]: "false", s["note"]: ""
    }  # fmt: skip
    assert values(got["tracks"][0]["attributes"]) == {s["color"]: "red"}
    first, second = (values(k["attributes"]) for k in got["tracks"][0]["shapes"])
    assert first == {s["speed"]: "20", s["parked"]: "false", s["note"]: ""}
    assert second == first  # a keyframe inherits the previous keyframe's values
