"""Auto-annotation requests: the platform's `requests` table, and what each request asked
for and how far its worker got (`tessera.inference.auto_annotation`).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tessera.platform.requests import create_requests_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_requests_table(op, "inference")
    op.create_table(
        "auto_annotations",
        sa.Column(
            "rq_id",
            sa.Text,
            sa.ForeignKey("inference.requests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("function_id", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        # Every frame up to this one (of the request's frames) has its shapes written.
        sa.Column("done_through", sa.BigInteger),
        # The batch being written: {"frames": [...], "document": {...}} (None between batches).
        sa.Column("pending", JSONB),
        sa.Column("cleaned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("shapes_written", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        schema="inference",
    )
    op.create_index("auto_annotations_task", "auto_annotations", ["task_id"], schema="inference")


def downgrade() -> None:
    op.drop_table("auto_annotations", schema="inference")
    op.drop_table("requests", schema="inference")
