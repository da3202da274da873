"""Users and access tokens (iam), and the outbox and inbox of the annotations schema.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from tessera.platform.auth import IAM_SCHEMA
from tessera.platform.bus import create_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{IAM_SCHEMA}"'))
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("email", sa.Text, nullable=False, server_default=""),
        sa.Column("first_name", sa.Text, nullable=False, server_default=""),
        sa.Column("last_name", sa.Text, nullable=False, server_default=""),
        sa.Column("password_hash", sa.Text),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("is_staff", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_superuser", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column(
            "date_joined", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("last_login", sa.DateTime(timezone=True)),
        schema=IAM_SCHEMA,
    )
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "owner_id",
            sa.BigInteger,
            sa.ForeignKey(f"{IAM_SCHEMA}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False, unique=True),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expiry_date", sa.DateTime(timezone=True)),
        sa.Column("last_used_date", sa.DateTime(timezone=True)),
        sa.Column("read_only", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=IAM_SCHEMA,
    )
    op.create_index("access_tokens_owner", "access_tokens", ["owner_id"], schema=IAM_SCHEMA)
    create_messaging_tables(op, "annotations")


def downgrade() -> None:
    op.drop_table("inbox", schema="annotations")
    op.drop_table("outbox", schema="annotations")
    op.drop_table("access_tokens", schema=IAM_SCHEMA)
    op.drop_table("users", schema=IAM_SCHEMA)
