"""Migration 0004 moves a task's files into the platform's `uploads` table: a TUS upload in
flight goes on where it stopped, complete files keep their objects and order; the
downgrade puts them back."""

import uuid
from typing import Any

import sqlalchemy as sa

from tessera.ingest import migrations
from tessera.ingest.task_data.service import task_files
from tessera.platform.db import Database, downgrade, migrate
from tessera.platform.storage import ObjectStorage
from tessera.platform.uploads import Uploads

S = migrations.SCHEMA


async def _rows(database: Database, query: str) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        return [dict(row._mapping) for row in await session.execute(sa.text(query))]


async def test_uploads_survive_the_move_to_the_platform_table_and_back(database_url: str) -> None:
    await downgrade(database_url, migrations.LOCATION, S, "0003")
    database = Database(database_url, pool_size=1)
    in_flight = uuid.uuid4()
    try:
        async with database.transaction() as session:
            await session.execute(sa.text(f"""
                INSERT INTO {S}.uploads (id, task_id, owner_id, filename, length, received, parts)
                VALUES ('{in_flight}', 12, 5, 'video.mp4', 100, 40, 2)
            """))  # fmt: skip
            await session.execute(sa.text(f"""
                INSERT INTO {S}.upload_files
                    (task_id, name, object_key, size, position, created_date)
                VALUES (12, 'b.png', 'tasks/12/uploads/b.png', 7, 0, now()),
                       (12, 'a.png', 'tasks/12/uploads/a.png', 9, 1, now()),
                       (13, 'c.png', 'tasks/13/uploads/c.png', 3, 0, now())
            """))  # fmt: skip

        await migrate(database_url, migrations.LOCATION, S)
        # Reading the rows touches no object: the storage client is never started.
        uploads = Uploads(ObjectStorage(bucket="unused", endpoint_url=None, region="x"), S)
        async with database.transaction() as session:
            files = await uploads.files(session, task_files(12))
            pending = await uploads.pending(session, task_files(12))
            upload = await uploads.get(session, task_files(12), in_flight, 5)
            others = await uploads.files(session, task_files(13))
        assert [(f.filename, f.object_key, f.length) for f in files] == [
            ("b.png", "tasks/12/uploads/b.png", 7),
            ("a.png", "tasks/12/uploads/a.png", 9),
        ]
        assert [(u.id, u.offset, u.length, u.complete) for u in pending] == [
            (in_flight, 40, 100, False)
        ]
        assert upload.object_key == "tasks/12/uploads/video.mp4"
        assert [f.filename for f in others] == ["c.png"]
        async with database.transaction() as session:
            later = await session.scalar(sa.text(f"SELECT nextval('{S}.uploads_position')"))
        assert later == 2  # a file completed after the move comes after every file kept

        await downgrade(database_url, migrations.LOCATION, S, "0003")
        assert await _rows(
            database, f"SELECT id, task_id, owner_id, filename, length, received FROM {S}.uploads"
        ) == [{"id": in_flight, "task_id": 12, "owner_id": 5, "filename": "video.mp4",
               "length": 100, "received": 40}]  # fmt: skip
        kept = await _rows(
            database,
            f"SELECT task_id, name, object_key, size, position FROM {S}.upload_files "
            "ORDER BY task_id, position",
        )
        assert [(r["task_id"], r["name"], r["position"]) for r in kept] == [
            (12, "b.png", 0), (12, "a.png", 1), (13, "c.png", 0)
        ]  # fmt: skip
        await migrate(database_url, migrations.LOCATION, S)
    finally:
        await database.dispose()
