"""The audit log, webhooks and their deliveries.

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

S = "annotations"


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("msg_id", sa.Text, nullable=False, unique=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.BigInteger),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("organization_id", sa.BigInteger),
        sa.Column("project_id", sa.BigInteger),
        sa.Column("task_id", sa.BigInteger),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("details", pg.JSONB, nullable=False, server_default="{}"),
        sa.Index("audit_log_task", "task_id", "id"),
        sa.Index("audit_log_actor", "actor_id", "id"),
        sa.Index("audit_log_organization", "organization_id", "id"),
        schema=S,
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("target_url", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False, server_default="application/json"),
        sa.Column("secret", sa.Text, nullable=False, server_default=""),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("enable_ssl", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("events", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column(
            "organization_id",
            sa.BigInteger,
            sa.ForeignKey(f"{S}.organizations.id", ondelete="CASCADE"),
        ),
        sa.Column(
            "project_id", sa.BigInteger, sa.ForeignKey(f"{S}.projects.id", ondelete="CASCADE")
        ),
        sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("iam.users.id", ondelete="SET NULL")),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("type IN ('project', 'organization')", name="type_valid"),
        sa.CheckConstraint(
            "(type = 'project') = (project_id IS NOT NULL)", name="project_hooks_have_a_project"
        ),
        sa.Index("webhooks_project", "project_id"),
        sa.Index("webhooks_organization", "organization_id"),
        schema=S,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "webhook_id",
            sa.BigInteger,
            sa.ForeignKey(f"{S}.webhooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("redelivery", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("changed_fields", sa.Text, nullable=False, server_default=""),
        sa.Column("request", pg.JSONB, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("request_duration", sa.Integer),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Index("webhook_deliveries_webhook", "webhook_id", "id"),
        sa.Index(
            "webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
        ),
        schema=S,
    )


def downgrade() -> None:
    for table in ("webhook_deliveries", "webhooks", "audit_log"):
        op.drop_table(table, schema=S)
