"""`/api/users` and `/api/users/{id}` as CVAT serves them: who lists and sees whom
(administrators everyone, others their organization's members or only themselves),
whole users for administrators and `BasicUser`s for others, CVAT's list parameters,
changing and deleting users, and cvat-sdk's `client.users` against a real socket."""

import asyncio
import json
from typing import Any

import httpx
import pytest
import typer
from cvat_sdk import make_client  # type: ignore[import-untyped]

from tessera.annotations.app import create_app
from tessera.client import Client, User
from tessera.client.cli import _user_id
from tessera.client.models import BasicUser
from tessera.devstack.testing import (
    ADMIN_TOKEN,
    Enrol,
    OpenService,
    Person,
    serve_in_thread,
    settings_for,
)

PROBLEM = "application/problem+json"
BASIC = {"url", "id", "username", "first_name", "last_name"}
WHOLE = BASIC | {
    "email", "groups", "is_staff", "is_superuser", "is_active", "last_login", "date_joined",
}  # fmt: skip
LAB = {"X-Organization": "lab"}


async def _names(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> list[str]:
    """The usernames of one page of `/api/users` with `params`."""
    if isinstance(params.get("filter"), dict):
        params["filter"] = json.dumps(params["filter"])
    response = await client.get("/api/users", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [user["username"] for user in response.json()["results"]]


async def _refused(client: httpx.AsyncClient, parameter: str, **params: Any) -> None:
    """`/api/users` with `params` is 400 problem+json naming `query.<parameter>`."""
    response = await client.get("/api/users", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [error["field"] for error in response.json()["errors"]] == [f"query.{parameter}"]


async def _lab(owner: Person, *members: Person, pending: Person | None = None) -> int:
    """Organization `lab` owned by `owner`, with `members` in it and `pending` invited."""
    created = await owner.client.post(
        "/api/organizations", json={"slug": "lab", "contact": {"email": "lab@example.com"}}
    )
    assert created.status_code == 201, created.text
    for person in (*members, pending):
        if person is None:
            continue
        invited = await owner.client.post(
            "/api/invitations",
            json={"role": "worker", "email": f"{person.username}@example.com"},
            headers=LAB,
        )
        assert invited.status_code == 201, invited.text
        if person is not pending:
            key = invited.json()["key"]
            accepted = await person.client.post(f"/api/invitations/{key}/accept")
            assert accepted.status_code == 200, accepted.text
    organization_id: int = created.json()["id"]
    return organization_id


async def test_an_admin_lists_whole_users_and_others_only_themselves(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        alice = await enrol(svc, "alice")
        await enrol(svc, "bob")
        listed = await svc.client.get("/api/users")
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["count"] == 3
        assert [u["username"] for u in body["results"]] == ["bob", "alice", "admin"]
        assert all(set(user) == WHOLE for user in body["results"])
        admin = body["results"][2]
        assert (admin["groups"], admin["is_superuser"]) == (["admin"], True)
        assert body["results"][1]["email"] == "alice@example.com"
        assert body["results"][1]["groups"] == ["user"]
        assert body["results"][1]["url"].endswith(f"/api/users/{alice.id}")

        mine = (await alice.client.get("/api/users")).json()
        assert mine["count"] == 1
        assert [set(user) for user in mine["results"]] == [BASIC]
        assert mine["results"][0]["username"] == "alice"

        for path in ("/api/users", f"/api/users/{alice.id}"):
            refused = await svc.anonymous.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["content-type"] == PROBLEM


async def test_the_list_takes_cvats_parameters(open_service: OpenService, enrol: Enrol) -> None:
    async with open_service("annotations") as svc:
        people = {name: await enrol(svc, name) for name in ("alice", "bob", "carol", "dave")}
        names = {"alice": ("Alice", "Archer"), "bob": ("Bob", "Baker"), "carol": ("Carol", "Baker")}
        for name, (first, last) in names.items():
            changed = await svc.client.patch(
                f"/api/users/{people[name].id}", json={"first_name": first, "last_name": last}
            )
            assert changed.status_code == 200, changed.text
        off = await svc.client.patch(f"/api/users/{people['dave'].id}", json={"is_active": False})
        assert off.json()["is_active"] is False

        client = svc.client
        assert await _names(client) == ["dave", "carol", "bob", "alice", "admin"]
        assert await _names(client, search="baker") == ["carol", "bob"]
        assert await _names(client, search="ca bak") == ["carol"]
        assert await _names(client, search="ARCH") == ["alice"]
        assert await _names(client, username="bob") == ["bob"]
        assert await _names(client, username="bo") == []
        assert await _names(client, last_name="Baker", first_name="Bob") == ["bob"]
        assert await _names(client, is_active="false") == ["dave"]
        assert await _names(client, sort="username") == ["admin", "alice", "bob", "carol", "dave"]
        assert await _names(client, sort="last_name,-username") == [
            "dave", "admin", "alice", "carol", "bob",
        ]  # fmt: skip
        admin_id = (await client.get("/api/users/self")).json()["id"]
        rule = {
            "or": [
                {"in": [{"var": "username"}, ["alice", "dave"]]},
                {"==": [{"var": "id"}, admin_id]},
            ]
        }
        assert await _names(client, filter=rule, sort="id") == ["admin", "alice", "dave"]
        active_bakers = {
            "and": [{"==": [{"var": "last_name"}, "Baker"]}, {"==": [{"var": "is_active"}, True]}]
        }
        assert await _names(client, filter=active_bakers) == ["carol", "bob"]

        pages = []
        response = await client.get("/api/users", params={"page_size": 2, "sort": "username"})
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["count"] == 5
            pages.append([user["username"] for user in page["results"]])
            if page["next"] is None:
                break
            response = await client.get(page["next"])
        assert pages == [["admin", "alice"], ["bob", "carol"], ["dave"]]
        everything = (await client.get("/api/users", params={"page_size": "all"})).json()
        assert (everything["count"], len(everything["results"]), everything["next"]) == (5, 5, None)
        assert (await client.get("/api/users", params={"page": 9})).status_code == 404

        await _refused(client, "sort", sort="email")
        await _refused(client, "filter", filter="{not json")
        await _refused(client, "filter", filter='{"==":[{"var":"email"},"x"]}')
        await _refused(client, "is_active", is_active="perhaps")
        await _refused(client, "filter", filter='{"==":[{"var":"id"},"one"]}')


async def test_an_organization_context_lists_its_members(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        alice, bob, carol, eve = [await enrol(svc, n) for n in ("alice", "bob", "carol", "eve")]
        lab_id = await _lab(alice, bob, pending=carol)

        assert await _names(alice.client, LAB) == ["bob", "alice"]
        assert await _names(bob.client, org="lab") == ["bob", "alice"]
        assert await _names(bob.client, org_id=lab_id, search="ali") == ["alice"]
        assert await _names(svc.client, LAB) == ["bob", "alice"]  # the admin, in the lab
        assert await _names(alice.client) == ["alice"]  # her personal workspace
        assert await _names(alice.client, {"X-Organization": ""}) == ["alice"]
        listed = (await bob.client.get("/api/users", headers=LAB)).json()["results"]
        assert [set(user) for user in listed] == [BASIC, BASIC]
        outsider = await eve.client.get("/api/users", headers=LAB)
        assert outsider.status_code == 404
        assert outsider.headers["content-type"] == PROBLEM
        assert (await carol.client.get("/api/users", headers=LAB)).status_code == 404  # pending


async def test_a_user_is_seen_by_admins_themselves_and_fellow_members(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        alice, bob, carol = [await enrol(svc, n) for n in ("alice", "bob", "carol")]
        await _lab(alice, bob, pending=carol)

        own = await alice.client.get(f"/api/users/{alice.id}")
        assert own.status_code == 200
        assert set(own.json()) == WHOLE
        assert own.json() == {
            **(await alice.client.get("/api/users/self")).json(),
            "last_login": own.json()["last_login"],
        }
        fellow = await alice.client.get(f"/api/users/{bob.id}", headers=LAB)
        assert fellow.status_code == 200
        assert fellow.json() == {
            "url": f"http://testserver/api/users/{bob.id}",
            "id": bob.id,
            "username": "bob",
            "first_name": "",
            "last_name": "",
        }
        by_admin = await svc.client.get(f"/api/users/{bob.id}")
        assert set(by_admin.json()) == WHOLE
        assert by_admin.json()["email"] == "bob@example.com"

        for client, user, headers in (
            (alice.client, bob, None),  # not in her personal workspace
            (alice.client, carol, LAB),  # invited, not a member yet
            (carol.client, alice, None),
            (svc.client, Person(999_999, "nobody", "", svc.client), None),
        ):
            hidden = await client.get(f"/api/users/{user.id}", headers=headers)
            assert hidden.status_code == 404, (user.username, hidden.text)
            assert hidden.headers["content-type"] == PROBLEM
        assert (await svc.client.get("/api/users/", params={"sort": "id"})).status_code == 200


async def test_users_change_their_names_and_admins_change_and_delete_users(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        alice, bob = [await enrol(svc, n) for n in ("alice", "bob")]
        await _lab(alice, bob)

        renamed = await alice.client.patch(f"/api/users/{alice.id}", json={"first_name": " Al "})
        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["first_name"], set(renamed.json())) == ("Al", WHOLE)
        for body in ({"email": "a@b.c"}, {"is_superuser": True}, {"username": "queen"}):
            refused = await alice.client.patch(f"/api/users/{alice.id}", json=body)
            assert refused.status_code == 403, body
            assert refused.headers["content-type"] == PROBLEM
        other = await alice.client.patch(
            f"/api/users/{bob.id}", json={"first_name": "B"}, headers=LAB
        )
        assert other.status_code == 403
        hidden = await alice.client.patch(f"/api/users/{bob.id}", json={"first_name": "B"})
        assert hidden.status_code == 404
        invalid = await svc.client.patch(f"/api/users/{bob.id}", json={"username": "b o b"})
        assert invalid.status_code == 422
        assert invalid.json()["errors"][0]["field"] == "body.username"
        taken = await svc.client.patch(f"/api/users/{bob.id}", json={"username": "alice"})
        assert taken.status_code == 422
        assert taken.json()["errors"] == [
            {"field": "body.username", "message": "the username 'alice' is taken"}
        ]
        made_admin = await svc.client.patch(
            f"/api/users/{bob.id}", json={"username": "robert", "is_superuser": True}
        )
        assert made_admin.status_code == 200
        assert (made_admin.json()["username"], made_admin.json()["groups"]) == ("robert", ["admin"])
        assert (await bob.client.get("/api/users")).json()["count"] == 3  # bob is an admin now
        me = f"/api/users/{(await svc.client.get('/api/users/self')).json()['id']}"
        for body in ({"is_superuser": False}, {"is_active": False}):
            assert (await svc.client.patch(me, json=body)).status_code == 409

        assert (await alice.client.delete(f"/api/users/{alice.id}")).status_code == 403
        assert (await svc.client.delete(me)).status_code == 409
        assert (await svc.client.delete(f"/api/users/{alice.id}")).status_code == 204
        assert (await alice.client.get("/api/users/self")).status_code == 401
        assert (await svc.client.get(f"/api/users/{alice.id}")).status_code == 404
        assert (await svc.client.delete(f"/api/users/{alice.id}")).status_code == 404
        assert await _names(svc.client, LAB) == ["robert"]
        lab = (await svc.client.get("/api/organizations")).json()["results"][0]
        assert lab["owner"] is None


async def test_cvat_sdk_and_tessera_client_list_and_read_users(
    open_service: OpenService, enrol: Enrol, service_settings: dict[str, Any]
) -> None:
    async with open_service("annotations") as svc:
        alice, bob = [await enrol(svc, n) for n in ("alice", "bob")]
        await _lab(alice, bob)
    app = create_app(settings_for("annotations", **service_settings))

    def sdk_calls(url: str) -> None:
        with make_client(url, access_token=ADMIN_TOKEN) as admin:
            everyone = admin.users.list()
            assert [user.username for user in everyone] == ["bob", "alice", "admin"]
            assert everyone[1].email == "alice@example.com"
            assert [user.username for user in admin.users.list(search="ali")] == ["alice"]
            found = admin.users.retrieve(alice.id)
            assert (found.username, found.is_superuser) == ("alice", False)
            assert admin.users.retrieve_current_user().username == "admin"
        with make_client(url, access_token=alice.token) as client:
            mine = client.users.list()
            assert [(user.id, user.username) for user in mine] == [(alice.id, "alice")]
            client.organization_slug = "lab"
            assert [user.username for user in client.users.list()] == ["bob", "alice"]

    def tessera_calls(url: str) -> None:
        with Client(url, ADMIN_TOKEN) as admin:
            listed = list(admin.list_users(page_size=1))
            assert [user.username for user in listed] == ["bob", "alice", "admin"]
            assert (listed[1].model_extra or {})["email"] == "alice@example.com"
            assert [u.id for u in admin.list_users(username="alice")] == [alice.id]
            whole = admin.get_user(alice.id)
            assert isinstance(whole, User)
            assert (whole.email, whole.is_superuser) == ("alice@example.com", False)
            assert _user_id(admin, "bob") == bob.id
            assert _user_id(admin, "me") == admin.me().id
            assert (_user_id(admin, "none"), _user_id(admin, "7")) == (None, 7)
            for unknown in ("nobody", "bo", "  "):
                with pytest.raises(typer.BadParameter) as refused:
                    _user_id(admin, unknown)
                assert refused.value.param_hint == "--user"
        with Client(url, alice.token) as client:
            assert isinstance(client.get_user(alice.id), User)
            with pytest.raises(typer.BadParameter, match="no user named 'bob'"):
                _user_id(client, "bob")  # not in her personal workspace
        with Client(url, alice.token, organization="lab") as client:
            assert type(client.get_user(bob.id)) is BasicUser
            assert _user_id(client, "bob") == bob.id
            assert [u.username for u in client.list_users(search="b")] == ["bob"]

    with serve_in_thread(app) as url:
        await asyncio.to_thread(sdk_calls, url)
        await asyncio.to_thread(tessera_calls, url)
