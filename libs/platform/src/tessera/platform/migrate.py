"""`tessera-migrate`: upgrade services' schemas (the Kubernetes migration Job runs this).

    tessera-migrate [--app-role NAME] tessera.annotations.migrations tessera.ingest.migrations ...

Each argument names a migrations package exposing `SCHEMA` and `LOCATION`. The
database comes from `TESSERA_DATABASE_URL`, whose user runs the migrations and owns
what they create.

`--app-role NAME` then gives the services a login role of their own that uses the data
and cannot change the schema. NAME is created with LOGIN, or given its password again
when it exists (a rotated password takes effect at the next run), with the password in
`TESSERA_APP_ROLE_PASSWORD`; the password is sent as a SCRAM-SHA-256 secret computed
here, so it appears in no statement and no server log in the clear. On every schema
the migrating user owns (each service's, and `iam`, which the annotations migrations
create), NAME gets USAGE; SELECT, INSERT, UPDATE, DELETE on the tables (COPY FROM
needs INSERT; the services use no TRUNCATE); USAGE, SELECT, UPDATE on the sequences
(the services call nextval); EXECUTE on the functions; and the same on what later
migrations create there (ALTER DEFAULT PRIVILEGES). It may read `alembic_version` but
not write it, and creates nothing in those schemas. Advisory locks need no grant. A
role that is a superuser, a member of the migrating user, or owns anything is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import importlib
import os
import stringprep
import sys
import unicodedata
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tessera.platform.db import MIGRATION_LOCK_ID, async_url, migrate
from tessera.platform.settings import DatabaseSettings

# PostgreSQL's default (scram_iterations) and its salt length.
SCRAM_ITERATIONS = 4096
SCRAM_SALT_BYTES = 16
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer names
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT, UPDATE"
_SASLPREP_PROHIBITED = (
    stringprep.in_table_a1,  # unassigned code points: PostgreSQL prohibits them too
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


class AppRoleError(Exception):
    """The application role cannot be set up as asked."""


async def migrate_packages(database_url: str, packages: Sequence[str]) -> None:
    """Upgrade the schema of each migrations package, in order."""
    for name in packages:
        package = importlib.import_module(name)
        await migrate(database_url, package.LOCATION, package.SCHEMA)


def _saslprep(password: str) -> str:
    """SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords (`pg_saslprep`):
    an ASCII password as it is, and the password as it is where the preparation fails."""
    if password.isascii():
        return password
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in password
        if not stringprep.in_table_b1(char)
    )
    if not mapped:
        return password
    prepared = unicodedata.normalize("NFKC", mapped)
    if any(prohibited(char) for char in prepared for prohibited in _SASLPREP_PROHIBITED):
        return password
    if any(stringprep.in_table_d1(char) for char in prepared) and (
        any(stringprep.in_table_d2(char) for char in prepared)
        or not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1]))
    ):
        return password
    return prepared


def scram_sha256_secret(password: str) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL stores for `password` (RFC 5802, RFC 7677).

    `CREATE ROLE ... PASSWORD '<secret>'` stores a secret in this form as it is, exactly
    as if the server had hashed the clear password itself.
    """
    salt = os.urandom(SCRAM_SALT_BYTES)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def _owned_schemas(connection: AsyncConnection) -> list[str]:
    rows = await connection.execute(
        text(
            "SELECT nspname FROM pg_namespace WHERE nspowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user) "
            "AND nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public') "
            "ORDER BY nspname"
        )
    )
    return list(rows.scalars())


async def _check_existing_role(connection: AsyncConnection, role: str) -> bool:
    """Whether `role` exists; raises `AppRoleError` when it may do more than the app may."""
    if role == await connection.scalar(text("SELECT current_user")):
        raise AppRoleError(f"the app role {role} is the migrating user; choose another name")
    found = (
        await connection.execute(
            text(
                "SELECT r.rolsuper, pg_has_role(r.oid, current_user, 'MEMBER'), "
                "EXISTS (SELECT 1 FROM pg_shdepend d WHERE d.refclassid = 'pg_authid'::regclass "
                "AND d.refobjid = r.oid AND d.deptype = 'o') "
                "FROM pg_roles r WHERE r.rolname = :role"
            ),
            {"role": role},
        )
    ).first()
    if found is None:
        return False
    superuser, acts_as_owner, owns = found
    problems = [
        reason
        for reason, applies in (
            ("is a superuser", superuser),
            ("is a member of the migrating user", acts_as_owner),
            ("owns objects", owns),
        )
        if applies
    ]
    if problems:
        raise AppRoleError(f"the app role {role} {' and '.join(problems)}; it must not")
    return True


async def ensure_app_role(database_url: str, role: str, password: str) -> list[str]:
    """Create or update the login role `role` and grant it the services' run-time
    privileges on every schema the migrating user owns; returns those schemas.

    See the module's description for what is granted and refused.
    """
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
            quote = connection.dialect.identifier_preparer.quote_identifier
            name = quote(role)
            exists = await _check_existing_role(connection, role)
            # The secret holds base64, digits, '$' and ':' only: nothing to escape.
            secret = f"PASSWORD '{scram_sha256_secret(password)}'"
            verb = "ALTER" if exists else "CREATE"
            try:
                await connection.exec_driver_sql(
                    f"{verb} ROLE {name} WITH LOGIN NOCREATEDB NOCREATEROLE {secret}"
                )
            except DBAPIError as exc:
                # The error's text would quote the statement, secret included.
                raise AppRoleError(f"could not {verb.lower()} role {role}: {exc.orig}") from None
            schemas = await _owned_schemas(connection)
            for schema in schemas:
                target = quote(schema)
                for statement in (
                    f"GRANT USAGE ON SCHEMA {target} TO {name}",
                    f"REVOKE CREATE ON SCHEMA {target} FROM {name}",
                    f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {target} TO {name}",
                    f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA {target} TO {name}",
                    f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {target} TO {name}",
                    f"ALTER DEFAULT PRIVILEGES IN SCHEMA {target} "
                    f"GRANT {TABLE_PRIVILEGES} ON TABLES TO {name}",
                    f"ALTER DEFAULT PRIVILEGES IN SCHEMA {target} "
                    f"GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {name}",
                    f"ALTER DEFAULT PRIVILEGES IN SCHEMA {target} "
                    f"GRANT EXECUTE ON FUNCTIONS TO {name}",
                ):
                    await connection.exec_driver_sql(statement)
                if await connection.scalar(
                    text("SELECT to_regclass(:table)"), {"table": f"{target}.alembic_version"}
                ):
                    await connection.exec_driver_sql(
                        f"REVOKE INSERT, UPDATE, DELETE ON {target}.alembic_version FROM {name}"
                    )
            return schemas
    finally:
        await engine.dispose()


def _role_name(value: str) -> str:
    if not value or len(value.encode()) > MAX_IDENTIFIER_BYTES:
        raise argparse.ArgumentTypeError(f"a role name of 1 to {MAX_IDENTIFIER_BYTES} bytes")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="tessera-migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "packages", nargs="+", help="migrations packages, e.g. tessera.annotations.migrations"
    )
    parser.add_argument(
        "--app-role",
        type=_role_name,
        metavar="NAME",
        help="then create or update this login role (password: TESSERA_APP_ROLE_PASSWORD) "
        "with the services' privileges on the schemas",
    )
    args = parser.parse_args(argv)
    settings = DatabaseSettings()
    password = settings.app_role_password.get_secret_value() if settings.app_role_password else ""
    if args.app_role and not password:
        parser.error("--app-role needs the role's password in TESSERA_APP_ROLE_PASSWORD")
    database_url = settings.database_url.get_secret_value()
    asyncio.run(migrate_packages(database_url, args.packages))
    if args.app_role:
        try:
            schemas = asyncio.run(ensure_app_role(database_url, args.app_role, password))
        except AppRoleError as exc:
            sys.exit(f"tessera-migrate: {exc}")
        print(f"tessera-migrate: role {args.app_role} may use schemas {', '.join(schemas)}")
