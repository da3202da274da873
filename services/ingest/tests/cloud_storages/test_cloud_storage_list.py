"""CVAT's list parameters on `/api/cloudstorages`: simple filters, `search`, `sort`, JSON
Logic `filter`, paging, and 400 for unknown fields."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tessera.ingest.testing import Fleet

Bucket = Any  # conftest.Bucket
PATH = "/api/cloudstorages"


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[int]:
    if isinstance(params.get("filter"), dict):
        params["filter"] = json.dumps(params["filter"])
    response = await client.get(PATH, params=params)
    assert response.status_code == 200, response.text
    return [storage["id"] for storage in response.json()["results"]]


async def _refused(client: httpx.AsyncClient, parameter: str, **params: Any) -> None:
    response = await client.get(PATH, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [f"query.{parameter}"]


async def test_the_storage_list_takes_cvats_list_parameters(
    fleet: Fleet, customer_bucket: Bucket, enrol: Any
) -> None:
    other = f"other-{uuid.uuid4().hex[:12]}"
    customer_bucket.client.create_bucket(Bucket=other)
    bob = await enrol(fleet.ingest, "bob")
    client = fleet.ingest.client

    async def storage(by: httpx.AsyncClient, **fields: Any) -> int:
        response = await by.post(PATH, json=customer_bucket.storage_body(**fields))
        assert response.status_code == 201, response.text
        storage_id: int = response.json()["id"]
        return storage_id

    cars = await storage(client, display_name="cars", description="street frames")
    bikes = await storage(client, display_name="bikes", description="park frames", resource=other)
    archive = await storage(bob.client, display_name="cars archive", description="old")

    # the administrator sees every storage; the newest first
    assert await _ids(client) == [archive, bikes, cars]
    assert await _ids(client, name="cars") == [cars]
    assert await _ids(client, resource=other) == [bikes]
    assert await _ids(client, owner="bob") == [archive]
    assert await _ids(client, owner="bob", resource=other) == []
    assert await _ids(client, provider_type="AWS_S3_BUCKET") == [archive, bikes, cars]
    assert await _ids(client, credentials_type="ANONYMOUS_ACCESS") == []
    assert await _ids(client, search="CARS") == [archive, cars]
    assert await _ids(client, search="frames park") == [bikes]
    assert await _ids(client, search="bob") == [archive]
    assert await _ids(client, sort="name") == [bikes, cars, archive]
    assert await _ids(client, sort="-name") == [archive, cars, bikes]
    # admin's (other-... before customer-...), then bob's
    assert await _ids(client, sort="owner,-resource") == [bikes, cars, archive]
    rule = {
        "and": [
            {"==": [{"var": "resource"}, customer_bucket.name]},
            {"!=": [{"var": "owner"}, "bob"]},
        ]
    }
    assert await _ids(client, filter=rule) == [cars]
    assert await _ids(client, filter={"in": ["frames", {"var": "description"}]}) == [bikes, cars]

    first = (await client.get(PATH, params={"page_size": 2, "sort": "id"})).json()
    assert (first["count"], [s["id"] for s in first["results"]]) == (3, [cars, bikes])
    second = (await client.get(first["next"])).json()
    assert ([s["id"] for s in second["results"]], second["next"]) == ([archive], None)

    await _refused(client, "sort", sort="display_name")
    await _refused(client, "filter", filter='{"==":[{"var":"secret_key"},"x"]}')
    await _refused(client, "provider_type", provider_type="FTP")
    # bob sees his own storage only
    assert await _ids(bob.client, search="cars") == [archive]
