"""`tessera-migrate --app-role` against real PostgreSQL: the role uses the services' data,
cannot change their schemas, owns nothing, gets a rotated password at the next run, and a
service runs on it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tessera.devstack.servers import venv_binary
from tessera.devstack.testing import OpenService, Stack
from tessera.platform.db import Database
from tessera.platform.migrate import AppRoleError, ensure_app_role

# Quotes and a dollar sign, then a non-ASCII one that SASLprep changes (a no-break space
# becomes a space, the "ﬁ" ligature "fi"): the clients hash what PostgreSQL's SASLprep
# makes of it.
PASSWORD = """it's a "p@ss" $1 word"""
ROTATED = "pässwörd\u00a0ﬁ-2"
SEGMENTS = {
    "size": 10, "media_type": "image", "chunk_size": 5,
    "segments": [{"start_frame": 0, "stop_frame": 9}],
}  # fmt: skip


def _role() -> str:
    return f"app_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def empty_database(stack: Stack) -> Iterator[str]:
    """A new database with no schema migrated yet."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    stack.postgres.psql(f'CREATE DATABASE "{name}"')
    yield stack.postgres.url(name)
    stack.postgres.psql(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test's database as the migrating user."""
    url = make_url(database_url)
    connection = await _connect(database_url, str(url.username), str(url.password))
    try:
        yield connection
    finally:
        await connection.close()


async def _connect(database_url: str, role: str, password: str) -> asyncpg.Connection:
    url = make_url(database_url)
    return await asyncpg.connect(
        host=url.host, port=url.port, database=url.database, user=role, password=password,
        ssl=False,
    )  # fmt: skip


async def _tessera_migrate(
    *args: str, env: dict[str, str], password: str | None
) -> tuple[int, str]:
    environment = {**os.environ, **env}
    environment.pop("TESSERA_APP_ROLE_PASSWORD", None)
    if password is not None:
        environment["TESSERA_APP_ROLE_PASSWORD"] = password
    process = await asyncio.create_subprocess_exec(
        venv_binary("tessera-migrate"), *args, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_app_role_uses_the_data_and_cannot_change_the_schema(
    empty_database: str,
) -> None:
    role = _role()
    code, output = await _tessera_migrate(
        "--app-role", role, "tessera.annotations.migrations", "tessera.ingest.migrations",
        env={"TESSERA_DATABASE_URL": empty_database}, password=PASSWORD,
    )  # fmt: skip
    assert code == 0, output
    assert f"role {role} may use schemas annotations, iam, ingest" in output
    assert PASSWORD not in output

    app = await _connect(empty_database, role, PASSWORD)
    try:
        # Rows in and out, an identity column's sequence included.
        await app.execute(
            "INSERT INTO ingest.outbox (msg_id, subject, payload) "
            "VALUES (gen_random_uuid(), 'ingest.test', '{}')"
        )
        await app.execute("UPDATE ingest.outbox SET attempts = 1")
        assert await app.fetchval("SELECT attempts FROM ingest.outbox") == 1
        assert await app.fetchval("SELECT nextval(pg_get_serial_sequence('ingest.outbox', 'id'))")
        await app.execute("DELETE FROM ingest.outbox")
        await app.copy_records_to_table(
            "inbox", schema_name="ingest", records=[("c", "m")], columns=["consumer", "msg_id"]
        )
        assert await app.fetchval("SELECT count(*) FROM iam.users") == 0
        assert await app.fetchval("SELECT count(*) FROM annotations.alembic_version") == 1

        for statement in (
            "CREATE TABLE ingest.intruder (id int)",
            "CREATE TABLE iam.intruder (id int)",
            "ALTER TABLE ingest.outbox ADD COLUMN intruder int",
            "DROP TABLE ingest.inbox",
            "TRUNCATE ingest.inbox",
            "UPDATE ingest.alembic_version SET version_num = '0000'",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
        owned = await app.fetchval(
            "SELECT count(*) FROM pg_shdepend WHERE deptype = 'o' "
            "AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        )
        assert owned == 0
    finally:
        await app.close()


async def test_tables_of_later_migrations_are_granted_too(
    database_url: str, owner: asyncpg.Connection
) -> None:
    role = _role()
    await ensure_app_role(database_url, role, PASSWORD)
    # What a later migration does, as the migrating user.
    await owner.execute("CREATE TABLE export.later (id bigint GENERATED ALWAYS AS IDENTITY)")
    app = await _connect(database_url, role, PASSWORD)
    try:
        await app.execute("INSERT INTO export.later DEFAULT VALUES")
        assert await app.fetchval("SELECT count(*) FROM export.later") == 1
    finally:
        await app.close()


async def test_a_second_run_rotates_the_password(database_url: str) -> None:
    role = _role()
    await ensure_app_role(database_url, role, PASSWORD)
    await (await _connect(database_url, role, PASSWORD)).close()

    await ensure_app_role(database_url, role, ROTATED)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await _connect(database_url, role, PASSWORD)
    app = await _connect(database_url, role, ROTATED)
    try:
        stored = await app.fetchval("SELECT current_user")
    finally:
        await app.close()
    assert stored == role


async def test_the_password_is_stored_as_a_scram_secret(
    database_url: str, owner: asyncpg.Connection
) -> None:
    role = _role()
    await ensure_app_role(database_url, role, PASSWORD)
    secret = await owner.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
    assert secret.startswith("SCRAM-SHA-256$4096:")


async def test_a_role_that_may_do_more_is_refused(
    database_url: str, owner: asyncpg.Connection
) -> None:
    superuser, table_owner = _role(), _role()
    await owner.execute(f'CREATE ROLE "{superuser}" SUPERUSER LOGIN')
    await owner.execute(f'CREATE ROLE "{table_owner}" LOGIN')
    await owner.execute(f'CREATE TABLE public."{table_owner}" (id int)')
    await owner.execute(f'ALTER TABLE public."{table_owner}" OWNER TO "{table_owner}"')
    migrating_user = await owner.fetchval("SELECT current_user")

    for role, reason in (
        (superuser, "is a superuser"),
        (table_owner, "owns objects"),
        (migrating_user, "is the migrating user"),
    ):
        with pytest.raises(AppRoleError, match=reason):
            await ensure_app_role(database_url, role, PASSWORD)
    granted = await owner.fetchval(
        "SELECT has_schema_privilege($1, 'ingest', 'USAGE')", table_owner
    )
    assert not granted


@pytest.mark.parametrize(
    ("args", "password", "expected"),
    [
        (["--app-role", "tessera_app"], None, "TESSERA_APP_ROLE_PASSWORD"),
        (["--app-role", "tessera_app"], "", "TESSERA_APP_ROLE_PASSWORD"),
        (["--app-role", "x" * 64], PASSWORD, "a role name of 1 to 63 bytes"),
    ],
    ids=["no-password", "empty-password", "long-name"],
)
async def test_a_bad_invocation_is_a_clear_error(
    database_url: str, args: list[str], password: str | None, expected: str
) -> None:
    code, output = await _tessera_migrate(
        *args, "tessera.ingest.migrations",
        env={"TESSERA_DATABASE_URL": database_url}, password=password,
    )  # fmt: skip
    assert code == 2
    assert expected in output
    assert "Traceback" not in output


async def test_a_service_runs_on_the_app_role(database_url: str, open_service: OpenService) -> None:
    """Annotations on the app role: its start (the bootstrap admin in iam), a task, jobs,
    annotations written with COPY and ids from nextval, its outbox relay."""
    role = _role()
    await ensure_app_role(database_url, role, ROTATED)
    app_url = make_url(database_url).set(username=role, password=ROTATED)
    async with open_service(
        "annotations", database_url=app_url.render_as_string(hide_password=False)
    ) as svc:
        task = await svc.client.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]})
        assert task.status_code == 201, task.text
        task_id = task.json()["id"]
        made = await svc.client.post(f"/api/internal/tasks/{task_id}/segments", json=SEGMENTS)
        assert made.status_code == 201, made.text
        labels = await svc.client.get("/api/labels", params={"task_id": task_id})
        label_id = labels.json()["results"][0]["id"]
        shape = {
            "type": "rectangle", "frame": 0, "label_id": label_id, "points": [1, 2, 3, 4],
            "attributes": [],
        }  # fmt: skip
        url = f"/api/tasks/{task_id}/annotations"
        put = await svc.client.put(url, json={"version": 0, "shapes": [shape]})
        assert put.status_code == 200, put.text
        got = await svc.client.get(url)
        assert [s["points"] for s in got.json()["shapes"]] == [[1, 2, 3, 4]]
        deadline = asyncio.get_running_loop().time() + 20
        while await _unpublished(svc.platform.database) > 0:
            assert asyncio.get_running_loop().time() < deadline, "the outbox relay is stuck"
            await asyncio.sleep(0.1)
        async with svc.platform.database.transaction() as session:
            user = await session.scalar(sa.text("SELECT current_user"))
        assert user == role


async def _unpublished(database: Database) -> int:
    async with database.transaction() as session:
        count = await session.scalar(
            sa.text("SELECT count(*) FROM annotations.outbox WHERE published_at IS NULL")
        )
    return int(count or 0)
