"""The export schema's tables, as the repositories query them."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from tessera.export.migrations import SCHEMA
from tessera.platform.requests import requests_table

metadata = sa.MetaData()

requests = requests_table(metadata, SCHEMA)

exports = sa.Table(
    "exports",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("rq_id", sa.Text, nullable=False, unique=True),
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
    sa.Column("done", sa.Boolean, nullable=False),
    sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expiry_date", sa.DateTime(timezone=True)),
    schema=SCHEMA,
)
"""Export requests (one row per request, made with it) and, once done, their archive.

Requests that reused an earlier archive name the same `object_key`; an object is deleted
when the last row naming it expires."""
