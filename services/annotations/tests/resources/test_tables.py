"""`tables.py` describes the schema that the migrations make."""

from typing import Any

import sqlalchemy as sa

from tessera.annotations.tables import SCHEMA, metadata
from tessera.devstack.testing import OpenService

DECLARED = "declared_tables"


def _columns(connection: sa.Connection, schema: str) -> dict[str, dict[str, tuple[str, bool]]]:
    inspector = sa.inspect(connection)
    return {
        table.name: {
            column["name"]: (
                column["type"].compile(dialect=connection.dialect),
                column["nullable"],
            )
            for column in inspector.get_columns(table.name, schema=schema)
        }
        for table in metadata.sorted_tables
    }


async def test_tables_match_the_migrated_schema(open_service: OpenService) -> None:
    """Create tables.py in a scratch schema and compare it with the migrated one, reflected
    the same way: column names, types and nullability."""
    async with open_service("annotations") as svc:
        engine = svc.platform.database.engine
        async with engine.begin() as connection:
            await connection.execute(sa.text(f'CREATE SCHEMA "{DECLARED}"'))
            scratch = await connection.execution_options(schema_translate_map={SCHEMA: DECLARED})
            await scratch.run_sync(metadata.create_all)

            def both(sync: sa.Connection) -> tuple[Any, Any]:
                return _columns(sync, SCHEMA), _columns(sync, DECLARED)

            migrated, declared = await connection.run_sync(both)
            await connection.execute(sa.text(f'DROP SCHEMA "{DECLARED}" CASCADE'))
    assert migrated["tasks"]["image_quality"] == ("INTEGER", False)
    assert migrated["jobs"]["frames"] == ("INTEGER[]", True)
    assert declared == migrated
