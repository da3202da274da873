"""The request session commits on success and rolls back on error; migrations are idempotent."""

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter

from tessera.annotations import migrations
from tessera.annotations.bootstrap import ensure_bootstrap_admin
from tessera.devstack.testing import OpenService, run_app, settings_for
from tessera.platform.db import DbSession, migrate
from tessera.platform.errors import Problem
from tessera.platform.service import ServiceSpec, create_service_app

router = APIRouter(prefix="/api/probe")


@router.post("/ok")
async def write_then_succeed(session: DbSession) -> dict[str, str]:
    await session.execute(
        sa.text("INSERT INTO annotations.inbox (consumer, msg_id) VALUES ('probe', 'ok')")
    )
    return {"status": "written"}


@router.post("/fail")
async def write_then_fail(session: DbSession) -> dict[str, str]:
    await session.execute(
        sa.text("INSERT INTO annotations.inbox (consumer, msg_id) VALUES ('probe', 'fail')")
    )
    raise Problem(409, "refused after writing")


@router.post("/commit-fails")
async def write_a_duplicate(session: DbSession) -> dict[str, str]:
    await session.execute(
        sa.text("CREATE TEMP TABLE deferred (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED)")
    )
    await session.execute(
        sa.text("INSERT INTO annotations.inbox (consumer, msg_id) VALUES ('probe', 'late')")
    )
    await session.execute(sa.text("INSERT INTO deferred VALUES (1), (1)"))
    return {"status": "the commit will fail"}


async def test_request_session_commits_or_rolls_back(service_settings: dict[str, object]) -> None:
    spec = ServiceSpec(
        name="probe",
        schema="annotations",
        version="0",
        description="a service with endpoints that write and then succeed or fail",
        migrations=migrations.LOCATION,
        routers=(router,),
        on_start=(ensure_bootstrap_admin,),
    )
    settings = settings_for("annotations", **service_settings)
    async with run_app(create_service_app(spec, settings)) as svc:
        assert (await svc.client.post("/api/probe/ok")).status_code == 200
        failed = await svc.client.post("/api/probe/fail")
        assert failed.status_code == 409
        commit_failed = await svc.client.post("/api/probe/commit-fails")
        assert commit_failed.status_code == 500
        assert commit_failed.headers["content-type"] == "application/problem+json"
        async with svc.platform.database.transaction() as session:
            ids = (
                (await session.execute(sa.text("SELECT msg_id FROM annotations.inbox")))
                .scalars()
                .all()
            )
    assert ids == ["ok"]


def _scripts(location: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(location))
    return config


async def test_migrations_run_twice_without_change(
    database_url: str, open_service: OpenService
) -> None:
    await migrate(database_url, migrations.LOCATION, migrations.SCHEMA)
    await migrate(database_url, migrations.LOCATION, migrations.SCHEMA)
    async with open_service("annotations") as svc, svc.platform.database.transaction() as session:
        version = await session.scalar(
            sa.text("SELECT version_num FROM annotations.alembic_version")
        )
    head = ScriptDirectory.from_config(_scripts(migrations.LOCATION)).get_current_head()
    assert version == head
