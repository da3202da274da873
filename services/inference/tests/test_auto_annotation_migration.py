"""Migration 0003 moves an auto-annotation request's progress into its one part, so that
a request accepted before it resumes where it stopped; the downgrade puts the progress
back and drops the requests only 0003 can hold (a project's)."""

from typing import Any

import sqlalchemy as sa

from tessera.inference import migrations
from tessera.platform.db import Database, downgrade, migrate

S = migrations.SCHEMA


async def _rows(database: Database, query: str) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        return [dict(row._mapping) for row in await session.execute(sa.text(query))]


async def _execute(database: Database, statement: str) -> None:
    async with database.transaction() as session:
        await session.execute(sa.text(statement))


async def _request(database: Database, rq_id: str) -> None:
    """A started request of the platform's table, which `auto_annotations` rows need."""
    await _execute(database, f"""
        INSERT INTO {S}.requests (id, owner_id, operation, status)
        VALUES ('{rq_id}', 1, '{{"type": "autoannotate:task", "target": "task"}}', 'started')
    """)  # fmt: skip


async def test_a_request_keeps_its_progress_across_the_migration_and_back(
    database_url: str,
) -> None:
    await downgrade(database_url, migrations.LOCATION, S, "0002")
    database = Database(database_url, pool_size=1)
    try:
        await _request(database, "old")
        await _execute(database, f"""
            INSERT INTO {S}.auto_annotations
                (rq_id, task_id, job_id, function_id, params, done_through, pending, cleaned,
                 shapes_written, attempts)
            VALUES ('old', 12, 40, 'det', '{{"cleanup": true}}', 31,
                    '{{"last": 63, "document": {{}}}}', true, 17, 2)
        """)  # fmt: skip

        await migrate(database_url, migrations.LOCATION, S)
        assert await _rows(database, f"""
            SELECT rq_id, position, task_id, job_id, frames, done_through, pending, cleaned,
                   shapes_written
            FROM {S}.auto_annotation_parts
        """) == [{
            "rq_id": "old", "position": 0, "task_id": 12, "job_id": 40, "frames": None,
            "done_through": 31, "pending": {"last": 63, "document": {}}, "cleaned": True,
            "shapes_written": 17,
        }]  # fmt: skip
        assert await _rows(database, f"""
            SELECT rq_id, project_id, task_id, job_id, params, attempts FROM {S}.auto_annotations
        """) == [{
            "rq_id": "old", "project_id": None, "task_id": 12, "job_id": 40,
            "params": {"cleanup": True}, "attempts": 2,
        }]  # fmt: skip

        # A project's request, which 0002 cannot hold.
        await _request(database, "project")
        await _execute(database, f"""
            INSERT INTO {S}.auto_annotations (rq_id, project_id, function_id, params)
            VALUES ('project', 3, 'det', '{{}}')
        """)  # fmt: skip
        await _execute(database, f"""
            INSERT INTO {S}.auto_annotation_parts (rq_id, position, task_id)
            VALUES ('project', 0, 13), ('project', 1, 14)
        """)  # fmt: skip

        await downgrade(database_url, migrations.LOCATION, S, "0002")
        assert await _rows(database, f"""
            SELECT rq_id, task_id, job_id, done_through, pending, cleaned, shapes_written,
                   attempts
            FROM {S}.auto_annotations
        """) == [{
            "rq_id": "old", "task_id": 12, "job_id": 40, "done_through": 31,
            "pending": {"last": 63, "document": {}}, "cleaned": True, "shapes_written": 17,
            "attempts": 2,
        }]  # fmt: skip
        await migrate(database_url, migrations.LOCATION, S)
    finally:
        await database.dispose()
