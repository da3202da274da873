"""Requests and exports: what each export request asked for, and the archive it made.

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
    create_requests_table(op, "export")
    op.create_table(
        "exports",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "rq_id",
            sa.Text,
            sa.ForeignKey("export.requests.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("target_id", sa.BigInteger, nullable=False),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("save_images", sa.Boolean, nullable=False),
        sa.Column("options", JSONB, nullable=False),
        sa.Column("params_key", sa.Text, nullable=False),
        sa.Column("request_key", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("version_key", sa.Text),
        sa.Column("object_key", sa.Text),
        sa.Column("size", sa.BigInteger),
        sa.Column("done", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expiry_date", sa.DateTime(timezone=True)),
        sa.CheckConstraint("target IN ('project', 'task', 'job')", name="exports_target"),
        schema="export",
    )
    op.create_index("exports_reuse", "exports", ["params_key", "version_key"], schema="export")
    op.create_index("exports_object", "exports", ["object_key"], schema="export")
    op.create_index("exports_request", "exports", ["owner_id", "request_key"], schema="export")
    op.create_index("exports_expiry", "exports", ["expiry_date"], schema="export")


def downgrade() -> None:
    op.drop_table("exports", schema="export")
    op.drop_table("requests", schema="export")
