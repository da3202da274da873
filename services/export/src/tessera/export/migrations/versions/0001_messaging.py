"""The outbox and inbox of the export schema.

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
    create_messaging_tables(op, "export")


def downgrade() -> None:
    op.drop_table("inbox", schema="export")
    op.drop_table("outbox", schema="export")
