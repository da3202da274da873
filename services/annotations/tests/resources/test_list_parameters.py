"""CVAT's list parameters on projects, tasks, jobs, labels, issues and comments: simple
filters, `search`, `sort`, JSON Logic `filter` and paging, over the HTTP API."""

import json
from dataclasses import dataclass
from typing import Any

import httpx

from tessera.devstack.testing import Enrol, OpenService, Person, ServiceHandle

PROBLEM = "application/problem+json"
SEGMENTS = {
    "size": 10, "media_type": "image", "chunk_size": 4,
    "segments": [{"start_frame": 0, "stop_frame": 4}, {"start_frame": 5, "stop_frame": 9}],
}  # fmt: skip
SKELETON = {
    "name": "body",
    "type": "skeleton",
    "svg": '<circle r="1.5" cx="10" cy="10" data-type="element node" data-node-id="1" '
    'data-label-name="head"></circle><circle r="1.5" cx="50" cy="50" data-node-id="2" '
    'data-label-name="tail"></circle>',
    "sublabels": [{"name": "head", "type": "points"}, {"name": "tail", "type": "points"}],
}


@dataclass
class World:
    """Users, projects, tasks and jobs (two per task) to list.

    Projects: zoo (alice owns, bob assigned; tasks "zoo day", "zoo night"), farm (bob
    owns; task "farm a", its jobs accepted: completed), lab (task "lab a", its jobs in
    validation), city (alice assigned, no tasks); task "loose" has no project. The first
    job of "zoo day" is assigned to alice.
    """

    svc: ServiceHandle
    alice: Person
    bob: Person
    projects: dict[str, int]
    tasks: dict[str, int]
    jobs: dict[str, list[int]]


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def build_world(svc: ServiceHandle, enrol: Enrol) -> World:
    alice, bob = await enrol(svc, "alice"), await enrol(svc, "bob")
    client = svc.client
    projects = {}
    for name, fields in (
        ("zoo", {"owner_id": alice.id, "assignee_id": bob.id, "labels": [
            {"name": "car", "type": "rectangle", "color": "#ff0000"}, SKELETON,
            {"name": "tree", "type": "polygon", "color": "#00ff00"},
        ]}),
        ("farm", {"owner_id": bob.id}),
        ("lab", {}),
        ("city", {"assignee_id": alice.id}),
    ):  # fmt: skip
        projects[name] = (await created(client, "/api/projects", {"name": name, **fields}))["id"]
    tasks, jobs = {}, {}
    for name, project in (
        ("zoo day", "zoo"),
        ("zoo night", "zoo"),
        ("farm a", "farm"),
        ("lab a", "lab"),
        ("loose", None),
    ):
        body: dict[str, Any] = {"name": name}
        if project is None:
            body["labels"] = [{"name": "cat", "type": "any", "color": "#0000ff"}]
        else:
            body["project_id"] = projects[project]
        tasks[name] = (await created(client, "/api/tasks", body))["id"]
        made = await created(client, f"/api/internal/tasks/{tasks[name]}/segments", SEGMENTS)
        jobs[name] = [job["id"] for job in made["jobs"]]
    changes = [
        *((job, {"stage": "acceptance", "state": "completed"}) for job in jobs["farm a"]),
        *((job, {"stage": "validation"}) for job in jobs["lab a"]),
        (jobs["zoo day"][0], {"assignee": alice.id}),
    ]
    for job, change in changes:
        patched = await client.patch(f"/api/jobs/{job}", json=change)
        assert patched.status_code == 200, patched.text
    return World(svc, alice, bob, projects, tasks, jobs)


async def page(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    """One page of a list (`filter` given as a rule, JSON-encoded here)."""
    if "filter" in params:
        params["filter"] = json.dumps(params["filter"])
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def ids(client: httpx.AsyncClient, path: str, **params: Any) -> list[int]:
    return [row["id"] for row in (await page(client, path, **params))["results"]]


async def names(client: httpx.AsyncClient, path: str, **params: Any) -> list[str]:
    return [row["name"] for row in (await page(client, path, **params))["results"]]


async def assert_paged(client: httpx.AsyncClient, path: str, size: int, every: list[int]) -> None:
    """`page_size` pages through `every` (the default order) by the `next` links."""
    seen: list[int] = []
    url: str | None = f"{path}?page_size={size}"
    while url is not None:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        listed = response.json()
        assert listed["count"] == len(every)
        assert len(listed["results"]) <= size
        seen += [row["id"] for row in listed["results"]]
        url = listed["next"]
        if url is not None:
            assert f"page_size={size}" in url
    assert seen == every
    assert len(every) > size, "the list fits on one page"
    past = await client.get(path, params={"page_size": size, "page": len(every) // size + 2})
    assert past.status_code == 404


async def assert_unknown_fields_refused(client: httpx.AsyncClient, path: str) -> None:
    """An unknown field in `sort` or `filter` is a 400 naming the parameter."""
    for params, field in (
        ({"sort": "nope"}, "query.sort"),
        ({"sort": "id,-nope"}, "query.sort"),
        ({"filter": json.dumps({"==": [{"var": "nope"}, 1]})}, "query.filter"),
        ({"filter": json.dumps({"and": [{"in": [{"var": "nope"}, [1]]}]})}, "query.filter"),
        ({"filter": "{not json"}, "query.filter"),
    ):
        refused = await client.get(path, params=params)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["errors"][0]["field"] == field


async def test_project_and_task_lists(open_service: OpenService, enrol: Enrol) -> None:
    async with open_service("annotations") as svc:
        world = await build_world(svc, enrol)
        client, p = svc.client, world.projects
        path = "/api/projects"

        every = [p["city"], p["lab"], p["farm"], p["zoo"]]
        assert await ids(client, path) == every  # newest first
        assert await names(client, path, owner="alice") == ["zoo"]
        assert await names(client, path, assignee="alice") == ["city"]
        assert await names(client, path, name="farm") == ["farm"]
        assert await names(client, path, status="completed") == ["farm"]
        assert await names(client, path, status="validation") == ["lab"]
        assert await names(client, path, status="annotation") == ["city", "zoo"]
        assert await names(client, path, status="annotation", owner="alice") == ["zoo"]
        bad_choice = await client.get(path, params={"status": "done"})
        assert bad_choice.status_code == 400
        assert bad_choice.json()["errors"][0]["field"] == "query.status"

        assert await names(client, path, search="ALI") == ["city", "zoo"]  # owner, assignee
        assert await names(client, path, search="zoo bob") == ["zoo"]  # every term
        assert await names(client, path, search="nobody") == []

        assert await names(client, path, sort="name") == ["city", "farm", "lab", "zoo"]
        assert await names(client, path, sort="-name") == ["zoo", "lab", "farm", "city"]
        assert await names(client, path, sort="status,-name") == ["zoo", "city", "farm", "lab"]
        assert await ids(client, path, sort="id") == every[::-1]

        rule = {
            "and": [
                {"==": [{"var": "status"}, "annotation"]},
                {"in": [{"var": "name"}, ["zoo", "farm", "city"]]},
            ]
        }
        assert await names(client, path, filter=rule) == ["city", "zoo"]
        either = {"or": [{"==": [{"var": "owner"}, "bob"]}, {"in": ["it", {"var": "name"}]}]}
        assert await names(client, path, filter=either, sort="name") == ["city", "farm"]

        await assert_paged(client, path, 3, every)
        await assert_unknown_fields_refused(client, path)

        # Tasks (converted first): a filter and a page size that the `next` link keeps.
        t = world.tasks
        tasks = await page(
            client,
            "/api/tasks",
            sort="-id",
            filter={"and": [{"==": [{"var": "status"}, "annotation"]}]},
            page_size=2,
        )
        assert (tasks["count"], [row["id"] for row in tasks["results"]]) == (
            3,
            [t["loose"], t["zoo night"]],
        )
        assert tasks["next"] is not None
        following = (await client.get(tasks["next"])).json()
        kept = httpx.URL(tasks["next"]).params
        assert json.loads(kept["filter"]) == {"and": [{"==": [{"var": "status"}, "annotation"]}]}
        assert (kept["sort"], kept["page_size"], kept["page"]) == ("-id", "2", "2")
        assert [row["id"] for row in following["results"]] == [t["zoo day"]]
        assert following["next"] is None
        assert await ids(client, "/api/tasks", project_id=p["zoo"]) == [
            t["zoo night"],
            t["zoo day"],
        ]


async def test_job_list(open_service: OpenService, enrol: Enrol) -> None:
    async with open_service("annotations") as svc:
        world = await build_world(svc, enrol)
        client, j, t, p = svc.client, world.jobs, world.tasks, world.projects
        path = "/api/jobs"
        every = sorted((job for pair in j.values() for job in pair), reverse=True)

        assert await ids(client, path) == every  # newest first
        # cvat-sdk's Task.get_jobs(): /api/jobs?task_id=N
        assert await ids(client, path, task_id=t["zoo day"]) == j["zoo day"][::-1]
        zoo = [*j["zoo day"], *j["zoo night"]]
        assert await ids(client, path, project_id=p["zoo"]) == zoo[::-1]
        assert await ids(client, path, project_name="farm") == j["farm a"][::-1]
        assert await ids(client, path, task_name="loose") == j["loose"][::-1]
        assert await ids(client, path, stage="validation") == j["lab a"][::-1]
        assert await ids(client, path, state="completed") == j["farm a"][::-1]
        assert await ids(client, path, assignee="alice") == [j["zoo day"][0]]
        assert await ids(client, path, type="annotation", dimension="2d") == every
        assert await ids(client, path, media_type="image", mode="annotation") == every
        assert (await page(client, path, media_type="video"))["count"] == 0
        bad_stage = await client.get(path, params={"stage": "review"})
        assert bad_stage.status_code == 400
        assert bad_stage.json()["errors"][0]["field"] == "query.stage"

        assert await ids(client, path, search="NIGHT") == j["zoo night"][::-1]  # task_name
        assert await ids(client, path, search="farm") == j["farm a"][::-1]  # project_name
        assert await ids(client, path, search="alice") == [j["zoo day"][0]]  # assignee

        by_task = [j[name] for name in ("farm a", "lab a", "loose", "zoo day", "zoo night")]
        assert await ids(client, path, sort="task_name", page_size="all") == [
            job for pair in by_task for job in pair
        ]
        assert await ids(client, path, sort="-task_name", page_size="all") == [
            job for pair in by_task[::-1] for job in pair
        ]
        assert await ids(client, path, sort="id", page_size="all") == every[::-1]

        rule = {
            "and": [
                {"==": [{"var": "stage"}, "annotation"]},
                {"in": [{"var": "task_id"}, [t["zoo day"], t["loose"], t["farm a"]]]},
            ]
        }
        assert await ids(client, path, filter=rule) == [*j["zoo day"], *j["loose"]][::-1]
        no_parent = {"==": [{"var": "parent_job_id"}, None]}
        assert (await page(client, path, filter=no_parent))["count"] == len(every)
        updated = {"and": [{"var": "updated_date"}, {"!=": [{"var": "state"}, "new"]}]}
        assert await ids(client, path, filter=updated) == j["farm a"][::-1]

        await assert_paged(client, path, 4, every)
        await assert_unknown_fields_refused(client, path)


async def test_label_list(open_service: OpenService, enrol: Enrol) -> None:
    async with open_service("annotations") as svc:
        world = await build_world(svc, enrol)
        client = svc.client
        path = "/api/labels"

        top = await page(client, path)
        assert [row["name"] for row in top["results"]] == ["car", "body", "tree", "cat"]
        every = [row["id"] for row in top["results"]]
        body = every[1]
        assert every == sorted(every)  # in id order

        # Whose labels: project, task (its project's), job; sublabels by their parent.
        zoo = ["car", "body", "tree"]
        assert await names(client, path, project_id=world.projects["zoo"]) == zoo
        assert await names(client, path, task_id=world.tasks["zoo night"]) == zoo
        assert await names(client, path, job_id=world.jobs["zoo day"][1]) == zoo
        assert await names(client, path, task_id=world.tasks["loose"]) == ["cat"]
        assert await names(client, path, parent_id=body) == ["head", "tail"]
        assert await names(client, path, parent="body") == ["head", "tail"]

        assert await names(client, path, type="polygon") == ["tree"]
        assert await names(client, path, name="cat") == ["cat"]
        assert await names(client, path, color="#ff0000") == ["car"]
        bad_type = await client.get(path, params={"type": "circle"})
        assert bad_type.status_code == 400
        assert bad_type.json()["errors"][0]["field"] == "query.type"

        assert await names(client, path, search="CA") == ["car", "cat"]
        assert await names(client, path, search="body", parent_id=body) == ["head", "tail"]
        assert await names(client, path, search="ai", parent="body") == ["tail"]

        assert await names(client, path, sort="name") == ["body", "car", "cat", "tree"]
        assert await names(client, path, sort="-name") == ["tree", "cat", "car", "body"]
        assert await names(client, path, sort="-id") == ["cat", "tree", "body", "car"]
        assert await names(client, path, sort="type,name") == ["cat", "tree", "car", "body"]

        rule = {
            "and": [
                {"in": [{"var": "type"}, ["rectangle", "polygon", "any"]]},
                {"==": [{"var": "parent_id"}, None]},
            ]
        }
        assert await names(client, path, filter=rule, project_id=world.projects["zoo"]) == [
            "car",
            "tree",
        ]
        assert await names(client, path, filter={"in": ["t", {"var": "name"}]}) == ["tree", "cat"]

        await assert_paged(client, path, 3, every)
        await assert_unknown_fields_refused(client, path)


async def test_issue_and_comment_lists(open_service: OpenService, enrol: Enrol) -> None:
    async with open_service("annotations") as svc:
        world = await build_world(svc, enrol)
        admin, alice, bob = svc.client, world.alice.client, world.bob.client
        day, farm = world.jobs["zoo day"], world.jobs["farm a"]
        position = [1.0, 2.0, 3.0, 4.0]
        opened = [
            (admin, {"job": day[0], "frame": 0, "assignee": world.alice.id, "message": "i1"}),
            (alice, {"job": day[0], "frame": 1, "assignee": world.bob.id, "message": "i2"}),
            (admin, {"job": farm[0], "frame": 2, "message": "i3"}),
            (bob, {"job": farm[1], "frame": 7, "message": "i4"}),
        ]
        i1, i2, i3, i4 = [
            (await created(client, "/api/issues", {**body, "position": position}))["id"]
            for client, body in opened
        ]
        resolved = await admin.patch(f"/api/issues/{i3}", json={"resolved": True})
        assert resolved.status_code == 200, resolved.text
        c5 = (await created(alice, "/api/comments", {"issue": i1, "message": "ok"}))["id"]
        c6 = (await created(bob, "/api/comments", {"issue": i4, "message": "done"}))["id"]

        path = "/api/issues"
        every = [i4, i3, i2, i1]
        assert await ids(admin, path) == every  # newest first
        assert await ids(admin, path, job_id=day[0]) == [i2, i1]
        assert await ids(admin, path, task_id=world.tasks["farm a"]) == [i4, i3]
        assert await ids(admin, path, owner="alice") == [i2]
        assert await ids(admin, path, assignee="alice") == [i1]
        assert await ids(admin, path, resolved="true") == [i3]
        assert await ids(admin, path, resolved="false", frame_id=7) == [i4]
        bad_bool = await admin.get(path, params={"resolved": "maybe"})
        assert bad_bool.status_code == 400
        assert bad_bool.json()["errors"][0]["field"] == "query.resolved"
        assert await ids(admin, path, search="bob") == [i4, i2]  # owner or assignee
        assert await ids(admin, path, sort="frame_id") == [i1, i2, i3, i4]
        assert await ids(admin, path, sort="-frame_id") == [i4, i3, i2, i1]
        assert await ids(admin, path, sort="owner,-id") == [i3, i1, i2, i4]  # admin, alice, bob
        rule = {
            "and": [
                {"==": [{"var": "resolved"}, False]},
                {"in": [{"var": "job_id"}, [day[0], farm[1]]]},
            ]
        }
        assert await ids(admin, path, filter=rule) == [i4, i2, i1]
        assert await ids(admin, path, filter={"<=": [1, {"var": "frame_id"}, 2]}) == [i3, i2]
        await assert_paged(admin, path, 3, every)
        await assert_unknown_fields_refused(admin, path)
        assert await ids(alice, path) == [i2, i1]  # alice sees the zoo's jobs only

        path = "/api/comments"
        listed = await page(admin, path, page_size="all")
        c1, c2, c3, c4 = sorted(row["id"] for row in listed["results"])[:4]
        every = [c6, c5, c4, c3, c2, c1]
        assert [row["id"] for row in listed["results"]] == every  # newest first
        assert await ids(admin, path, issue_id=i1) == [c5, c1]
        assert await ids(admin, path, owner="bob") == [c6, c4]
        assert await ids(admin, path, job_id=day[0]) == [c5, c2, c1]
        assert await ids(admin, path, frame_id=7) == [c6, c4]
        assert await ids(admin, path, search="ALI") == [c5, c2]
        assert await ids(admin, path, sort="issue_id", page_size="all") == [c1, c5, c2, c3, c4, c6]
        assert await ids(admin, path, sort="-issue_id,-id", page_size="all") == [
            c6,
            c4,
            c3,
            c2,
            c5,
            c1,
        ]
        rule = {
            "and": [
                {"in": [{"var": "issue_id"}, [i1, i4]]},
                {"==": [{"var": "owner"}, "bob"]},
            ]
        }
        assert await ids(admin, path, filter=rule) == [c6, c4]
        await assert_paged(admin, path, 4, every)
        await assert_unknown_fields_refused(admin, path)
