"""Cloud storages (S3 buckets tasks take data from) and the encrypted secrets they refer to.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "ingest"


def _date(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        _date("created_date"),
        schema=S,
    )
    op.create_table(
        "cloud_storages",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("owner_username", sa.Text, nullable=False),
        sa.Column("organization_id", sa.BigInteger),
        sa.Column("provider_type", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("credentials_type", sa.Text, nullable=False),
        sa.Column("secret_id", sa.Uuid, sa.ForeignKey(f"{S}.secrets.id", ondelete="RESTRICT")),
        sa.Column("specific_attributes", sa.Text, nullable=False, server_default=""),
        sa.Column("manifests", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        _date("created_date"),
        _date("updated_date"),
        schema=S,
    )
    op.create_index("cloud_storages_owner", "cloud_storages", ["owner_id"], schema=S)
    op.create_index("cloud_storages_organization", "cloud_storages", ["organization_id"], schema=S)


def downgrade() -> None:
    op.drop_table("cloud_storages", schema=S)
    op.drop_table("secrets", schema=S)
