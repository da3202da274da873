"""Async SQLAlchemy 2 over asyncpg: the engine, the request session, and migrations.

Each service owns one PostgreSQL schema and migrates it with its own Alembic scripts.
Migrations of all services may run at the same moment (every service migrates at start
in dev), so they take a PostgreSQL advisory lock first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from alembic import command
from alembic.config import Config
from fastapi import Depends, Request
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATION_LOCK_ID = 0x7E55E7A


def async_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


class Database:
    """One engine and session factory per service process."""

    def __init__(self, url: str, *, pool_size: int = 10, application_name: str = "tessera") -> None:
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            pool_pre_ping=True,
            connect_args={"server_settings": {"application_name": application_name}},
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def get_database(request: Request) -> Database:
    """The service's database, from the app state set by the lifespan."""
    database: Database = request.app.state.platform.database
    return database


async def _request_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    async with database.transaction() as session:
        yield session


# The session is committed when the endpoint returns and before the response is sent
# (scope="function"), so a failed commit still reaches the client as an error.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]


def _alembic_config(script_location: Path, schema: str, connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


async def migrate(url: str, script_location: Path, schema: str, revision: str = "head") -> None:
    """Upgrade `schema` to `revision` with the Alembic scripts at `script_location`."""
    await _alembic(url, script_location, schema, command.upgrade, revision)


async def downgrade(url: str, script_location: Path, schema: str, revision: str) -> None:
    """Downgrade `schema` to `revision` with the Alembic scripts at `script_location` (a
    rollback by hand, and the migrations' own tests)."""
    await _alembic(url, script_location, schema, command.downgrade, revision)


async def _alembic(
    url: str,
    script_location: Path,
    schema: str,
    step: Callable[[Config, str], None],
    revision: str,
) -> None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
            await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await connection.run_sync(
                lambda sync: step(_alembic_config(script_location, schema, sync), revision)
            )
    finally:
        await engine.dispose()


def run_migrations_online(context: Any) -> None:
    """The body of every service's Alembic `env.py`.

    The connection comes from `migrate`; the version table lives in the service's own
    schema so services never see each other's migration history.
    """
    connection: Connection = context.config.attributes["connection"]
    schema: str = context.config.attributes["schema"]
    context.configure(
        connection=connection,
        version_table_schema=schema,
        include_schemas=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()
