"""CVAT's list parameters (sort, search, simple filters, JSON Logic) over real PostgreSQL."""

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from httpx import ASGITransport, AsyncClient

from tessera.platform.db import Database
from tessera.platform.errors import Problem, install_error_handlers
from tessera.platform.listing import Field, ListQuery, ListSpec, list_query, parse_list_query
from tessera.platform.pagination import Page

metadata = sa.MetaData()
items = sa.Table(
    "listing_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("size", sa.Integer),
    sa.Column("done", sa.Boolean),
    sa.Column("created", sa.DateTime(timezone=True)),
    sa.Column("owner_id", sa.Integer, nullable=True),
)
owners = sa.Table(
    "listing_owners",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.Text),
)
ROWS = [
    (1, "Cars day", "annotation", 10, False, "2026-01-01T00:00:00+00:00", 1),
    (2, "cars night", "validation", 20, True, "2026-02-01T00:00:00+00:00", 2),
    (3, "People, street", "completed", 30, True, "2026-03-01T00:00:00+00:00", 1),
    (4, "100% cats", "annotation", 40, False, "2026-04-01T00:00:00+00:00", None),
    (5, "cars_day", "annotation", 20, False, "2026-05-01T00:00:00+00:00", 2),
]
SPEC = ListSpec(
    fields={
        "id": Field(items.c.id, "int"),
        "name": Field(items.c.name),
        "status": Field(items.c.status, choices=("annotation", "validation", "completed")),
        "size": Field(items.c.size, "int"),
        "done": Field(items.c.done, "bool"),
        "created": Field(items.c.created, "datetime"),
        "owner": Field(
            sa.select(owners.c.username).where(owners.c.id == items.c.owner_id).scalar_subquery()
        ),
    },
    search=("name", "owner"),
    simple=("name", "status", "owner", "done"),
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.transaction() as session:
        await session.run_sync(lambda s: metadata.create_all(s.connection()))
        await session.execute(sa.insert(owners), [{"id": 1, "username": "alice"},
                                                  {"id": 2, "username": "bob"}])  # fmt: skip
        columns = ["id", "name", "status", "size", "done", "created", "owner_id"]
        await session.execute(
            sa.insert(items),
            [
                dict(zip(columns, row, strict=True))
                | {"created": datetime.fromisoformat(str(row[5]))}
                for row in ROWS
            ],
        )
    yield database
    await database.dispose()


async def _ids(database: Database, **query: Any) -> list[int]:
    params = {k: json.dumps(v) if k == "filter" else str(v) for k, v in query.items()}
    parsed = parse_list_query(SPEC, params)
    async with database.transaction() as session:
        statement = (
            sa.select(items.c.id)
            .where(parsed.condition)
            .order_by(*parsed.ordering)
            .offset(parsed.offset)
            .limit(parsed.limit)
        )
        return list((await session.execute(statement)).scalars())


def _parameter_of(problem: Problem) -> str:
    return str(problem.errors[0]["field"])


async def test_default_order_and_sort(database: Database) -> None:
    assert await _ids(database) == [5, 4, 3, 2, 1]
    assert await _ids(database, sort="size,-id") == [1, 5, 2, 3, 4]
    assert await _ids(database, sort=" -size , name ") == [4, 3, 2, 5, 1]
    assert await _ids(database, sort="owner") == [1, 3, 2, 5, 4]  # NULLs last, then id


async def test_search_needs_every_term_in_some_field(database: Database) -> None:
    assert await _ids(database, search="cars") == [5, 2, 1]
    assert await _ids(database, search="CARS alice") == [1]
    assert await _ids(database, search="cars,bob") == [5, 2]
    assert await _ids(database, search='"cars night"') == [2]
    assert await _ids(database, search="100%") == [4]
    assert await _ids(database, search="cars_") == [5]


async def test_simple_filters_are_exact(database: Database) -> None:
    assert await _ids(database, name="cars night") == [2]
    assert await _ids(database, name="cars") == []
    assert await _ids(database, status="annotation", owner="bob") == [5]
    assert await _ids(database, done="true") == [3, 2]
    assert await _ids(database, size="20") == [5, 4, 3, 2, 1]  # not a simple filter: ignored


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"==": [{"var": "status"}, "annotation"]}, [5, 4, 1]),
        ({"!=": [{"var": "status"}, "annotation"]}, [3, 2]),
        (
            {"and": [{"==": [{"var": "status"}, "annotation"]}, {">": [{"var": "size"}, 15]}]},
            [5, 4],
        ),
        ({"or": [{"==": [{"var": "id"}, 1]}, {"==": [{"var": "owner"}, "bob"]}]}, [5, 2, 1]),
        ({"!": {"==": [{"var": "done"}, True]}}, [5, 4, 1]),
        ({"!": [{"==": [{"var": "done"}, "false"]}]}, [3, 2]),
        ({"!!": {"<": [{"var": "size"}, 20]}}, [1]),
        ({"<=": [20, {"var": "size"}, 30]}, [5, 3, 2]),
        ({">=": [{"var": "created"}, "2026-03-01T00:00:00Z"]}, [5, 4, 3]),
        ({"<": [{"var": "created"}, "2026-02-01"]}, [1]),
        ({"in": [{"var": "owner"}, ["alice", "nobody"]]}, [3, 1]),
        ({"in": ["ars", {"var": "name"}]}, [5, 2, 1]),
        ({"in": ["Cars", {"var": "name"}]}, [1]),
        ({"var": "owner"}, [5, 3, 2, 1]),
        ({"==": [{"var": "owner"}, None]}, [4]),
    ],
)
async def test_json_logic(database: Database, rule: Any, expected: list[int]) -> None:
    assert await _ids(database, filter=rule) == expected


@pytest.mark.parametrize(
    ("query", "parameter", "words"),
    [
        ({"sort": "colour"}, "sort", "'colour' is not a field"),
        ({"sort": "name,-nope"}, "sort", "'nope'"),
        ({"filter": "{not json"}, "filter", "not JSON"),
        ({"filter": "{}"}, "filter", "empty"),
        ({"filter": '{"==": [{"var": "colour"}, 1]}'}, "filter", "'colour' is not a field"),
        ({"filter": '{"xor": [1, 2]}'}, "filter", "xor"),
        ({"filter": '{"==": [{"var": "size"}, "big"]}'}, "filter", "not a valid int"),
        ({"filter": '{"==": [{"var": "status"}, "lost"]}'}, "filter", "not one of"),
        ({"filter": '{"and": []}'}, "filter", "non-empty"),
        ({"filter": '{"in": [{"var": "id"}, 3]}'}, "filter", "must be a list"),
        ({"status": "lost"}, "status", "not one of"),
        ({"done": "maybe"}, "done", "not a valid bool"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    query: dict[str, str], parameter: str, words: str
) -> None:
    with pytest.raises(Problem) as caught:
        parse_list_query(SPEC, query)
    assert caught.value.status == 400
    assert _parameter_of(caught.value) == f"query.{parameter}"
    assert words in caught.value.detail


@pytest.mark.parametrize(
    ("page", "page_size", "offset", "limit"),
    [
        (None, None, 0, 10),
        ("2", "3", 3, 3),
        ("1", "all", 0, None),
        ("1", "0", 0, 10),
        ("1", "-4", 0, 10),
        ("1", "lots", 0, 10),
    ],
)
def test_pages_as_cvat(page: str | None, page_size: str | None, offset: int, limit: int) -> None:
    query = {k: v for k, v in {"page": page, "page_size": page_size}.items() if v is not None}
    parsed = parse_list_query(SPEC, query)
    assert (parsed.offset, parsed.limit) == (offset, limit)


@pytest.mark.parametrize("page", ["0", "-1", "x"])
def test_a_page_that_is_not_a_positive_number_is_404(page: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_list_query(SPEC, {"page": page})
    assert caught.value.status == 404


def test_a_spec_refuses_undefined_or_reserved_names() -> None:
    with pytest.raises(ValueError, match="colour"):
        ListSpec(fields={"id": Field(items.c.id, "int")}, search=("colour",))
    with pytest.raises(ValueError, match="sort"):
        ListSpec(fields={"sort": Field(items.c.name), "id": Field(items.c.id)}, simple=("sort",))


async def test_endpoint_pages_links_and_documented_parameters(database: Database) -> None:
    app = FastAPI()
    install_error_handlers(app)

    items_query = list_query(SPEC)

    @app.get("/api/items")
    async def list_items(
        request: Request, query: Annotated[ListQuery, Depends(items_query)]
    ) -> Page[int]:
        async with database.transaction() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).select_from(items).where(query.condition)
            )
            rows = await session.execute(
                sa.select(items.c.id)
                .where(query.condition)
                .order_by(*query.ordering)
                .offset(query.offset)
                .limit(query.limit)
            )
        return Page[int].build(request, query.page, int(count or 0), list(rows.scalars()))

    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://public.example:8080"
    ) as client:
        first = (await client.get("/api/items", params={"page_size": 2, "sort": "id"})).json()
        assert first["count"] == 5
        assert first["results"] == [1, 2]
        assert first["previous"] is None
        second = (await client.get(first["next"])).json()
        assert second["results"] == [3, 4]
        assert second["next"].startswith("http://public.example:8080/api/items?")
        assert "sort=id" in second["next"]
        assert "page=" not in second["previous"]
        assert (await client.get(second["previous"])).json() == first
        beyond = await client.get("/api/items", params={"page": 9})
        assert beyond.status_code == 404
        bad = await client.get("/api/items", params={"sort": "nope"})
        assert bad.status_code == 400
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["errors"][0]["field"] == "query.sort"
        filtered = await client.get(
            "/api/items", params={"filter": '{"==":[{"var":"status"},"annotation"]}'}
        )
        assert filtered.json()["results"] == [5, 4, 1]
        documented = app.openapi()["paths"]["/api/items"]["get"]["parameters"]
        assert {p["name"] for p in documented} >= {
            "page", "page_size", "sort", "search", "filter", "name", "status", "owner", "done",
        }  # fmt: skip
