"""A task's deleted frames (CVAT's `Data.deleted_frames`): task frame numbers, none at first.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "ingest"


def upgrade() -> None:
    op.add_column(
        "task_media",
        sa.Column("deleted_frames", pg.ARRAY(sa.Integer), nullable=False, server_default="{}"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_column("task_media", "deleted_frames", schema=S)
