"""Alembic migrations of the ingest schema."""

from pathlib import Path

SCHEMA = "ingest"
LOCATION = Path(__file__).parent
