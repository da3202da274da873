"""Task files in the platform's `uploads` table (`tessera.platform.uploads`).

`uploads` (TUS uploads in progress) and `upload_files` (a task's complete files) become
one table of files whose owner is `tasks/{task_id}`, the prefix their objects already
have, so nothing moves in the bucket and uploads in flight carry on:
- an upload in progress keeps its id, uploader, name, length and bytes received; its
  parts stay under `tasks/{id}/parts/{upload_id}/`, and its next PATCH goes on;
- a complete file keeps its object and its place among the task's files. The old table
  did not record who sent it: it gets `user_id` 0 (no user), which only a lookup of one
  user's file (`Uploads.file`) would look at, and ingest makes none.
The downgrade puts the rows of `tasks/...` owners back in the two tables.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from tessera.platform.uploads import create_uploads_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "ingest"


def upgrade() -> None:
    op.rename_table("uploads", "uploads_0003", schema=S)
    op.execute(f"ALTER INDEX {S}.uploads_pkey RENAME TO uploads_0003_pkey")
    op.execute(f"ALTER INDEX {S}.uploads_task RENAME TO uploads_0003_task")
    create_uploads_table(op, S)
    op.execute(f"""
        INSERT INTO {S}.uploads
            (id, owner, user_id, filename, length, received, object_key, created_date)
        SELECT id, 'tasks/' || task_id, owner_id, filename, length, received,
               'tasks/' || task_id || '/uploads/' || filename, created_date
        FROM {S}.uploads_0003
    """)  # fmt: skip
    op.execute(f"""
        INSERT INTO {S}.uploads
            (id, owner, user_id, filename, length, received, object_key, position,
             created_date)
        SELECT gen_random_uuid(), 'tasks/' || task_id, 0, name, size, size, object_key,
               position, created_date
        FROM {S}.upload_files
    """)  # fmt: skip
    # Files completed from now on come after every file kept.
    op.execute(f"""
        SELECT setval('{S}.uploads_position', coalesce(max(position), 0) + 1, false)
        FROM {S}.uploads
    """)  # fmt: skip
    op.drop_table("upload_files", schema=S)
    op.drop_table("uploads_0003", schema=S)


def downgrade() -> None:
    op.rename_table("uploads", "uploads_0004", schema=S)
    op.execute(f"ALTER INDEX {S}.uploads_pkey RENAME TO uploads_0004_pkey")
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("parts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("received <= length", name="uploads_received_le_length"),
        schema=S,
    )
    op.create_index("uploads_task", "uploads", ["task_id"], schema=S)
    op.create_table(
        "upload_files",
        sa.Column("task_id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=S,
    )
    tasks = f"FROM {S}.uploads_0004 WHERE owner ~ '^tasks/[0-9]+$'"
    task_id = "substr(owner, 7)::bigint"
    op.execute(f"""
        INSERT INTO {S}.uploads (id, task_id, owner_id, filename, length, received, created_date)
        SELECT id, {task_id}, user_id, filename, length, received, created_date
        {tasks} AND position IS NULL
    """)  # fmt: skip
    op.execute(f"""
        INSERT INTO {S}.upload_files (task_id, name, object_key, size, position, created_date)
        SELECT {task_id}, filename, object_key, length,
               row_number() OVER (PARTITION BY owner ORDER BY position) - 1, created_date
        {tasks} AND position IS NOT NULL
    """)  # fmt: skip
    op.drop_table("uploads_0004", schema=S)
    op.execute(f"DROP SEQUENCE {S}.uploads_position")
