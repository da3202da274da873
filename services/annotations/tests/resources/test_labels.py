"""Projects and tasks with labels: skeletons, a task in a project, and label validation."""

from typing import Any

import sqlalchemy as sa

from tessera.devstack.testing import OpenService
from tessera.platform.bus import ACTOR_KEY

PROBLEM = "application/problem+json"
SVG = (
    '<line x1="10" y1="10" x2="50" y2="50" data-type="edge" data-node-from="1" data-node-to="2">'
    '</line><circle r="1.5" cx="10" cy="10" data-type="element node" data-node-id="1" '
    'data-label-name="head"></circle><circle r="1.5" cx="50" cy="50" data-node-id="2" '
    'data-label-name="tail"></circle>'
)


def car() -> dict[str, Any]:
    """A rectangle label with one attribute of every input type."""
    return {
        "name": "car",
        "color": "#ff0000",
        "type": "rectangle",
        "attributes": [
            {"name": "model", "mutable": False, "input_type": "select", "values": ["a", "b"]},
            {"name": "side", "mutable": True, "input_type": "radio", "values": ["l", "r"],
             "default_value": "r"},
            {"name": "parked", "mutable": True, "input_type": "checkbox", "values": ["false"]},
            {"name": "speed", "mutable": True, "input_type": "number", "values": ["0", "120", "5"]},
            {"name": "note", "mutable": False, "input_type": "text", "values": []},
        ],
    }  # fmt: skip


def body() -> dict[str, Any]:
    """A skeleton label with two points and an edge between them."""
    return {
        "name": "body",
        "type": "skeleton",
        "svg": SVG,
        "sublabels": [
            {"name": "head", "type": "points",
             "attributes": [{"name": "visible", "mutable": True, "input_type": "checkbox",
                             "values": ["true"]}]},
            {"name": "tail", "type": "points"},
        ],
    }  # fmt: skip


async def test_project_with_skeleton_and_a_task_that_uses_its_labels(
    open_service: OpenService,
) -> None:
    async with open_service("annotations") as svc:
        created = await svc.client.post(
            "/api/projects", json={"name": "zoo", "labels": [car(), body()]}
        )
        assert created.status_code == 201, created.text
        project = created.json()
        assert project["tasks"]["count"] == 0
        assert project["labels"]["url"].endswith(f"/api/labels?project_id={project['id']}")
        assert project["owner"]["username"] == "admin"

        listed = (await svc.client.get("/api/labels", params={"project_id": project["id"]})).json()
        assert [label["name"] for label in listed["results"]] == ["car", "body"]
        car_label, body_label = listed["results"]
        attributes = {a["name"]: a for a in car_label["attributes"]}
        assert attributes["model"]["default_value"] == "a"
        assert attributes["side"]["default_value"] == "r"
        assert attributes["parked"]["default_value"] == "false"
        assert attributes["speed"]["default_value"] == "0"
        head, tail = body_label["sublabels"]
        assert (head["name"], head["has_parent"], tail["name"]) == ("head", True, "tail")
        assert head["attributes"][0]["values"] == ["true"]
        assert f'data-label-id="{head["id"]}"' in body_label["svg"]
        assert f'data-label-id="{tail["id"]}"' in body_label["svg"]
        assert "data-label-name" not in body_label["svg"]
        assert body_label["color"].startswith("#")
        assert len(body_label["color"]) == 7

        sublabels = await svc.client.get("/api/labels", params={"parent_id": body_label["id"]})
        assert [label["name"] for label in sublabels.json()["results"]] == ["head", "tail"]

        task = await svc.client.post(
            "/api/tasks", json={"name": "day 1", "project_id": project["id"], "subset": "train"}
        )
        assert task.status_code == 201, task.text
        task_id = task.json()["id"]
        assert task.json()["project_name"] == "zoo"
        of_task = (await svc.client.get("/api/labels", params={"task_id": task_id})).json()
        assert [label["id"] for label in of_task["results"]] == [
            car_label["id"],
            body_label["id"],
        ]

        own_labels = await svc.client.post(
            "/api/tasks", json={"name": "x", "project_id": project["id"], "labels": [car()]}
        )
        assert own_labels.status_code == 422
        assert own_labels.json()["errors"][0]["field"] == "body.labels"

        project = (await svc.client.get(f"/api/projects/{project['id']}")).json()
        assert project["tasks"]["count"] == 1
        assert project["task_subsets"] == ["train"]


async def test_task_fields_are_stored_and_returned(open_service: OpenService) -> None:
    fields = {
        "name": "video",
        "labels": [{"name": "car"}],
        "segment_size": 100,
        "overlap": 5,
        "image_quality": 95,
        "start_frame": 10,
        "stop_frame": 500,
        "frame_filter": "step=3",
        "bug_tracker": "https://issues.example.com/1",
        "dataset_repository": "https://git.example.com/data.git",
        "subset": "validation",
    }
    async with open_service("annotations") as svc:
        created = await svc.client.post("/api/tasks", json=fields)
        assert created.status_code == 201, created.text
        task = (await svc.client.get(f"/api/tasks/{created.json()['id']}")).json()
        patched = await svc.client.patch(
            f"/api/tasks/{task['id']}", json={"image_quality": 50, "assignee_id": 1}
        )
        bad = {
            "image_quality": 4,
            "frame_filter": "every=2",
            "bug_tracker": "ftp://x",
            "overlap": -1,
        }
        refused = await svc.client.patch(f"/api/tasks/{task['id']}", json=bad)
        backwards = await svc.client.patch(f"/api/tasks/{task['id']}", json={"stop_frame": 1})
        after = (await svc.client.get(f"/api/tasks/{task['id']}")).json()
        assert (await svc.client.delete(f"/api/tasks/{task['id']}")).status_code == 204
        async with svc.platform.database.transaction() as session:
            events = (
                await session.execute(
                    sa.text("SELECT subject, payload FROM annotations.outbox ORDER BY id")
                )
            ).all()
    for name, value in fields.items():
        if name != "labels":
            assert task[name] == value, name
    assert task["status"] == "annotation"
    assert task["jobs"] == {
        "count": 0,
        "completed": 0,
        "validation": 0,
        "url": f"http://testserver/api/jobs?task_id={task['id']}",
    }
    assert "media_type" not in task
    assert task["data"] is None
    assert patched.json()["image_quality"] == 50
    assert patched.json()["assignee"]["username"] == "admin"
    assert patched.json()["assignee_updated_date"] is not None
    assert refused.status_code == 422
    assert refused.headers["content-type"] == PROBLEM
    assert {error["field"] for error in refused.json()["errors"]} == {
        f"body.{name}" for name in bad
    }
    assert backwards.json()["errors"] == [
        {"field": "body.stop_frame", "message": "must not be less than start_frame"}
    ]
    assert after == patched.json()
    assert [(subject, payload["task_id"]) for subject, payload in events] == [
        ("labels.changed", task["id"]),
        ("tasks.created", task["id"]),
        ("tasks.deleted", task["id"]),
    ]
    assert events[0].payload == {
        "project_id": None,
        "task_id": task["id"],
        "created": 1,
        "updated": 0,
        "deleted": 0,
        ACTOR_KEY: 1,
    }
    assert events[1].payload == {
        "task_id": task["id"],
        "project_id": None,
        "organization_id": None,
        "owner_id": 1,
        "name": "video",
        ACTOR_KEY: 1,
    }


async def test_label_errors_name_the_field_and_change_nothing(open_service: OpenService) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"attributes": [{"name": "a", "input_type": "select", "values": []}]},
         "body.labels[1].attributes[0].values"),
        ({"attributes": [{"name": "a", "input_type": "number", "values": ["0", "10"]}]},
         "body.labels[1].attributes[0].values"),
        ({"attributes": [{"name": "a", "input_type": "number", "values": ["5", "1", "1"]}]},
         "body.labels[1].attributes[0].values"),
        ({"attributes": [{"name": "a", "input_type": "number", "values": ["0", "9", "1"],
                          "default_value": "10"}]},
         "body.labels[1].attributes[0].default_value"),
        ({"attributes": [{"name": "a", "input_type": "radio", "values": ["x"],
                          "default_value": "y"}]},
         "body.labels[1].attributes[0].default_value"),
        ({"attributes": [{"name": "a", "input_type": "checkbox", "values": ["maybe"]}]},
         "body.labels[1].attributes[0].values"),
        ({"attributes": [{"name": "a", "input_type": "slider", "values": []}]},
         "body.labels[1].attributes[0].input_type"),
        ({"attributes": [{"name": "a", "input_type": "text"}, {"name": "a", "input_type": "text"}]},
         "body.labels[1].attributes[1].name"),
        ({"color": "red"}, "body.labels[1].color"),
        ({"type": "blob"}, "body.labels[1].type"),
        ({"name": "car"}, "body.labels[1].name"),
        ({"sublabels": [{"name": "p"}]}, "body.labels[1].sublabels"),
        ({"type": "skeleton", "sublabels": []}, "body.labels[1].sublabels"),
        ({"type": "skeleton", "sublabels": [{"name": "p"}, {"name": "p"}]},
         "body.labels[1].sublabels[1].name"),
        ({"type": "skeleton", "sublabels": [{"name": "p"}],
          "svg": '<circle data-node-id="1" data-label-name="q"></circle>'}, "body.labels[1].svg"),
        ({"type": "skeleton", "sublabels": [{"name": "p"}],
          "svg": '<script>alert(1)</script>'}, "body.labels[1].svg"),
        ({"type": "skeleton", "sublabels": [{"name": "p"}],
          "svg": '<circle data-node-id="1" data-label-name="p" onclick="x()"></circle>'},
         "body.labels[1].svg"),
        ({"type": "skeleton", "sublabels": [{"name": "p", "type": "skeleton"}]},
         "body.labels[1].sublabels[0].type"),
        ({"id": 999999}, "body.labels[1].id"),
    ]  # fmt: skip
    async with open_service("annotations") as svc:
        for extra, field in cases:
            label = {"name": "other", **extra}
            response = await svc.client.post(
                "/api/projects", json={"name": "p", "labels": [car(), label]}
            )
            assert response.status_code == 422, (extra, response.text)
            assert response.headers["content-type"] == PROBLEM
            assert field in [error["field"] for error in response.json()["errors"]], (
                extra,
                response.json(),
            )
        projects = (await svc.client.get("/api/projects")).json()
        labels = (await svc.client.get("/api/labels")).json()
    assert projects["count"] == 0
    assert labels["count"] == 0


async def test_labels_change_through_project_patch_and_the_labels_endpoint(
    open_service: OpenService,
) -> None:
    async with open_service("annotations") as svc:
        project = (
            await svc.client.post("/api/projects", json={"name": "p", "labels": [car(), body()]})
        ).json()
        pid = project["id"]
        car_label, body_label = (
            await svc.client.get("/api/labels", params={"project_id": pid})
        ).json()["results"]
        speed = next(a for a in car_label["attributes"] if a["name"] == "speed")

        patched = await svc.client.patch(
            f"/api/projects/{pid}",
            json={
                "labels": [
                    {"id": car_label["id"], "name": "vehicle",
                     "attributes": [{"id": speed["id"], "name": "speed", "mutable": True,
                                     "input_type": "number", "values": ["0;200;10"]},
                                    {"name": "note", "input_type": "text", "deleted": True}]},
                    {"name": "tree", "type": "polygon"},
                ]
            },
        )  # fmt: skip
        assert patched.status_code == 200, patched.text
        labels = (await svc.client.get("/api/labels", params={"project_id": pid})).json()
        assert [label["name"] for label in labels["results"]] == ["vehicle", "body", "tree"]
        vehicle = labels["results"][0]
        assert "note" not in {a["name"] for a in vehicle["attributes"]}
        new_speed = next(a for a in vehicle["attributes"] if a["name"] == "speed")
        assert (new_speed["id"], new_speed["values"]) == (speed["id"], ["0", "200", "10"])

        duplicate = await svc.client.patch(
            f"/api/projects/{pid}", json={"name": "renamed", "labels": [{"name": "tree"}]}
        )
        assert duplicate.status_code == 422
        assert duplicate.json()["errors"][0]["field"] == "body.labels[0].name"
        assert (await svc.client.get(f"/api/projects/{pid}")).json()["name"] == "p"

        head = body_label["sublabels"][0]
        renamed = await svc.client.patch(f"/api/labels/{head['id']}", json={"name": "skull"})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["has_parent"] is True
        clash = await svc.client.patch(f"/api/labels/{head['id']}", json={"name": "tail"})
        assert clash.status_code == 422
        assert clash.json()["errors"][0]["field"] == "body.name"
        bad_attr = await svc.client.patch(
            f"/api/labels/{car_label['id']}",
            json={"attributes": [{"name": "k", "input_type": "select", "values": []}]},
        )
        assert bad_attr.json()["errors"][0]["field"] == "body.attributes[0].values"
        extended = await svc.client.patch(
            f"/api/labels/{body_label['id']}",
            json={
                "sublabels": [{"name": "paw"}],
                "svg": body_label["svg"]
                + '<circle r="1" cx="5" cy="5" data-node-id="3" data-label-name="paw"></circle>',
            },
        )
        assert extended.status_code == 200, extended.text
        paw = extended.json()["sublabels"][-1]
        assert paw["name"] == "paw"
        assert f'data-label-id="{paw["id"]}"' in extended.json()["svg"]
        assert (await svc.client.delete(f"/api/labels/{paw['id']}")).status_code == 409

        deleted = await svc.client.patch(
            f"/api/projects/{pid}", json={"labels": [{"id": vehicle["id"], "deleted": True}]}
        )
        assert deleted.status_code == 200
        assert (await svc.client.delete(f"/api/labels/{body_label['id']}")).status_code == 204
        names = [
            label["name"]
            for label in (await svc.client.get("/api/labels", params={"project_id": pid})).json()[
                "results"
            ]
        ]
    assert names == ["tree"]


async def test_two_labels_can_swap_names_in_one_request(open_service: OpenService) -> None:
    """Names are unique per project, checked at commit, so a swap in one request is fine."""
    async with open_service("annotations") as svc:
        labels = [{"name": "cat", "type": "rectangle"}, {"name": "dog", "type": "rectangle"}]
        project = (
            await svc.client.post("/api/projects", json={"name": "p", "labels": labels})
        ).json()
        listed = (await svc.client.get("/api/labels", params={"project_id": project["id"]})).json()
        ids = {label["name"]: label["id"] for label in listed["results"]}
        swapped = await svc.client.patch(
            f"/api/projects/{project['id']}",
            json={"labels": [{"id": ids["cat"], "name": "dog"}, {"id": ids["dog"], "name": "cat"}]},
        )
        assert swapped.status_code == 200, swapped.text
        after = (await svc.client.get("/api/labels", params={"project_id": project["id"]})).json()
        assert {label["id"]: label["name"] for label in after["results"]} == {
            ids["cat"]: "dog",
            ids["dog"]: "cat",
        }
        clash = await svc.client.patch(
            f"/api/projects/{project['id']}", json={"labels": [{"id": ids["cat"], "name": "cat"}]}
        )
        assert clash.status_code == 422
        assert clash.headers["content-type"] == "application/problem+json"
