"""The JSON text of tags and shapes, stored as they are written; reads in index order.

A read of a job then passes stored text on instead of having PostgreSQL build it from
the typed columns for every row, which was most of the time of a GET. The typed columns
stay the source of truth for everything else (exports, merges, queries). Rows written
before this revision, and skeletons (whose text includes their elements), have no text
and are built on read as before.

The (job_id, frame) indexes gain `id`, so that a job's tags and shapes come out of the
index in the order GET streams them, without sorting the whole job's rows first.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "annotations"


def _index(table: str, columns: str) -> None:
    op.execute(f"DROP INDEX {S}.{table}_job_frame")
    op.execute(f"CREATE INDEX {table}_job_frame ON {S}.{table} ({columns})")


def upgrade() -> None:
    for table in ("tags", "shapes"):
        op.execute(f"ALTER TABLE {S}.{table} ADD COLUMN doc text")
        _index(table, "job_id, frame, id")


def downgrade() -> None:
    for table in ("tags", "shapes"):
        op.execute(f"ALTER TABLE {S}.{table} DROP COLUMN doc")
        _index(table, "job_id, frame")
