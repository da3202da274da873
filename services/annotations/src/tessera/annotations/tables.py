"""SQLAlchemy Core tables of the `annotations` schema, as migrations/ creates them.

Repositories build their SQL from these. A change here needs a new migration.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from tessera.platform.auth import users

SCHEMA = "annotations"
metadata = sa.MetaData(schema=SCHEMA)
Float64 = sa.Float(precision=53)


def _dates() -> list[sa.Column[Any]]:
    return [
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def _user(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.BigInteger, sa.ForeignKey(users.c.id, ondelete="SET NULL"))


def _ref(name: str, table: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(
        name,
        sa.BigInteger,
        sa.ForeignKey(f"{SCHEMA}.{table}.id", ondelete="CASCADE"),
        nullable=nullable,
    )


def _attributes() -> list[sa.Column[Any]]:
    return [
        sa.Column("attr_ids", pg.ARRAY(sa.Integer), nullable=False, server_default="{}"),
        sa.Column("attr_values", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    ]


def _geometry() -> list[sa.Column[Any]]:
    return [
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("occluded", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("outside", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("z_order", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rotation", Float64, nullable=False, server_default="0"),
        sa.Column("points", pg.ARRAY(Float64), nullable=False, server_default="{}"),
    ]


organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("slug", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("contact", pg.JSONB, nullable=False, server_default="{}"),
    _user("owner_id"),
    *_dates(),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "user_id", sa.BigInteger, sa.ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False
    ),
    _ref("organization_id", "organizations"),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("joined_date", sa.DateTime(timezone=True)),
    _user("invited_by_id"),
)

invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    _ref("membership_id", "memberships"),
    _user("owner_id"),
    sa.Column(
        "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("sent_date", sa.DateTime(timezone=True)),
    sa.Column("accepted", sa.Boolean, nullable=False, server_default=sa.false()),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    _user("owner_id"),
    _user("assignee_id"),
    sa.Column("assignee_updated_date", sa.DateTime(timezone=True)),
    _ref("organization_id", "organizations", nullable=True),
    sa.Column("bug_tracker", sa.Text, nullable=False, server_default=""),
    sa.Column("dimension", sa.Text),
    sa.Column("source_storage", pg.JSONB),
    sa.Column("target_storage", pg.JSONB),
    *_dates(),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    _ref("project_id", "projects", nullable=True),
    _user("owner_id"),
    _user("assignee_id"),
    sa.Column("assignee_updated_date", sa.DateTime(timezone=True)),
    _ref("organization_id", "organizations", nullable=True),
    sa.Column("bug_tracker", sa.Text, nullable=False, server_default=""),
    sa.Column("dataset_repository", sa.Text, nullable=False, server_default=""),
    sa.Column("subset", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False, server_default="annotation"),
    sa.Column("dimension", sa.Text, nullable=False, server_default="2d"),
    sa.Column("mode", sa.Text, nullable=False, server_default=""),
    sa.Column("media_type", sa.Text),
    sa.Column("size", sa.Integer, nullable=False, server_default="0"),
    sa.Column("segment_size", sa.Integer, nullable=False, server_default="0"),
    sa.Column("overlap", sa.Integer),
    sa.Column("image_quality", sa.Integer, nullable=False, server_default="70"),
    sa.Column("start_frame", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stop_frame", sa.Integer),
    sa.Column("frame_filter", sa.Text, nullable=False, server_default=""),
    sa.Column("data_chunk_size", sa.Integer),
    sa.Column("compressed_chunk_type", sa.Text),
    sa.Column("original_chunk_type", sa.Text),
    sa.Column("source_storage", pg.JSONB),
    sa.Column("target_storage", pg.JSONB),
    *_dates(),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("project_id", "projects", nullable=True),
    _ref("task_id", "tasks", nullable=True),
    _ref("parent_id", "labels", nullable=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("color", sa.Text, nullable=False, server_default=""),
    sa.Column("type", sa.Text, nullable=False, server_default="any"),
    sa.Column("svg", sa.Text, nullable=False, server_default=""),
)

attribute_specs = sa.Table(
    "attribute_specs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("label_id", "labels"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("mutable", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("input_type", sa.Text, nullable=False),
    sa.Column("default_value", sa.Text, nullable=False, server_default=""),
    sa.Column("values", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("task_id", "tasks"),
    sa.Column("start_frame", sa.Integer, nullable=False),
    sa.Column("stop_frame", sa.Integer, nullable=False),
    sa.Column("frames", pg.ARRAY(sa.Integer)),
    sa.Column("type", sa.Text, nullable=False, server_default="annotation"),
    sa.Column("stage", sa.Text, nullable=False, server_default="annotation"),
    sa.Column("state", sa.Text, nullable=False, server_default="new"),
    _user("assignee_id"),
    sa.Column("assignee_updated_date", sa.DateTime(timezone=True)),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    *_dates(),
)

issues = sa.Table(
    "issues",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("job_id", "jobs"),
    sa.Column("frame", sa.Integer, nullable=False),
    sa.Column("position", pg.ARRAY(Float64), nullable=False),
    _user("owner_id"),
    _user("assignee_id"),
    sa.Column("resolved", sa.Boolean, nullable=False, server_default=sa.false()),
    *_dates(),
)

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("issue_id", "issues"),
    _user("owner_id"),
    sa.Column("message", sa.Text, nullable=False),
    *_dates(),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("job_id", "jobs"),
    _ref("label_id", "labels"),
    sa.Column("frame", sa.Integer, nullable=False),
    sa.Column("group", sa.Integer, nullable=False, server_default="0"),
    sa.Column("source", sa.Text, nullable=False, server_default="manual"),
    *_attributes(),
    sa.Column("doc", sa.Text),
)

shapes = sa.Table(
    "shapes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("job_id", "jobs"),
    _ref("label_id", "labels"),
    _ref("parent_id", "shapes", nullable=True),
    sa.Column("frame", sa.Integer, nullable=False),
    *_geometry(),
    sa.Column("group", sa.Integer, nullable=False, server_default="0"),
    sa.Column("source", sa.Text, nullable=False, server_default="manual"),
    sa.Column("score", Float64, nullable=False, server_default="1"),
    *_attributes(),
    sa.Column("doc", sa.Text),
)

tracks = sa.Table(
    "tracks",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("job_id", "jobs"),
    _ref("label_id", "labels"),
    _ref("parent_id", "tracks", nullable=True),
    sa.Column("frame", sa.Integer, nullable=False),
    sa.Column("group", sa.Integer, nullable=False, server_default="0"),
    sa.Column("source", sa.Text, nullable=False, server_default="manual"),
    *_attributes(),
)

track_shapes = sa.Table(
    "track_shapes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("track_id", "tracks"),
    _ref("job_id", "jobs"),
    sa.Column("frame", sa.Integer, nullable=False),
    *_geometry(),
    *_attributes(),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
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
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("target_url", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False, server_default="application/json"),
    sa.Column("secret", sa.Text, nullable=False, server_default=""),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("enable_ssl", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("events", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    _ref("organization_id", "organizations", nullable=True),
    _ref("project_id", "projects", nullable=True),
    _user("owner_id"),
    *_dates(),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    _ref("webhook_id", "webhooks"),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("redelivery", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("changed_fields", sa.Text, nullable=False, server_default=""),
    sa.Column("request", pg.JSONB, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("response", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("request_duration", sa.Integer),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    *_dates(),
)
