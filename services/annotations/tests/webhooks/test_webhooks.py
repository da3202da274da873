"""Webhooks: CRUD with field-naming validation, signed deliveries, retries, ping, redelivery."""

import asyncio
import hashlib
import hmac
import json
from typing import Any

import httpx
import sqlalchemy as sa

from tessera.annotations.tables import memberships
from tessera.devstack.servers import free_port
from tessera.devstack.testing import OpenService
from tessera.platform.auth import actor_scope, ensure_token, ensure_user
from tessera.platform.contracts.export import EXPORT_FINISHED

from .conftest import Receiver

PROBLEM = "application/problem+json"
SECRET = "s3cret"
WES_TOKEN = "tsr_wes-webhook-token-0123456789abcdefghij"


def _fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    return [error["field"] for error in response.json()["errors"]]


def _signed(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def _poll(client: httpx.AsyncClient, url: str, done: Any, timeout: float = 20.0) -> Any:
    """GET `url` until `done(json)` holds; the last json."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = (await client.get(url)).json()
        if done(body) or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.1)


async def test_webhook_crud_and_validation(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        client = svc.client
        project = (await client.post("/api/projects", json={"name": "p"})).json()
        good = {
            "target_url": "https://example.com/hook",
            "type": "project",
            "project_id": project["id"],
            "events": ["create:task", "update:job"],
            "secret": SECRET,
        }
        assert _fields(
            await client.post("/api/webhooks", json={**good, "target_url": "ftp://example.com"})
        ) == ["body.target_url"]
        assert _fields(
            await client.post("/api/webhooks", json={**good, "target_url": "not a url"})
        ) == ["body.target_url"]
        assert _fields(
            await client.post("/api/webhooks", json={**good, "events": ["explode:task"]})
        ) == ["body.events[0]"]
        assert _fields(await client.post("/api/webhooks", json={**good, "events": []})) == [
            "body.events"
        ]
        assert _fields(
            await client.post("/api/webhooks", json={**good, "content_type": "text/xml"})
        ) == ["body.content_type"]
        assert _fields(await client.post("/api/webhooks", json={**good, "project_id": None})) == [
            "body.project_id"
        ]
        assert _fields(
            await client.post("/api/webhooks", json={**good, "project_id": project["id"] + 99})
        ) == ["body.project_id"]
        assert _fields(
            await client.post(
                "/api/webhooks", json={**good, "events": ["create:task", "update:membership"]}
            )
        ) == ["body.events[1]"]
        organization_hook = {**good, "type": "organization", "project_id": None}
        assert _fields(await client.post("/api/webhooks", json=organization_hook)) == ["body.type"]

        created = await client.post("/api/webhooks", json=good)
        assert created.status_code == 201, created.text
        hook = created.json()
        assert "secret" not in hook
        assert hook["url"] == f"http://testserver/api/webhooks/{hook['id']}"
        assert (hook["type"], hook["project_id"], hook["events"]) == (
            "project", project["id"], ["create:task", "update:job"],
        )  # fmt: skip
        assert (hook["is_active"], hook["enable_ssl"], hook["content_type"]) == (
            True, True, "application/json",
        )  # fmt: skip
        assert hook["owner"]["username"] == "admin"
        assert "last_status" not in hook, "absent before the first delivery, as in CVAT"
        assert "last_delivery_date" not in hook

        url = f"/api/webhooks/{hook['id']}"
        assert (await client.get(url)).json() == hook
        listed = (await client.get("/api/webhooks")).json()
        assert [item["id"] for item in listed["results"]] == [hook["id"]]
        assert _fields(await client.patch(url, json={"target_url": "javascript:alert(1)"})) == [
            "body.target_url"
        ]
        assert _fields(await client.patch(url, json={"events": ["delete:membership"]})) == [
            "body.events[0]"
        ]
        patched = await client.patch(url, json={"events": ["delete:task"], "is_active": False})
        assert patched.status_code == 200, patched.text
        assert (patched.json()["events"], patched.json()["is_active"]) == (["delete:task"], False)

        events = (await client.get("/api/webhooks/events", params={"type": "project"})).json()
        assert events["webhook_type"] == "project"
        assert "create:task" in [event["key"] for event in events["events"]]
        assert "update:membership" not in [event["key"] for event in events["events"]]
        everything = (await client.get("/api/webhooks/events")).json()
        assert "update:membership" in [event["key"] for event in everything["events"]]

        assert (await client.delete(url)).status_code == 204
        assert (await client.get(url)).status_code == 404
        assert (await client.get(f"{url}/deliveries")).status_code == 404
        assert (await svc.anonymous.get("/api/webhooks")).status_code == 401


async def test_deliveries_are_signed_retried_and_listed(
    open_service: OpenService, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    async with open_service("annotations", webhook_retry_base_s=0.3) as svc:
        client = svc.client
        # no labels yet: a `labels.changed` of its creation could reach the hook made next
        project = (await client.post("/api/projects", json={"name": "p"})).json()
        hook = (
            await client.post(
                "/api/webhooks",
                json={
                    "target_url": f"{receiver.url}/hook",
                    "type": "project",
                    "project_id": project["id"],
                    "events": ["create:task", "update:project"],
                    "secret": SECRET,
                },
            )
        ).json()
        dead = (
            await client.post(
                "/api/webhooks",
                json={
                    "target_url": f"http://127.0.0.1:{free_port()}/nobody",
                    "type": "project",
                    "project_id": project["id"],
                    "events": ["create:task"],
                },
            )
        ).json()
        task = await client.post("/api/tasks", json={"name": "t", "project_id": project["id"]})
        assert task.status_code == 201, task.text

        deliveries = f"/api/webhooks/{hook['id']}/deliveries"
        listed = await _poll(
            client,
            deliveries,
            lambda body: body["count"] == 1 and body["results"][0]["status_code"] == 200,
        )
        (delivery,) = listed["results"]
        assert (delivery["event"], delivery["attempt"], delivery["redelivery"]) == (
            "create:task", 2, False,
        )  # fmt: skip
        assert delivery["response"] == "answered 200"
        assert [r.path for r in receiver.received] == ["/hook", "/hook"]
        first, second = receiver.received
        assert first.body == second.body
        assert _signed(first.body, first.headers["X-Signature-256"])
        assert first.headers["Content-Type"] == "application/json"
        sent = json.loads(first.body)
        assert sent == delivery["request"]
        assert sent["event"] == "create:task"
        assert sent["webhook_id"] == hook["id"]
        assert sent["task"]["id"] == task.json()["id"]
        assert sent["task"]["project_id"] == project["id"]
        assert sent["sender"]["username"] == "admin"
        hook_now = (await client.get(f"/api/webhooks/{hook['id']}")).json()
        assert hook_now["last_status"] == 200

        # the dead receiver's delivery fails on its own, without holding up the other
        failing = await _poll(
            client,
            f"/api/webhooks/{dead['id']}/deliveries",
            lambda body: body["count"] == 1 and body["results"][0]["attempt"] >= 2,
        )
        assert failing["results"][0]["status_code"] is None
        assert failing["results"][0]["response"].startswith("ConnectError")

        # a label change of the project is `update:project`
        renamed = await client.patch(
            f"/api/projects/{project['id']}", json={"labels": [{"name": "bus"}]}
        )
        assert renamed.status_code == 200, renamed.text
        listed = await _poll(
            client,
            deliveries,
            lambda body: body["count"] == 2 and body["results"][0]["status_code"] == 200,
        )
        update = listed["results"][0]
        assert (update["event"], update["changed_fields"]) == ("update:project", "labels")
        assert update["request"]["labels"] == {"created": 1, "updated": 0, "deleted": 0}

        ping = await client.post(f"/api/webhooks/{hook['id']}/ping")
        assert ping.status_code == 200, ping.text
        assert (ping.json()["event"], ping.json()["status_code"]) == ("ping", 200)
        pinged = receiver.received[-1]
        assert json.loads(pinged.body)["event"] == "ping"
        assert json.loads(pinged.body)["webhook"]["id"] == hook["id"]
        assert _signed(pinged.body, pinged.headers["X-Signature-256"])

        again = await client.post(f"{deliveries}/{delivery['id']}/redelivery")
        assert again.status_code == 200, again.text
        listed = await _poll(
            client,
            deliveries,
            lambda body: body["count"] == 4 and body["results"][0]["status_code"] == 200,
        )
        redelivered = listed["results"][0]
        assert redelivered["redelivery"] is True
        assert redelivered["request"] == delivery["request"]
        assert json.loads(receiver.received[-1].body) == delivery["request"]
        missing = await client.post(f"{deliveries}/{delivery['id'] + 999}/redelivery")
        assert missing.status_code == 404


async def test_organization_hooks_hear_role_changes(
    open_service: OpenService, receiver: Receiver
) -> None:
    async with open_service("annotations") as svc:
        client = svc.client
        lab = {"X-Organization": "lab"}
        organization = (await client.post("/api/organizations", json={"slug": "lab"})).json()
        async with svc.platform.database.transaction() as session:
            wes = await ensure_user(session, username="wes", email="wes@x.org", password="pw")
            await ensure_token(session, owner_id=wes, name="t", token=WES_TOKEN)
            await session.execute(
                sa.insert(memberships).values(
                    user_id=wes, organization_id=organization["id"], role="worker", is_active=True
                )
            )
        hook_body = {
            "target_url": receiver.url,
            "type": "organization",
            "events": ["update:membership", "create:task"],
            "secret": SECRET,
        }
        hook = await client.post("/api/webhooks", json=hook_body, headers=lab)
        assert hook.status_code == 201, hook.text
        assert hook.json()["organization"] == organization["id"]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=svc.app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {WES_TOKEN}", **lab},
        ) as worker:
            refused = await worker.post(
                "/api/webhooks", json={**hook_body, "events": ["create:task"]}
            )
            assert refused.status_code == 403, refused.text
            assert (await worker.get(f"/api/webhooks/{hook.json()['id']}")).status_code == 404
            assert (await worker.get("/api/webhooks")).json()["count"] == 0

        membership = (
            await client.get("/api/memberships", params={"user": "wes"}, headers=lab)
        ).json()["results"][0]
        promoted = await client.patch(
            f"/api/memberships/{membership['id']}", json={"role": "supervisor"}, headers=lab
        )
        assert promoted.status_code == 200, promoted.text
        listed = await _poll(
            client,
            f"/api/webhooks/{hook.json()['id']}/deliveries?org=lab",
            lambda body: body["count"] == 1 and body["results"][0]["status_code"] == 200,
        )
    sent = json.loads(receiver.received[0].body)
    assert _signed(receiver.received[0].body, receiver.received[0].headers["X-Signature-256"])
    assert listed["results"][0]["changed_fields"] == "role"
    assert sent["event"] == "update:membership"
    assert sent["membership"] == {
        "id": membership["id"], "user": {"id": wes}, "role": "supervisor",
        "organization": organization["id"],
    }  # fmt: skip
    assert sent["before_update"] == {"role": "worker"}


async def test_a_project_hook_hears_its_tasks_exports_end(
    open_service: OpenService, receiver: Receiver
) -> None:
    async with open_service("annotations") as svc:
        client = svc.client
        admin = (await client.get("/api/users/self")).json()["id"]
        project = (await client.post("/api/projects", json={"name": "p"})).json()
        task = await client.post("/api/tasks", json={"name": "t", "project_id": project["id"]})
        other = await client.post("/api/tasks", json={"name": "o", "labels": [{"name": "car"}]})
        assert (task.status_code, other.status_code) == (201, 201), other.text
        hook = await client.post(
            "/api/webhooks",
            json={
                "target_url": f"{receiver.url}/exports",
                "type": "project",
                "project_id": project["id"],
                "events": ["finish:export"],
                "secret": SECRET,
            },
        )
        assert hook.status_code == 201, hook.text
        listed = (await client.get("/api/webhooks/events", params={"type": "project"})).json()
        described = {event["key"]: event for event in listed["events"]}
        assert described["finish:export"]["group"] == {"display_name": "export"}
        assert "export request" in described["finish:export"]["description"]

        export = {
            "rq_id": "export-export-dataset-7-0123456789ab", "status": "finished",
            "message": None, "format": "COCO 1.0", "target": "task",
            "task_id": task.json()["id"], "project_id": project["id"], "job_id": None,
            "result_url": "http://testserver/api/tasks/7/dataset/download?rq_id=x",
            "location": "local", "cloud_storage_id": None, "filename": "t.zip",
        }  # fmt: skip
        with actor_scope(admin):
            # another task's export does not reach the project's hook
            await svc.platform.bus.publish(EXPORT_FINISHED, {
                **export, "rq_id": "export-elsewhere", "task_id": other.json()["id"],
                "project_id": None, "organization_id": None,
            })  # fmt: skip
            await svc.platform.bus.publish(EXPORT_FINISHED, {**export, "organization_id": None})
        deliveries = await _poll(
            client,
            f"/api/webhooks/{hook.json()['id']}/deliveries",
            lambda body: body["count"] == 1 and body["results"][0]["status_code"] == 200,
        )
    (delivery,) = deliveries["results"]
    (received,) = receiver.received
    assert received.path == "/exports"
    assert _signed(received.body, received.headers["X-Signature-256"])
    sent = json.loads(received.body)
    assert sent == delivery["request"]
    assert sent == {
        "event": "finish:export",
        "export": {"id": export.pop("rq_id"), **export},
        "sender": {"id": admin, "username": "admin"},
        "webhook_id": hook.json()["id"],
    }
    assert delivery["event"] == "finish:export"
