"""Who may call the annotations service: tokens, users/self, and problem+json errors."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tessera.annotations import __version__
from tessera.devstack.testing import OpenService
from tessera.platform.auth import access_tokens

PROBLEM = "application/problem+json"


async def test_about_answers_an_authenticated_caller(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        response = await svc.client.get("/api/server/about")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Tessera"
    assert body["version"] == "2.80.0"
    assert body["tessera_version"] == __version__
    assert {"name", "description", "version", "logo_url", "subtitle"} <= set(body)


async def test_about_reports_the_configured_cvat_api_version(open_service: OpenService) -> None:
    async with open_service("annotations", cvat_api_version="2.81.0") as svc:
        response = await svc.client.get("/api/server/about")
    assert response.json()["version"] == "2.81.0"


async def test_about_is_public_as_cvat_clients_read_it_before_logging_in(
    open_service: OpenService,
) -> None:
    async with open_service("annotations") as svc:
        for path in ("/api/server/about", "/api/server/about/"):
            response = await svc.anonymous.get(path)
            assert response.status_code == 200, path
            assert response.json()["version"] == "2.80.0"
        refused = await svc.anonymous.post("/api/server/about")
        assert refused.status_code == 405


async def test_every_non_health_path_needs_a_token(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        for path in (
            "/api/server/annotation/formats",
            "/api/server/about/../../users/self",
            "/api/users/self",
            "/api/users/self/",
            "/api/auth/api_tokens",
            "/api/no-such-thing",
        ):
            response = await svc.anonymous.get(path)
            assert response.status_code == 401, path
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["status"] == 401
        for header in ("Bearer tsr_not-a-real-token", "Basic YWRtaW46YWRtaW4=", "Bearer "):
            response = await svc.anonymous.get("/api/users/self", headers={"Authorization": header})
            assert response.status_code == 401, header
        assert (await svc.anonymous.get("/healthz")).status_code == 200


async def test_users_self_is_the_token_owner(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        response = await svc.client.get("/api/users/self")
    assert response.status_code == 200
    me = response.json()
    assert me["username"] == "admin"
    assert me["is_superuser"] is True
    assert me["groups"] == ["admin"]


async def test_token_lifecycle_create_use_list_update_revoke(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        created = await svc.client.post("/api/auth/api_tokens", json={"name": "ci"})
        assert created.status_code == 201
        token = created.json()
        assert token["value"].startswith("tsr_")
        auth = {"Authorization": f"Bearer {token['value']}"}

        me = await svc.anonymous.get("/api/users/self", headers=auth)
        assert me.status_code == 200
        assert me.json()["username"] == "admin"
        current = await svc.anonymous.get("/api/auth/api_tokens/self", headers=auth)
        assert current.json()["id"] == token["id"]
        assert current.json()["value"] is None
        assert current.json()["last_used_date"] is not None

        listed = (await svc.client.get("/api/auth/api_tokens", params={"page_size": 1})).json()
        assert listed["count"] == 2  # the bootstrap token and this one
        assert [t["id"] for t in listed["results"]] == [token["id"]]
        assert listed["next"] is not None
        assert all(t["value"] is None for t in listed["results"])

        renamed = await svc.client.patch(
            f"/api/auth/api_tokens/{token['id']}", json={"name": "renamed"}
        )
        assert renamed.json()["name"] == "renamed"

        assert (await svc.client.delete(f"/api/auth/api_tokens/{token['id']}")).status_code == 204
        assert (await svc.anonymous.get("/api/users/self", headers=auth)).status_code == 401
        assert (await svc.client.get(f"/api/auth/api_tokens/{token['id']}")).status_code == 404


async def test_read_only_token_cannot_write(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        value = (
            await svc.client.post("/api/auth/api_tokens", json={"name": "ro", "read_only": True})
        ).json()["value"]
        auth = {"Authorization": f"Bearer {value}"}
        assert (await svc.anonymous.get("/api/auth/api_tokens", headers=auth)).status_code == 200
        refused = await svc.anonymous.post("/api/auth/api_tokens", json={"name": "x"}, headers=auth)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM


async def test_expired_token_stops_working(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        soon = datetime.now(UTC) + timedelta(hours=1)
        token = (
            await svc.client.post(
                "/api/auth/api_tokens", json={"name": "t", "expiry_date": soon.isoformat()}
            )
        ).json()
        async with svc.platform.database.transaction() as session:
            await session.execute(
                sa.update(access_tokens)
                .where(access_tokens.c.id == token["id"])
                .values(expiry_date=sa.func.now() - timedelta(seconds=1))
            )
        response = await svc.anonymous.get(
            "/api/users/self", headers={"Authorization": f"Bearer {token['value']}"}
        )
    assert response.status_code == 401


async def test_bad_bodies_name_the_field(open_service: OpenService) -> None:
    async with open_service("annotations") as svc:
        malformed = await svc.client.post(
            "/api/auth/api_tokens",
            content=b'{"name": "x",',
            headers={"Content-Type": "application/json"},
        )
        past = await svc.client.post(
            "/api/auth/api_tokens", json={"name": "x", "expiry_date": "2001-01-01T00:00:00Z"}
        )
        empty = await svc.client.post("/api/auth/api_tokens", json={"name": ""})
        wrong_type = await svc.client.post(
            "/api/auth/api_tokens", json={"name": "x", "read_only": "perhaps"}
        )
        listed = (await svc.client.get("/api/auth/api_tokens")).json()
    for response in (malformed, past, empty, wrong_type):
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
    assert malformed.json()["errors"][0]["field"].startswith("body")
    assert "malformed JSON" in malformed.json()["errors"][0]["message"]
    assert past.json()["errors"] == [
        {"field": "body.expiry_date", "message": "Value error, must be in the future"}
    ]
    assert empty.json()["errors"][0]["field"] == "body.name"
    assert wrong_type.json()["errors"][0]["field"] == "body.read_only"
    assert "body.read_only" in wrong_type.json()["detail"]
    assert listed["count"] == 1  # nothing was created by the refused requests
