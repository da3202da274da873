"""CVAT's list parameters on memberships, invitations and webhooks, through the HTTP API:
simple filters, `search`, `sort`, JSON Logic `filter`, paging, and 400 for unknown fields."""

import json
from typing import Any

import httpx

from tessera.devstack.testing import Enrol, OpenService, Person

PROBLEM = "application/problem+json"
LAB = {"X-Organization": "lab"}


async def _listed(
    client: httpx.AsyncClient,
    path: str,
    key: str,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> list[Any]:
    """The `key` of every result of one page of `path` with `params`."""
    if isinstance(params.get("filter"), dict):
        params["filter"] = json.dumps(params["filter"])
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [_pick(item, key) for item in response.json()["results"]]


def _pick(item: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        item = item[part]
    return item


async def _refused(
    client: httpx.AsyncClient,
    path: str,
    parameter: str,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> None:
    """`path` with `params` is 400 problem+json naming `query.<parameter>`."""
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [error["field"] for error in response.json()["errors"]] == [f"query.{parameter}"]


async def _pages(
    client: httpx.AsyncClient,
    path: str,
    key: str,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> list[list[Any]]:
    """Every page of `path`, following `next`."""
    response = await client.get(path, params=params, headers=headers)
    pages = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([_pick(item, key) for item in body["results"]])
        if body["next"] is None:
            return pages
        response = await client.get(body["next"], headers=headers)


async def _invite(inviter: Person, person: Person, role: str, *, accept: bool) -> str:
    invited = await inviter.client.post(
        "/api/invitations",
        json={"role": role, "email": f"{person.username}@example.com"},
        headers=LAB,
    )
    assert invited.status_code == 201, invited.text
    key: str = invited.json()["key"]
    if accept:
        accepted = await person.client.post(f"/api/invitations/{key}/accept")
        assert accepted.status_code == 200, accepted.text
    return key


async def test_memberships_and_invitations_take_cvats_list_parameters(
    open_service: OpenService, enrol: Enrol
) -> None:
    async with open_service("annotations") as svc:
        people = {name: await enrol(svc, name) for name in ("alice", "mary", "sam", "wes", "eve")}
        alice, mary, sam, wes, eve = (people[n] for n in ("alice", "mary", "sam", "wes", "eve"))
        created = await alice.client.post(
            "/api/organizations", json={"slug": "lab", "contact": {"email": "lab@example.com"}}
        )
        assert created.status_code == 201, created.text
        await _invite(alice, mary, "maintainer", accept=True)
        await _invite(alice, sam, "supervisor", accept=True)
        await _invite(alice, wes, "worker", accept=True)
        await _invite(mary, eve, "worker", accept=False)  # pending

        # memberships
        client, path, user = alice.client, "/api/memberships", "user.username"
        assert await _listed(client, path, user, LAB) == ["eve", "wes", "sam", "mary", "alice"]
        assert await _listed(client, path, user, LAB, role="worker") == ["eve", "wes"]
        assert await _listed(client, path, user, LAB, user="sam") == ["sam"]
        assert await _listed(client, path, user, LAB, role="worker", user="sam") == []
        assert await _listed(client, path, user, LAB, search="A") == ["sam", "mary", "alice"]
        assert await _listed(client, path, user, LAB, search="a m") == ["sam", "mary"]
        by_user = ["alice", "eve", "mary", "sam", "wes"]
        assert await _listed(client, path, user, LAB, sort="user") == by_user
        assert await _listed(client, path, user, LAB, sort="-user") == by_user[::-1]
        assert await _listed(client, path, user, LAB, sort="role,-user") == [
            "mary", "alice", "sam", "wes", "eve",
        ]  # fmt: skip
        rule = {
            "or": [{"==": [{"var": "role"}, "owner"]}, {"in": [{"var": "user"}, ["sam", "wes"]]}]
        }
        assert await _listed(client, path, user, LAB, filter=rule, sort="user") == [
            "alice", "sam", "wes",
        ]  # fmt: skip
        assert await _pages(client, path, user, LAB, page_size=2, sort="user") == [
            ["alice", "eve"], ["mary", "sam"], ["wes"],
        ]  # fmt: skip
        everything = (await client.get(path, params={"page_size": "all"}, headers=LAB)).json()
        assert (everything["count"], len(everything["results"]), everything["next"]) == (5, 5, None)
        assert (await client.get(path, params={"page": 2}, headers=LAB)).status_code == 404
        await _refused(client, path, "sort", LAB, sort="username")
        await _refused(client, path, "filter", LAB, filter='{"==":[{"var":"is_active"},true]}')
        await _refused(client, path, "role", LAB, role="boss")

        # invitations: the newest first by default; `accepted` and `user_id` are the
        # invited membership's
        client, path, invitee = alice.client, "/api/invitations", "user.username"
        assert await _listed(client, path, invitee, LAB) == ["eve", "wes", "sam", "mary"]
        assert await _listed(client, path, invitee, LAB, accepted="false") == ["eve"]
        assert await _listed(client, path, invitee, LAB, accepted="true") == [
            "wes", "sam", "mary",
        ]  # fmt: skip
        assert await _listed(client, path, invitee, LAB, user_id=sam.id) == ["sam"]
        assert await _listed(client, path, invitee, LAB, owner="mary") == ["eve"]
        assert await _listed(client, path, invitee, LAB, search="MAR") == ["eve"]
        assert await _listed(client, path, invitee, LAB, sort="created_date") == [
            "mary", "sam", "wes", "eve",
        ]  # fmt: skip
        assert await _listed(client, path, invitee, LAB, sort="owner,-user_id") == [
            "wes", "sam", "mary", "eve",
        ]  # fmt: skip
        accepted_after_mary: dict[str, Any] = {
            "and": [{"==": [{"var": "accepted"}, True]}, {">": [{"var": "user_id"}, mary.id]}]
        }
        assert await _listed(client, path, invitee, LAB, filter=accepted_after_mary) == [
            "wes", "sam",
        ]  # fmt: skip
        assert await _pages(client, path, invitee, LAB, page_size=3) == [
            ["eve", "wes", "sam"], ["mary"],
        ]  # fmt: skip
        await _refused(client, path, "sort", LAB, sort="role")
        await _refused(client, path, "filter", LAB, filter='{"==":[{"var":"role"},"worker"]}')
        await _refused(client, path, "accepted", LAB, accepted="maybe")
        # what eve sees: only her own invitation
        assert await _listed(eve.client, path, invitee, accepted="false") == ["eve"]


async def test_webhooks_take_cvats_list_parameters(open_service: OpenService, enrol: Enrol) -> None:
    async with open_service("annotations") as svc:
        client = svc.client
        wes = await enrol(svc, "wes")
        first = (await client.post("/api/projects", json={"name": "first"})).json()
        own = (await wes.client.post("/api/projects", json={"name": "own"})).json()
        created = await client.post(
            "/api/organizations", json={"slug": "hq", "contact": {"email": "hq@example.com"}}
        )
        assert created.status_code == 201, created.text

        async def hook(
            by: httpx.AsyncClient, headers: dict[str, str] | None = None, **fields: Any
        ) -> int:
            body = {"content_type": "application/json", "events": ["create:task"], **fields}
            response = await by.post("/api/webhooks", json=body, headers=headers)
            assert response.status_code == 201, response.text
            hook_id: int = response.json()["id"]
            return hook_id

        one = await hook(
            client, type="project", project_id=first["id"],
            target_url="https://one.example.com/hook", description="alpha builds",
        )  # fmt: skip
        two = await hook(
            wes.client, type="project", project_id=own["id"],
            target_url="https://two.example.com/hook", description="beta builds",
        )  # fmt: skip
        three = await hook(
            client, {"X-Organization": "hq"}, type="organization",
            target_url="https://three.example.com/x", description="alpha audit",
        )  # fmt: skip

        path = "/api/webhooks"
        assert await _listed(client, path, "id") == [three, two, one]
        assert await _listed(client, path, "id", type="project") == [two, one]
        assert await _listed(client, path, "id", project_id=first["id"]) == [one]
        assert await _listed(client, path, "id", owner="wes") == [two]
        assert await _listed(client, path, "id", owner="wes", type="organization") == []
        assert await _listed(client, path, "id", target_url="https://three.example.com/x") == [
            three
        ]
        assert await _listed(client, path, "id", search="alpha") == [three, one]
        assert await _listed(client, path, "id", search="WES") == [two]
        assert await _listed(client, path, "id", search="builds two.example") == [two]
        assert await _listed(client, path, "id", sort="description") == [three, one, two]
        assert await _listed(client, path, "id", sort="-description") == [two, one, three]
        assert await _listed(client, path, "id", sort="target_url") == [one, three, two]
        assert await _listed(client, path, "id", sort="type,-id") == [three, two, one]
        assert await _listed(
            client, path, "id", filter={"in": ["builds", {"var": "description"}]}
        ) == [two, one]
        assert await _listed(client, path, "id", filter={"!": [{"var": "project_id"}]}) == [three]
        assert await _pages(client, path, "id", page_size=2) == [[three, two], [one]]
        await _refused(client, path, "sort", sort="events")
        await _refused(client, path, "filter", filter='{"==":[{"var":"secret"},"x"]}')
        await _refused(client, path, "type", type="server")
        # wes sees his own webhook only
        assert await _listed(wes.client, path, "id", search="builds") == [two]
