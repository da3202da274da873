"""The audit log: entries made from events, with actor and counts, visible per role."""

import asyncio
from typing import Any

from tessera.devstack.testing import Enrol, OpenService, Person, ServiceHandle

LAB = {"X-Organization": "lab"}
RECTANGLE = {"type": "rectangle", "frame": 0, "points": [1.0, 2.0, 3.0, 4.0]}


async def _entries(person: Person, expected: int, timeout: float = 20.0, **params: Any) -> Any:
    """Poll `/api/audit` (in `lab`) until it lists `expected` entries; newest first."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await person.client.get("/api/audit", params=params, headers=LAB)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["count"] >= expected or asyncio.get_running_loop().time() > deadline:
            return body["results"]
        await asyncio.sleep(0.1)


async def _invite(owner: Person, person: Person, role: str) -> None:
    invited = await owner.client.post(
        "/api/invitations", json={"role": role, "email": f"{person.username}@example.com"},
        headers=LAB,
    )  # fmt: skip
    assert invited.status_code == 201, invited.text
    accepted = await person.client.post(f"/api/invitations/{invited.json()['key']}/accept")
    assert accepted.status_code == 200, accepted.text


async def _setup(svc: ServiceHandle, enrol: Enrol) -> tuple[dict[str, Person], int, int, int]:
    """`lab` owned by alice with worker wes; two tasks, wes assigned to the first's job."""
    people = {name: await enrol(svc, name) for name in ("alice", "wes", "eve")}
    alice, wes = people["alice"], people["wes"]
    assert (await alice.client.post("/api/organizations", json={"slug": "lab"})).status_code == 201
    await _invite(alice, wes, "worker")
    seen, hidden = [
        (
            await alice.client.post(
                "/api/tasks", json={"name": name, "labels": [{"name": "car"}]}, headers=LAB
            )
        ).json()
        for name in ("seen", "hidden")
    ]
    segments = await svc.client.post(
        f"/api/internal/tasks/{seen['id']}/segments",
        json={"size": 10, "media_type": "image", "chunk_size": 10,
              "segments": [{"start_frame": 0, "stop_frame": 9}]},
    )  # fmt: skip
    assert segments.status_code == 201, segments.text
    job_id = segments.json()["jobs"][0]["id"]
    assigned = await alice.client.patch(
        f"/api/jobs/{job_id}", json={"assignee": wes.id}, headers=LAB
    )
    assert assigned.status_code == 200, assigned.text
    return people, seen["id"], hidden["id"], job_id


async def test_changes_are_logged_with_their_actor_and_counts(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        people, task_id, hidden_id, job_id = await _setup(svc, enrol)
        alice, wes, eve = people["alice"], people["wes"], people["eve"]
        labels = await alice.client.get("/api/labels", params={"task_id": task_id}, headers=LAB)
        label_id = labels.json()["results"][0]["id"]

        put = await wes.client.put(
            f"/api/jobs/{job_id}/annotations",
            json={"version": 0, "tags": [], "tracks": [],
                  "shapes": [{**RECTANGLE, "label_id": label_id}] * 2},
            headers=LAB,
        )  # fmt: skip
        assert put.status_code == 200, put.text
        renamed = await alice.client.patch(
            f"/api/labels/{label_id}", json={"name": "truck"}, headers=LAB
        )
        assert renamed.status_code == 200, renamed.text
        memberships = await alice.client.get(
            "/api/memberships", params={"user": "wes"}, headers=LAB
        )
        membership_id = memberships.json()["results"][0]["id"]
        promoted = await alice.client.patch(
            f"/api/memberships/{membership_id}", json={"role": "supervisor"}, headers=LAB
        )
        assert promoted.status_code == 200, promoted.text

        # tasks.created and labels.changed x2, memberships.changed (wes joins),
        # jobs.updated, annotations.changed, labels.changed (rename), memberships.changed
        everything = await _entries(alice, 9, page_size=100)
        assert len(everything) == 9
        by_action: dict[str, list[Any]] = {}
        for entry in everything:
            by_action.setdefault(entry["action"], []).append(entry)

        (annotations,) = by_action["annotations.changed"]
        assert annotations["actor"]["username"] == "wes"
        assert (annotations["job_id"], annotations["task_id"]) == (job_id, task_id)
        assert annotations["organization"] is not None
        assert annotations["details"] == {
            "job_id": job_id, "task_id": task_id, "version": 1,
            "created": 2, "updated": 0, "deleted": 0,
        }  # fmt: skip

        rename = next(e for e in by_action["labels.changed"] if e["details"]["updated"])
        assert rename["actor"]["username"] == "alice"
        assert rename["task_id"] == task_id
        assert rename["details"] == {
            "project_id": None, "task_id": task_id, "created": 0, "updated": 1, "deleted": 0,
        }  # fmt: skip

        promotion = next(e for e in by_action["memberships.changed"] if e["details"]["old_role"])
        assert promotion["actor"]["username"] == "alice"
        assert promotion["details"] == {
            "membership_id": membership_id, "organization_id": promotion["organization"],
            "user_id": wes.id, "old_role": "worker", "new_role": "supervisor",
        }  # fmt: skip
        joined = next(e for e in by_action["memberships.changed"] if not e["details"]["old_role"])
        assert joined["actor"]["username"] == "wes"

        (assignment,) = by_action["jobs.updated"]
        assert assignment["details"]["changes"] == {"assignee_id": {"old": None, "new": wes.id}}
        assert {e["task_id"] for e in by_action["tasks.created"]} == {task_id, hidden_id}

        # filters: by task, by job, by actor
        of_task = await _entries(alice, 0, task_id=task_id, page_size=100)
        assert {e["task_id"] for e in of_task} == {task_id}
        assert len(of_task) == 5  # created, its labels, assignment, annotations, rename
        assert [e["action"] for e in await _entries(alice, 0, job_id=job_id)] == [
            "annotations.changed", "jobs.updated",
        ]  # fmt: skip
        by_wes = await _entries(alice, 0, user_id=wes.id)
        assert sorted(e["action"] for e in by_wes) == ["annotations.changed", "memberships.changed"]

        # visibility: wes (now a supervisor) sees the entries of tasks only, no roles;
        # eve, outside the organization, sees nothing of it
        wes_sees = await _entries(wes, 0, page_size=100)
        assert {e["task_id"] for e in wes_sees} == {task_id, hidden_id}
        assert "memberships.changed" not in {e["action"] for e in wes_sees}
        outside = await eve.client.get("/api/audit", headers=LAB)
        assert outside.status_code == 404
        assert (await eve.client.get("/api/audit")).json()["count"] == 0
        # the admin, in the organization's context, sees all of it
        assert (await svc.client.get("/api/audit", headers=LAB)).json()["count"] == len(everything)


async def test_a_worker_sees_only_entries_of_tasks_they_see(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        people, task_id, hidden_id, _ = await _setup(svc, enrol)
        everything = await _entries(people["alice"], 6, page_size=100)
        assert len(everything) == 6
        assert hidden_id in {e["task_id"] for e in everything}
        wes_sees = await _entries(people["wes"], 0, page_size=100)
    assert wes_sees
    assert {e["task_id"] for e in wes_sees} == {task_id}
    assert "memberships.changed" not in {e["action"] for e in wes_sees}
