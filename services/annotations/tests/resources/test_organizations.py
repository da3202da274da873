"""Organizations, invitations and roles; objects of another organization answer 404."""

import sqlalchemy as sa

from tessera.devstack.testing import Enrol, OpenService, Person, ServiceHandle
from tessera.platform.bus import ACTOR_KEY, outbox_table

PROBLEM = "application/problem+json"


async def invite(owner: Person, slug: str, person: Person, role: str) -> None:
    """`owner` invites `person` into `slug`, and `person` accepts."""
    invited = await owner.client.post(
        "/api/invitations",
        json={"role": role, "email": f"{person.username}@example.com"},
        headers={"X-Organization": slug},
    )
    assert invited.status_code == 201, invited.text
    accepted = await person.client.post(f"/api/invitations/{invited.json()['key']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"organization_slug": slug}


async def team(svc: ServiceHandle, enrol: Enrol) -> dict[str, Person]:
    """Organization `lab` with one member of every role (alice owns it)."""
    people = {name: await enrol(svc, name) for name in ("alice", "mary", "sam", "wes", "eve")}
    created = await people["alice"].client.post(
        "/api/organizations", json={"slug": "lab", "contact": {"email": "lab@example.com"}}
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "lab"
    assert created.json()["owner"]["username"] == "alice"
    for name, role in (("mary", "maintainer"), ("sam", "supervisor"), ("wes", "worker")):
        await invite(people["alice"], "lab", people[name], role)
    return people


async def test_invitations_roles_and_membership_rules(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        people = await team(svc, enrol)
        alice, mary, sam, wes, eve = (people[n] for n in ("alice", "mary", "sam", "wes", "eve"))
        lab = {"X-Organization": "lab"}

        members = (await wes.client.get("/api/memberships", headers=lab)).json()
        roles = {m["user"]["username"]: (m["role"], m["is_active"]) for m in members["results"]}
        assert roles == {
            "alice": ("owner", True),
            "mary": ("maintainer", True),
            "sam": ("supervisor", True),
            "wes": ("worker", True),
        }
        ids = {m["user"]["username"]: m["id"] for m in members["results"]}

        # maintainers invite supervisors and workers only; workers invite nobody
        as_maintainer = await mary.client.post(
            "/api/invitations", json={"role": "maintainer", "email": "eve@example.com"}, headers=lab
        )
        assert as_maintainer.status_code == 403
        assert as_maintainer.headers["content-type"] == PROBLEM
        as_worker = await wes.client.post(
            "/api/invitations", json={"role": "worker", "email": "eve@example.com"}, headers=lab
        )
        assert as_worker.status_code == 403
        unknown = await alice.client.post(
            "/api/invitations", json={"role": "worker", "email": "nobody@example.com"}, headers=lab
        )
        assert unknown.json()["errors"][0]["field"] == "body.email"
        again = await alice.client.post(
            "/api/invitations", json={"role": "worker", "email": "wes@example.com"}, headers=lab
        )
        assert again.status_code == 409

        # eve declines; her pending invitation is visible to her and then gone
        invited = await mary.client.post(
            "/api/invitations", json={"role": "worker", "email": "eve@example.com"}, headers=lab
        )
        key = invited.json()["key"]
        mine = (await eve.client.get("/api/invitations")).json()
        assert [i["key"] for i in mine["results"]] == [key]
        assert mine["results"][0]["organization_info"] == {"id": invited.json()["organization"],
                                                            "slug": "lab"}  # fmt: skip
        assert (await wes.client.post(f"/api/invitations/{key}/accept")).status_code == 404
        assert (await eve.client.post(f"/api/invitations/{key}/decline")).status_code == 204
        assert (await eve.client.get(f"/api/invitations/{key}")).status_code == 404
        assert (await eve.client.get("/api/organizations")).json()["count"] == 0

        # role changes: owner any but owner; maintainer only lower roles; nobody the owner
        promote = await mary.client.patch(
            f"/api/memberships/{ids['wes']}", json={"role": "maintainer"}, headers=lab
        )
        assert promote.status_code == 403
        assert (
            await mary.client.patch(f"/api/memberships/{ids['wes']}", json={"role": "supervisor"})
        ).json()["role"] == "supervisor"
        owner_change = await alice.client.patch(
            f"/api/memberships/{ids['alice']}", json={"role": "worker"}
        )
        assert owner_change.status_code == 403
        bad_role = await alice.client.patch(f"/api/memberships/{ids['sam']}", json={"role": "boss"})
        assert bad_role.json()["errors"][0]["field"] == "body.role"

        # organization changes: maintainers edit, only the owner deletes
        assert (
            await sam.client.patch("/api/organizations/1", json={"name": "x"})
        ).status_code == 403
        renamed = await mary.client.patch("/api/organizations/1", json={"name": "Lab"})
        assert renamed.json()["name"] == "Lab"
        assert (await mary.client.delete("/api/organizations/1")).status_code == 403
        assert (await eve.client.get("/api/organizations/1")).status_code == 404

        # leaving: members may, the owner may not
        assert (await sam.client.delete(f"/api/memberships/{ids['sam']}")).status_code == 204
        assert (await alice.client.delete(f"/api/memberships/{ids['alice']}")).status_code == 409
        assert (await sam.client.get("/api/projects", headers=lab)).status_code == 404


async def test_roles_decide_what_members_see_and_change(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        people = await team(svc, enrol)
        alice, mary, sam, wes, eve = (people[n] for n in ("alice", "mary", "sam", "wes", "eve"))
        lab = {"X-Organization": "lab"}
        labels = [{"name": "car"}]

        assert (
            await wes.client.post(
                "/api/projects", json={"name": "w", "labels": labels}, headers=lab
            )
        ).status_code == 403
        assert (
            await sam.client.post(
                "/api/projects", json={"name": "s", "labels": labels}, headers=lab
            )
        ).status_code == 403
        project = (
            await mary.client.post(
                "/api/projects", json={"name": "p", "labels": labels}, headers=lab
            )
        ).json()
        assert project["organization"] == project["organization_id"]
        task = (
            await mary.client.post(
                "/api/tasks", json={"name": "t", "project_id": project["id"]}, headers=lab
            )
        ).json()
        hidden = (
            await mary.client.post("/api/tasks", json={"name": "h", "labels": labels}, headers=lab)
        ).json()
        segments = await svc.client.post(
            f"/api/internal/tasks/{task['id']}/segments",
            json={"size": 20, "media_type": "image", "chunk_size": 10,
                  "segments": [{"start_frame": 0, "stop_frame": 9},
                               {"start_frame": 10, "stop_frame": 19}]},
        )  # fmt: skip
        assert segments.status_code == 201, segments.text
        first, second = (job["id"] for job in segments.json()["jobs"])

        # a worker sees only what is assigned to them
        assert (await wes.client.get("/api/tasks", headers=lab)).json()["count"] == 0
        assign = await mary.client.patch(
            f"/api/jobs/{first}", json={"assignee": wes.id}, headers=lab
        )
        assert assign.status_code == 200, assign.text
        assert assign.json()["assignee"]["username"] == "wes"
        seen = (await wes.client.get("/api/jobs", headers=lab)).json()
        assert [job["id"] for job in seen["results"]] == [first]
        assert (await wes.client.get(f"/api/jobs/{second}", headers=lab)).status_code == 404
        assert (await wes.client.get(f"/api/tasks/{hidden['id']}", headers=lab)).status_code == 404
        own_labels = await wes.client.get("/api/labels", params={"job_id": first}, headers=lab)
        assert [label["name"] for label in own_labels.json()["results"]] == ["car"]

        # the assignee moves the state; only the task's staff move the stage
        state = await wes.client.patch(
            f"/api/jobs/{first}", json={"state": "in progress"}, headers=lab
        )
        assert state.json()["state"] == "in progress"
        stage = await wes.client.patch(
            f"/api/jobs/{first}", json={"stage": "acceptance"}, headers=lab
        )
        assert stage.status_code == 403
        # a supervisor sees everything and changes nothing
        assert (await sam.client.get("/api/tasks", headers=lab)).json()["count"] == 2
        assert (
            await sam.client.patch(f"/api/jobs/{first}", json={"state": "completed"}, headers=lab)
        ).status_code == 403
        assert (
            await sam.client.patch(f"/api/tasks/{task['id']}", json={"name": "x"}, headers=lab)
        ).status_code == 403

        accepted = await alice.client.patch(
            f"/api/jobs/{second}",
            json={"stage": "acceptance", "state": "completed"},
            headers=lab,
        )
        assert accepted.json()["status"] == "completed"
        moved = await alice.client.patch(
            f"/api/jobs/{first}", json={"stage": "validation"}, headers=lab
        )
        assert (moved.json()["stage"], moved.json()["state"]) == ("validation", "new")
        summary = (await alice.client.get(f"/api/tasks/{task['id']}", headers=lab)).json()
        assert summary["jobs"]["completed"] == 1
        assert summary["jobs"]["validation"] == 1
        assert summary["status"] == "validation"
        assert summary["size"] == 20
        assert summary["mode"] == "annotation"
        outsider = await alice.client.patch(
            f"/api/jobs/{first}", json={"assignee": eve.id}, headers=lab
        )
        assert outsider.json()["errors"][0]["field"] == "body.assignee"

        # objects of another organization, or outside it, answer 404
        for path in (f"/api/projects/{project['id']}", f"/api/tasks/{task['id']}",
                     f"/api/jobs/{first}"):  # fmt: skip
            assert (await alice.client.get(path)).status_code == 404, path
            assert (await eve.client.get(path)).status_code == 404, path
            assert (await eve.client.get(path, headers=lab)).status_code == 404, path
        await eve.client.post("/api/organizations", json={"slug": "other"})
        assert (
            await eve.client.get(
                f"/api/projects/{project['id']}", headers={"X-Organization": "other"}
            )
        ).status_code == 404
        foreign = await eve.client.post(
            "/api/tasks", json={"name": "x", "project_id": project["id"]},
            headers={"X-Organization": "other"},
        )  # fmt: skip
        assert foreign.json()["errors"][0]["field"] == "body.project_id"

        async with svc.platform.database.transaction() as session:
            rows = (
                await session.execute(
                    sa.select(outbox_table(sa.MetaData(), "annotations"))
                    .where(sa.text("subject = 'jobs.updated'"))
                    .order_by(sa.text("id"))
                )
            ).all()
        assert rows[0].payload == {
            "job_id": first,
            "task_id": task["id"],
            "changes": {"assignee_id": {"old": None, "new": wes.id}},
            ACTOR_KEY: mary.id,
        }

        assert (
            await mary.client.delete(f"/api/projects/{project['id']}", headers=lab)
        ).status_code == 204
        async with svc.platform.database.transaction() as session:
            subjects = (
                await session.scalars(sa.text("SELECT subject FROM annotations.outbox ORDER BY id"))
            ).all()
        assert subjects.count("tasks.created") == 2
        assert subjects.count("tasks.deleted") == 1
