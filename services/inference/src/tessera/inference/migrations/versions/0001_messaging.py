"""The outbox and inbox of the inference schema.

Revision ID: 0001
Revises:
"""

from alembic import op

from tessera.platform.bus import create_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op, "inference")


def downgrade() -> None:
    op.drop_table("inbox", schema="inference")
    op.drop_table("outbox", schema="inference")
