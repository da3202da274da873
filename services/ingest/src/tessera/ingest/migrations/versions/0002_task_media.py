"""Task media: uploads in progress, the frames and chunks of each task, requests.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from tessera.platform.requests import create_requests_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "ingest"


def _now() -> sa.Column[object]:
    return sa.Column(
        "created_date", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    create_requests_table(op, S)
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("parts", sa.Integer, nullable=False, server_default="0"),
        _now(),
        sa.CheckConstraint("received <= length", name="uploads_received_le_length"),
        schema=S,
    )
    op.create_index("uploads_task", "uploads", ["task_id"], schema=S)
    op.create_table(
        "upload_files",
        sa.Column("task_id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        _now(),
        schema=S,
    )
    op.create_table(
        "task_media",
        sa.Column("task_id", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("media_type", sa.Text, nullable=False),
        sa.Column("dimension", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("chunk_size", sa.Integer, nullable=False),
        sa.Column("image_quality", sa.Integer, nullable=False),
        sa.Column("use_zip_chunks", sa.Boolean, nullable=False),
        sa.Column("use_cache", sa.Boolean, nullable=False),
        sa.Column("compressed_chunk_type", sa.Text, nullable=False),
        sa.Column("original_chunk_type", sa.Text, nullable=False),
        sa.Column("start_frame", sa.Integer, nullable=False),
        sa.Column("stop_frame", sa.Integer, nullable=False),
        sa.Column("frame_filter", sa.Text, nullable=False, server_default=""),
        sa.Column("sorting_method", sa.Text, nullable=False),
        sa.Column("storage", sa.Text, nullable=False),
        sa.Column("cloud_storage_id", sa.BigInteger),
        sa.Column("video_key", sa.Text),
        sa.Column("video_keyframes", pg.ARRAY(sa.BigInteger)),
        sa.Column("manifest_key", sa.Text),
        _now(),
        sa.CheckConstraint("status IN ('creating', 'ready')", name="task_media_status"),
        sa.CheckConstraint(
            "media_type IN ('image', 'video', 'pointcloud')", name="task_media_media_type"
        ),
        schema=S,
    )
    op.create_table(
        "frames",
        sa.Column("task_id", sa.BigInteger, primary_key=True),
        sa.Column("frame", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("object_key", sa.Text),
        sa.Column("related_keys", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.ForeignKeyConstraint(["task_id"], [f"{S}.task_media.task_id"], ondelete="CASCADE"),
        schema=S,
    )
    op.create_table(
        "chunks",
        sa.Column("task_id", sa.BigInteger, primary_key=True),
        sa.Column("quality", sa.Text, primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column(
            "last_used", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(["task_id"], [f"{S}.task_media.task_id"], ondelete="CASCADE"),
        schema=S,
    )
    op.create_index(
        "chunks_cached_lru", "chunks", ["last_used"], schema=S,
        postgresql_where=sa.text("cached"),
    )  # fmt: skip


def downgrade() -> None:
    for table in ("chunks", "frames", "task_media", "upload_files", "uploads", "requests"):
        op.drop_table(table, schema=S)
