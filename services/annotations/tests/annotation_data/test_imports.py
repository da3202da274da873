"""The internal side of annotation import (the export service's): the import target, and
the write of an imported document (replace by default, as CVAT, or append), all or
nothing, a job's only in the job, for the user named by the actor header, by
administrators only; and the shared client over a socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from tessera.annotations.app import create_app
from tessera.annotations.tables import tasks
from tessera.devstack.testing import (
    ADMIN_TOKEN,
    Enrol,
    OpenService,
    ServiceHandle,
    serve_in_thread,
    settings_for,
)
from tessera.platform.bus import ACTOR_HEADER, ACTOR_KEY, outbox_table
from tessera.platform.clients.annotations import AnnotationsClient
from tessera.platform.contracts.annotations import ImportTarget, ImportWritten
from tessera.platform.errors import Problem

SeedTask = Callable[..., Awaitable[Any]]  # conftest.seed_task


def _rect(label: int, frame: int, x: float = 0.0) -> dict[str, Any]:
    return {"type": "rectangle", "label_id": label, "frame": frame,
            "points": [x, 0.0, x + 10.0, 10.0]}  # fmt: skip


def _track(label: int, first: int, last: int) -> dict[str, Any]:
    return {"label_id": label, "frame": first, "shapes": [
        {"type": "rectangle", "frame": first, "points": [0.0, 0.0, 10.0, 10.0]},
        {"type": "rectangle", "frame": last, "points": [5.0, 0.0, 15.0, 10.0], "outside": True},
    ]}  # fmt: skip


def _import_path(scope: str, id_: int) -> str:
    return f"/api/internal/{scope}s/{id_}/annotations/import"


async def _import(
    svc: ServiceHandle, scope: str, id_: int, document: dict[str, Any], **params: str
) -> Any:
    answer = await svc.client.post(_import_path(scope, id_), json=document, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _frames(svc: ServiceHandle, path: str) -> dict[str, list[int]]:
    got = (await svc.client.get(path)).json()
    return {kind: [obj["frame"] for obj in got[kind]] for kind in ("tags", "shapes", "tracks")}


async def _changes(svc: ServiceHandle) -> list[dict[str, Any]]:
    """The payloads of the `annotations.changed` events queued so far, in order."""
    outbox = outbox_table(sa.MetaData(), "annotations")
    async with svc.platform.database.transaction() as session:
        rows = await session.scalars(
            sa.select(outbox.c.payload)
            .where(outbox.c.subject == "annotations.changed")
            .order_by(outbox.c.id)
        )
        return list(rows.all())


async def test_the_import_target_describes_the_task_and_the_job(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 9), (8, 17)], overlap=2)
        car = seed.labels["car"]
        await _import(svc, "task", seed.task_id, {"shapes": [_rect(car, 1)]})

        answer = await svc.client.get(f"/api/internal/tasks/{seed.task_id}/import-target")
        assert answer.status_code == 200, answer.text
        target = ImportTarget.model_validate(answer.json())
        assert (target.scope, target.task_id, target.project_id) == ("task", seed.task_id, None)
        assert (target.dimension, target.size) == ("2d", 18)
        assert [(j.id, j.start_frame, j.stop_frame, j.version) for j in target.jobs] == [
            (seed.job_ids[0], 0, 9, 1), (seed.job_ids[1], 8, 17, 1),
        ]  # fmt: skip
        task_annotations = await svc.client.get(f"/api/tasks/{seed.task_id}/annotations")
        assert target.version == task_annotations.json()["version"] == 2
        assert [(label.name, label.type) for label in target.labels] == [
            ("car", "any"), ("sign", "rectangle"), ("flag", "tag"), ("body", "skeleton"),
        ]  # fmt: skip
        speed = next(a for a in target.labels[0].attributes if a.name == "speed")
        assert (speed.id, speed.input_type, speed.mutable) == (seed.specs["speed"], "number", True)
        assert (speed.values, speed.default_value) == (["0", "100", "5"], "0")
        body = target.labels[3]
        assert [(s.name, s.type, s.parent_id) for s in body.sublabels] == [
            ("head", "points", body.id), ("tail", "points", body.id),
        ]  # fmt: skip
        side = body.sublabels[0].attributes[0]
        assert (side.name, side.input_type, side.values) == ("side", "radio", ["left", "right"])

        second = seed.job_ids[1]
        answer = await svc.client.get(f"/api/internal/jobs/{second}/import-target")
        assert answer.status_code == 200, answer.text
        job_target = ImportTarget.model_validate(answer.json())
        assert (job_target.scope, job_target.task_id, job_target.version) == (
            "job",
            seed.task_id,
            1,
        )
        assert [(j.id, j.start_frame, j.stop_frame) for j in job_target.jobs] == [(second, 8, 17)]
        assert job_target.labels == target.labels

        for path in (f"/api/internal/tasks/{seed.task_id + 1000}/import-target",
                     f"/api/internal/jobs/{second + 1000}/import-target"):  # fmt: skip
            missing = await svc.client.get(path)
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"


async def test_replace_is_the_default_and_deletes_first_append_adds(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 9), (10, 19)])
        car, flag = seed.labels["car"], seed.labels["flag"]
        task_path = f"/api/tasks/{seed.task_id}/annotations"
        put = await svc.client.put(task_path, json={
            "shapes": [_rect(car, 1), _rect(car, 12)], "tags": [{"label_id": flag, "frame": 3}],
        })  # fmt: skip
        assert put.status_code == 200, put.text
        assert put.json()["version"] == 2

        document = {
            "tags": [{"label_id": flag, "frame": 15}],
            "shapes": [_rect(car, 2, 5.0), _rect(car, 4), _rect(car, 11)],
            "tracks": [_track(car, 5, 14)],
        }
        replaced = ImportWritten.model_validate(
            await _import(svc, "task", seed.task_id, document)  # no action: replace
        )
        assert replaced == ImportWritten(tags=1, shapes=3, tracks=1, deleted=3, version=4)
        assert await _frames(svc, task_path) == {
            "tags": [15], "shapes": [2, 4, 11], "tracks": [5, 10],
        }  # fmt: skip

        appended = await _import(svc, "task", seed.task_id, {"shapes": [_rect(car, 6)]},
                                 action="append")  # fmt: skip
        assert appended == {"tags": 0, "shapes": 1, "tracks": 0, "deleted": 0, "version": 5}
        assert await _frames(svc, task_path) == {
            "tags": [15], "shapes": [2, 4, 6, 11], "tracks": [5, 10],
        }  # fmt: skip

        again = await _import(svc, "task", seed.task_id, {"shapes": [_rect(car, 7)]},
                              action="replace")  # fmt: skip
        assert (again["deleted"], again["version"]) == (7, 7)  # the track: one in each job
        assert await _frames(svc, task_path) == {"tags": [], "shapes": [7], "tracks": []}

        unknown = await svc.client.post(_import_path("task", seed.task_id), json={},
                                        params={"action": "merge"})  # fmt: skip
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["field"] == "query.action"

        stale = await svc.client.post(_import_path("task", seed.task_id),
                                      json={"version": 6, "shapes": [_rect(car, 8)]})  # fmt: skip
        assert stale.status_code == 409
        current = await _import(svc, "task", seed.task_id,
                                {"version": 7, "shapes": [_rect(car, 8)]})  # fmt: skip
        assert current["version"] == 9


async def test_a_job_import_touches_only_the_job(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 9), (10, 19)])
        car = seed.labels["car"]
        first, second = seed.job_ids
        put = await svc.client.put(f"/api/tasks/{seed.task_id}/annotations",
                                   json={"shapes": [_rect(car, 1), _rect(car, 12)]})  # fmt: skip
        assert put.status_code == 200, put.text
        before = (await svc.client.get(f"/api/jobs/{second}/annotations")).json()

        written = await _import(svc, "job", first, {"shapes": [_rect(car, 3), _rect(car, 9)],
                                                    "tracks": [_track(car, 2, 6)]})  # fmt: skip
        assert written == {"tags": 0, "shapes": 2, "tracks": 1, "deleted": 1, "version": 2}
        assert await _frames(svc, f"/api/jobs/{first}/annotations") == {
            "tags": [], "shapes": [3, 9], "tracks": [2],
        }  # fmt: skip
        assert (await svc.client.get(f"/api/jobs/{second}/annotations")).json() == before
        appended = await _import(svc, "job", first, {"shapes": [_rect(car, 0)]}, action="append")
        assert (appended["deleted"], appended["version"]) == (0, 3)
        assert (await _frames(svc, f"/api/jobs/{first}/annotations"))["shapes"] == [0, 3, 9]

        outside = await svc.client.post(_import_path("job", first),
                                        json={"shapes": [_rect(car, 12)]})  # fmt: skip
        assert outside.status_code == 422
        assert outside.json()["errors"][0]["field"] == "body.shapes[0].frame"
        assert [p["job_id"] for p in await _changes(svc)] == [first, second, first, first]
        missing = await svc.client.post(_import_path("job", second + 1000), json={})
        assert missing.status_code == 404


async def test_an_invalid_object_writes_nothing(
    open_service: OpenService, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        seed = await seed_task(svc, [(0, 9), (10, 19)])
        car = seed.labels["car"]
        task_path = f"/api/tasks/{seed.task_id}/annotations"
        put = await svc.client.put(task_path, json={"shapes": [_rect(car, 1)]})
        assert put.status_code == 200, put.text
        before = (await svc.client.get(task_path)).json()
        events = len(await _changes(svc))

        shapes = [_rect(car, f % 20, float(f)) for f in range(2_000)]
        shapes[1_234]["points"] = [0.0, 0.0, 10.0]
        for action in ("replace", "append"):
            refused = await svc.client.post(
                _import_path("task", seed.task_id), json={"shapes": shapes},
                params={"action": action},
            )  # fmt: skip
            assert refused.status_code == 422, refused.text
            problem = refused.json()
            assert [e["field"] for e in problem["errors"]] == ["body.shapes[1234].points"]
            assert "body.shapes[1234].points" in problem["detail"]
        assert (await svc.client.get(task_path)).json() == before
        assert len(await _changes(svc)) == events

        malformed = await svc.client.post(
            _import_path("task", seed.task_id), content=b'{"shapes": [',
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert malformed.status_code == 422
        assert malformed.json()["errors"][0]["field"] == "body"


async def test_the_write_is_the_actors(
    open_service: OpenService, enrol: Enrol, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        alice, bob = await enrol(svc, "alice"), await enrol(svc, "bob")
        seed = await seed_task(svc, [(0, 9), (10, 19)])
        car = seed.labels["car"]
        document = {"shapes": [_rect(car, 1), _rect(car, 12)]}
        answer = await svc.client.post(_import_path("task", seed.task_id), json=document,
                                       headers={ACTOR_HEADER: str(alice.id)})  # fmt: skip
        assert answer.status_code == 200, answer.text
        changes = await _changes(svc)
        assert [(p["job_id"], p["version"], p["created"], p[ACTOR_KEY]) for p in changes] == [
            (seed.job_ids[0], 1, 1, alice.id), (seed.job_ids[1], 1, 1, alice.id),
        ]  # fmt: skip

        # The audit log (from the published events) names alice, not the service account.
        deadline = asyncio.get_running_loop().time() + 20.0
        params = {"task_id": str(seed.task_id), "action": "annotations.changed"}
        while True:
            entries = (await svc.client.get("/api/audit", params=params)).json()["results"]
            if len(entries) == 2 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        assert [entry["actor"]["username"] for entry in entries] == ["alice", "alice"]

        # Without the header, the write is the caller's.
        await _import(svc, "job", seed.job_ids[0], {"shapes": []})
        assert ACTOR_KEY in (await _changes(svc))[-1]
        admin_id = (await svc.client.get("/api/users/self")).json()["id"]
        assert (await _changes(svc))[-1][ACTOR_KEY] == admin_id

        path = _import_path("job", seed.job_ids[0])
        for actor, message in (("999999", "user 999999 is not an active user"),
                               ("alice", "")):  # fmt: skip
            refused = await svc.client.post(path, json={}, headers={ACTOR_HEADER: actor})
            assert refused.status_code == 422, actor
            (error,) = refused.json()["errors"]
            assert error["field"] == f"header.{ACTOR_HEADER}"
            assert message in error["message"]

        # Elsewhere the header means nothing: a user's own write stays theirs.
        async with svc.platform.database.transaction() as session:
            await session.execute(
                sa.update(tasks).where(tasks.c.id == seed.task_id).values(owner_id=bob.id)
            )
        put = await bob.client.put(f"/api/jobs/{seed.job_ids[1]}/annotations", json={},
                                   headers={ACTOR_HEADER: str(alice.id)})  # fmt: skip
        assert put.status_code == 200, put.text
        assert (await _changes(svc))[-1][ACTOR_KEY] == bob.id


async def test_only_administrators_import(
    open_service: OpenService, enrol: Enrol, seed_task: SeedTask
) -> None:
    async with open_service("annotations") as svc:
        alice = await enrol(svc, "alice")
        seed = await seed_task(svc)
        async with svc.platform.database.transaction() as session:
            await session.execute(
                sa.update(tasks).where(tasks.c.id == seed.task_id).values(owner_id=alice.id)
            )
        assert (await alice.client.get(f"/api/tasks/{seed.task_id}")).status_code == 200
        document = {"shapes": [_rect(seed.labels["car"], 1)]}
        for scope, id_ in (("task", seed.task_id), ("job", seed.job_ids[0])):
            for path in (_import_path(scope, id_),
                         f"/api/internal/{scope}s/{id_}/import-target"):  # fmt: skip
                is_import = path.endswith("/import")
                send = alice.client.post if is_import else alice.client.get
                kwargs: dict[str, Any] = {"json": document} if is_import else {}
                if is_import:
                    kwargs["headers"] = {ACTOR_HEADER: str(alice.id)}
                refused = await send(path, **kwargs)
                assert refused.status_code == 403, path
                assert refused.headers["content-type"] == "application/problem+json"
                anonymous = svc.anonymous.post if is_import else svc.anonymous.get
                assert (await anonymous(path)).status_code == 401
        got = (await svc.client.get(f"/api/tasks/{seed.task_id}/annotations")).json()
        assert (got["version"], got["shapes"]) == (0, [])


async def _task_over_http(url: str) -> tuple[int, list[int], int, int]:
    """Through the API, as the admin: a task with label `car` and two jobs (frames 0-9,
    10-19); its id, the jobs, the label and the admin's user id."""
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as admin:
        task = await admin.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]})
        assert task.status_code == 201, task.text
        task_id = task.json()["id"]
        made = await admin.post(f"/api/internal/tasks/{task_id}/segments", json={
            "size": 20, "media_type": "image", "chunk_size": 10,
            "segments": [{"start_frame": 0, "stop_frame": 9},
                         {"start_frame": 10, "stop_frame": 19}],
        })  # fmt: skip
        assert made.status_code == 201, made.text
        labels = await admin.get("/api/labels", params={"task_id": task_id})
        admin_id = (await admin.get("/api/users/self")).json()["id"]
    job_ids = [job["id"] for job in made.json()["jobs"]]
    return task_id, job_ids, labels.json()["results"][0]["id"], admin_id


async def test_the_shared_client_imports_over_a_socket(service_settings: dict[str, Any]) -> None:
    app = create_app(settings_for("annotations", **service_settings))
    with serve_in_thread(app) as url:
        task_id, job_ids, car, admin_id = await _task_over_http(url)
        client = AnnotationsClient(url, ADMIN_TOKEN)
        try:
            target = await client.import_target(task_id=task_id)
            assert [job.id for job in target.jobs] == job_ids
            assert (target.version, target.size, target.labels[0].name) == (0, 20, "car")
            job_target = await client.import_target(job_id=job_ids[1])
            assert [job.id for job in job_target.jobs] == [job_ids[1]]

            document = {"version": target.version, "shapes": [_rect(car, 1), _rect(car, 15)]}
            written = await client.import_annotations(
                task_id=task_id, document=orjson.dumps(document), action="replace",
                actor_id=admin_id,
            )  # fmt: skip
            assert written == ImportWritten(tags=0, shapes=2, tracks=0, deleted=0, version=2)
            appended = await client.import_annotations(
                job_id=job_ids[0], document=orjson.dumps({"shapes": [_rect(car, 2)]}),
                action="append", actor_id=admin_id,
            )  # fmt: skip
            assert (appended.shapes, appended.version) == (1, 2)

            invalid = {"shapes": [_rect(car, 1), {**_rect(car, 2), "label_id": 10**9}]}
            with pytest.raises(Problem) as refused:
                await client.import_annotations(
                    task_id=task_id, document=orjson.dumps(invalid), action="append",
                    actor_id=admin_id,
                )  # fmt: skip
            assert refused.value.status == 422
            assert [e["field"] for e in refused.value.errors] == ["body.shapes[1].label_id"]
            with pytest.raises(Problem) as stale:
                await client.import_annotations(
                    task_id=task_id, document=orjson.dumps(document), action="replace",
                    actor_id=admin_id,
                )  # fmt: skip
            assert stale.value.status == 409
            with pytest.raises(Problem) as missing:
                await client.import_target(task_id=task_id + 1000)
            assert missing.value.status == 404
            with pytest.raises(TypeError):
                await client.import_target(task_id=1, job_id=1)
            with pytest.raises(TypeError):
                await client.import_annotations(document=b"{}", action="append", actor_id=1)
            assert (await client.import_target(task_id=task_id)).version == 3
        finally:
            await client.close()
        stranger = AnnotationsClient(url, "tsr_not-a-real-token")
        try:
            with pytest.raises(Problem) as unknown:
                await stranger.import_target(task_id=task_id)
            assert unknown.value.status == 401
        finally:
            await stranger.close()
