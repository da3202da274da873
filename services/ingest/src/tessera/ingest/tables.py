"""The ingest schema's tables (created by the migrations).

The `uploads` table of task files is the platform's (`tessera.platform.uploads.Uploads`).
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from tessera.ingest.migrations import SCHEMA

metadata = sa.MetaData(schema=SCHEMA)

task_media = sa.Table(
    "task_media",
    metadata,
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
    sa.Column("frame_filter", sa.Text, nullable=False),
    sa.Column("sorting_method", sa.Text, nullable=False),
    sa.Column("storage", sa.Text, nullable=False),
    sa.Column("cloud_storage_id", sa.BigInteger),
    sa.Column("video_key", sa.Text),
    sa.Column("video_keyframes", pg.ARRAY(sa.BigInteger)),
    sa.Column("manifest_key", sa.Text),
    sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
    # Task frame numbers, sorted (CVAT's `Data.deleted_frames`); set by PATCH data/meta.
    sa.Column("deleted_frames", pg.ARRAY(sa.Integer), nullable=False, server_default="{}"),
)

frames = sa.Table(
    "frames",
    metadata,
    sa.Column("task_id", sa.BigInteger, primary_key=True),
    sa.Column("frame", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("object_key", sa.Text),
    sa.Column("related_keys", pg.ARRAY(sa.Text), nullable=False),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("task_id", sa.BigInteger, primary_key=True),
    sa.Column("quality", sa.Text, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("object_key", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("cached", sa.Boolean, nullable=False),
    sa.Column("last_used", sa.DateTime(timezone=True), nullable=False),
)

secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
)

cloud_storages = sa.Table(
    "cloud_storages",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("owner_id", sa.BigInteger, nullable=False),
    sa.Column("owner_username", sa.Text, nullable=False),
    sa.Column("organization_id", sa.BigInteger),
    sa.Column("provider_type", sa.Text, nullable=False),
    sa.Column("resource", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("credentials_type", sa.Text, nullable=False),
    sa.Column("secret_id", sa.Uuid, sa.ForeignKey("secrets.id")),
    sa.Column("specific_attributes", sa.Text, nullable=False),
    sa.Column("manifests", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_date", sa.DateTime(timezone=True), nullable=False),
)
