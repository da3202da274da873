"""Organizations, projects, tasks, labels, jobs, review issues, and annotations.

Geometry is stored as float8[] and attribute values as parallel int4[]/text[] arrays,
so one row is one shape and bulk writes can use binary COPY.

Revision ID: 0002
Revises: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "annotations"
USERS = "iam.users.id"


def _created_updated() -> list[sa.Column[Any]]:
    return [
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def _user(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(
        name, sa.BigInteger, sa.ForeignKey(USERS, ondelete="SET NULL"), nullable=nullable
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
        sa.Column("rotation", sa.Float(precision=53), nullable=False, server_default="0"),
        sa.Column("points", pg.ARRAY(sa.Float(precision=53)), nullable=False, server_default="{}"),
    ]


def _fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{S}.{table}.id", ondelete="CASCADE")


def _check_in(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=f"{column}_valid")


SHAPE_TYPES = (
    "rectangle",
    "polygon",
    "polyline",
    "points",
    "ellipse",
    "cuboid",
    "mask",
    "skeleton",
)
SOURCES = ("manual", "semi-auto", "auto", "file", "consensus")
LABEL_TYPES = (*SHAPE_TYPES, "any", "tag")
CHUNK_TYPES = ("video", "imageset")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("slug", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("contact", pg.JSONB, nullable=False, server_default="{}"),
        _user("owner_id"),
        *_created_updated(),
        schema=S,
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "user_id", sa.BigInteger, sa.ForeignKey(USERS, ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "organization_id",
            sa.BigInteger,
            sa.ForeignKey(f"{S}.organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("joined_date", sa.DateTime(timezone=True)),
        _user("invited_by_id"),
        sa.UniqueConstraint("user_id", "organization_id"),
        _check_in("role", ("owner", "maintainer", "supervisor", "worker")),
        schema=S,
    )
    op.create_table(
        "invitations",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column(
            "membership_id",
            sa.BigInteger,
            sa.ForeignKey(f"{S}.memberships.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        _user("owner_id"),
        sa.Column(
            "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sent_date", sa.DateTime(timezone=True)),
        sa.Column("accepted", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S,
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        _user("owner_id"),
        _user("assignee_id"),
        sa.Column("assignee_updated_date", sa.DateTime(timezone=True)),
        sa.Column("organization_id", sa.BigInteger, _fk("organizations")),
        sa.Column("bug_tracker", sa.Text, nullable=False, server_default=""),
        sa.Column("dimension", sa.Text),
        sa.Column("source_storage", pg.JSONB),
        sa.Column("target_storage", pg.JSONB),
        *_created_updated(),
        sa.Index("projects_organization", "organization_id"),
        schema=S,
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column(
            "project_id", sa.BigInteger, sa.ForeignKey(f"{S}.projects.id", ondelete="CASCADE")
        ),
        _user("owner_id"),
        _user("assignee_id"),
        sa.Column("assignee_updated_date", sa.DateTime(timezone=True)),
        sa.Column("organization_id", sa.BigInteger, _fk("organizations")),
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
        *_created_updated(),
        sa.CheckConstraint("image_quality BETWEEN 5 AND 100", name="image_quality_range"),
        _check_in("status", ("annotation", "validation", "completed")),
        _check_in("dimension", ("2d", "3d")),
        _check_in("media_type", ("image", "video")),
        _check_in("compressed_chunk_type", CHUNK_TYPES),
        _check_in("original_chunk_type", CHUNK_TYPES),
        sa.CheckConstraint(
            "segment_size >= 0 AND (overlap IS NULL OR overlap >= 0)", name="segments_nonnegative"
        ),
        sa.Index("tasks_project", "project_id"),
        sa.Index("tasks_organization", "organization_id"),
        schema=S,
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "project_id", sa.BigInteger, sa.ForeignKey(f"{S}.projects.id", ondelete="CASCADE")
        ),
        sa.Column("task_id", sa.BigInteger, sa.ForeignKey(f"{S}.tasks.id", ondelete="CASCADE")),
        sa.Column("parent_id", sa.BigInteger, sa.ForeignKey(f"{S}.labels.id", ondelete="CASCADE")),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("color", sa.Text, nullable=False, server_default=""),
        sa.Column("type", sa.Text, nullable=False, server_default="any"),
        sa.Column("svg", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("(project_id IS NULL) <> (task_id IS NULL)", name="one_owner"),
        _check_in("type", LABEL_TYPES),
        sa.UniqueConstraint(
            "project_id", "task_id", "parent_id", "name", postgresql_nulls_not_distinct=True
        ),
        sa.Index("labels_task", "task_id"),
        sa.Index("labels_project", "project_id"),
        sa.Index("labels_parent", "parent_id"),
        schema=S,
    )
    op.create_table(
        "attribute_specs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "label_id",
            sa.BigInteger,
            sa.ForeignKey(f"{S}.labels.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("mutable", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("input_type", sa.Text, nullable=False),
        sa.Column("default_value", sa.Text, nullable=False, server_default=""),
        sa.Column("values", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.UniqueConstraint("label_id", "name"),
        _check_in("input_type", ("select", "radio", "checkbox", "number", "text")),
        schema=S,
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "task_id",
            sa.BigInteger,
            sa.ForeignKey(f"{S}.tasks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("start_frame", sa.Integer, nullable=False),
        sa.Column("stop_frame", sa.Integer, nullable=False),
        sa.Column("frames", pg.ARRAY(sa.Integer)),
        sa.Column("type", sa.Text, nullable=False, server_default="annotation"),
        sa.Column("stage", sa.Text, nullable=False, server_default="annotation"),
        sa.Column("state", sa.Text, nullable=False, server_default="new"),
        _user("assignee_id"),
        sa.Column("assignee_updated_date", sa.DateTime(timezone=True)),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        *_created_updated(),
        sa.CheckConstraint("start_frame <= stop_frame", name="frame_range"),
        _check_in("stage", ("annotation", "validation", "acceptance")),
        _check_in("state", ("new", "in progress", "completed", "rejected")),
        sa.Index("jobs_task", "task_id"),
        sa.Index("jobs_assignee", "assignee_id"),
        schema=S,
    )
    op.create_table(
        "issues",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "job_id",
            sa.BigInteger,
            sa.ForeignKey(f"{S}.jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("frame", sa.Integer, nullable=False),
        sa.Column("position", pg.ARRAY(sa.Float(precision=53)), nullable=False),
        _user("owner_id"),
        _user("assignee_id"),
        sa.Column("resolved", sa.Boolean, nullable=False, server_default=sa.false()),
        *_created_updated(),
        sa.Index("issues_job", "job_id"),
        schema=S,
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "issue_id",
            sa.BigInteger,
            sa.ForeignKey(f"{S}.issues.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _user("owner_id"),
        sa.Column("message", sa.Text, nullable=False),
        *_created_updated(),
        sa.Index("comments_issue", "issue_id"),
        schema=S,
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", sa.BigInteger, _fk("jobs"), nullable=False),
        sa.Column("label_id", sa.BigInteger, _fk("labels"), nullable=False),
        sa.Column("frame", sa.Integer, nullable=False),
        sa.Column("group", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source", sa.Text, nullable=False, server_default="manual"),
        *_attributes(),
        _check_in("source", SOURCES),
        sa.Index("tags_job_frame", "job_id", "frame"),
        schema=S,
    )
    op.create_table(
        "shapes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", sa.BigInteger, _fk("jobs"), nullable=False),
        sa.Column("label_id", sa.BigInteger, _fk("labels"), nullable=False),
        sa.Column("parent_id", sa.BigInteger, sa.ForeignKey(f"{S}.shapes.id", ondelete="CASCADE")),
        sa.Column("frame", sa.Integer, nullable=False),
        *_geometry(),
        sa.Column("group", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source", sa.Text, nullable=False, server_default="manual"),
        sa.Column("score", sa.Float(precision=53), nullable=False, server_default="1"),
        *_attributes(),
        _check_in("type", SHAPE_TYPES),
        _check_in("source", SOURCES),
        sa.Index("shapes_job_frame", "job_id", "frame"),
        sa.Index("shapes_parent", "parent_id", postgresql_where=sa.text("parent_id IS NOT NULL")),
        schema=S,
    )
    op.create_table(
        "tracks",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("job_id", sa.BigInteger, _fk("jobs"), nullable=False),
        sa.Column("label_id", sa.BigInteger, _fk("labels"), nullable=False),
        sa.Column("parent_id", sa.BigInteger, sa.ForeignKey(f"{S}.tracks.id", ondelete="CASCADE")),
        sa.Column("frame", sa.Integer, nullable=False),
        sa.Column("group", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source", sa.Text, nullable=False, server_default="manual"),
        *_attributes(),
        _check_in("source", SOURCES),
        sa.Index("tracks_job", "job_id"),
        sa.Index("tracks_parent", "parent_id", postgresql_where=sa.text("parent_id IS NOT NULL")),
        schema=S,
    )
    op.create_table(
        "track_shapes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "track_id",
            sa.BigInteger,
            sa.ForeignKey(f"{S}.tracks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("job_id", sa.BigInteger, _fk("jobs"), nullable=False),
        sa.Column("frame", sa.Integer, nullable=False),
        *_geometry(),
        *_attributes(),
        _check_in("type", SHAPE_TYPES),
        sa.UniqueConstraint("track_id", "frame"),
        sa.Index("track_shapes_job", "job_id"),
        schema=S,
    )


def downgrade() -> None:
    for table in (
        "track_shapes",
        "tracks",
        "shapes",
        "tags",
        "comments",
        "issues",
        "jobs",
        "attribute_specs",
        "labels",
        "tasks",
        "projects",
        "invitations",
        "memberships",
        "organizations",
    ):
        op.drop_table(table, schema=S)
