"""Files uploaded for annotation imports (`tessera.platform.uploads`).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from tessera.platform.uploads import POSITIONS, create_uploads_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_uploads_table(op, "export")


def downgrade() -> None:
    op.drop_table("uploads", schema="export")
    op.execute(sa.schema.DropSequence(sa.Sequence(POSITIONS, schema="export")))
